// TUN offloads done by the daemon (native/offload.c): TSO segmentation on TX and TCP coalescing (GRO) on RX.
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {addonAvailable, loadAddon} from '../../../src/userspace/addon.js'
import {csum, tcp, tcpCsum} from './packets.js'

const t = suite('offloads: TSO segmentation and TCP coalescing')
const payload = Buffer.from(Array.from({length: 4000}, (_, i) => (i * 7) & 0xff))
const ts = Buffer.from('0101080a0000000100000002', 'hex') // NOP NOP timestamps

if (!addonAvailable()) {
  t.skip('offloads: skipped: native addon not built', () => {})
} else {
  for (const [fam, src, dst] of [
    ['IPv4', '10.1.0.1', '10.1.0.2'],
    ['IPv6', '2001:db8::1', '2001:db8::2'],
  ] as const) {
    const v6 = fam === 'IPv6'
    const iphl = v6 ? 40 : 20
    const hl = iphl + 32

    t(`${fam}: a TSO packet becomes MSS-sized segments with fixed lengths, ids, sequence numbers, flags and checksums`, () => {
      const big = tcp(src, dst, payload, {seq: 0xfffff000, flags: 0x18 | 0x80 | 0x01, options: ts, id: 100}) // PSH CWR FIN
      const segs = loadAddon().tsoForTest(big, 1448)!
      assert.equal(segs.map((s) => s.length - hl), [1448, 1448, 1104])
      segs.forEach((s, i) => {
        const th = s.subarray(iphl)
        assert.is(th.readUInt32BE(4), (0xfffff000 + i * 1448) >>> 0, 'sequence (wraps)')
        const last = i === segs.length - 1
        assert.is((th[13]! & 0x09) !== 0, last, 'PSH/FIN only on the last')
        assert.is((th[13]! & 0x80) !== 0, i === 0, 'CWR only on the first')
        assert.is(tcpCsum(s), 0, 'TCP checksum')
        if (v6) assert.is(s.readUInt16BE(4), s.length - 40)
        else {
          assert.is(s.readUInt16BE(2), s.length)
          assert.is(s.readUInt16BE(4), 100 + i)
          assert.is(csum(s.subarray(0, 20)), 0, 'IP header checksum')
        }
      })
      assert.equal(Buffer.concat(segs.map((s) => s.subarray(hl))), payload)
    })

    t(`${fam}: consecutive segments of one flow are coalesced into one GSO write carrying the same bytes`, () => {
      const big = tcp(src, dst, payload, {seq: 5000, flags: 0x18, options: ts})
      const segs = loadAddon().tsoForTest(big, 1448)!
      const w = loadAddon().groForTest(segs)
      assert.is(w.length, 1)
      const g = w[0]!
      assert.is(g.segments, 3)
      assert.is(g.gsoType, v6 ? 4 : 1)
      assert.is(g.gsoSize, 1448)
      assert.is(g.hdrLen, hl)
      assert.is(g.csumStart, iphl)
      assert.is(g.csumOffset, 16)
      assert.is(g.flags, 1)
      assert.equal(g.packet.subarray(hl), payload)
      assert.is(g.packet.subarray(iphl).readUInt32BE(4), 5000)
      if (!v6) assert.is(csum(g.packet.subarray(0, 20)), 0)
      // NEEDS_CSUM: the checksum field holds the pseudo-header sum; completing it gives the big packet's checksum
      const done = Buffer.from(g.packet)
      const seg = done.subarray(iphl)
      const c = csum(seg)
      seg.writeUInt16BE(c === 0 ? 0xffff : c, 16)
      assert.is(tcpCsum(done), 0)
    })

    t(`${fam}: no coalescing across gaps, flows, bad checksums or control flags`, () => {
      const a = loadAddon()
      const p = (seq: number, extra: Record<string, any> = {}) => tcp(src, dst, payload.subarray(0, 1000), {seq, options: ts, ...extra})
      // gap: 1000 → 3000
      assert.is(a.groForTest([p(1000), p(3000)]).length, 2)
      // other flow (different ack)
      assert.is(a.groForTest([p(1000), p(2000, {ack: 9})]).length, 2)
      // a corrupted segment is never merged (the kernel must see and drop it)
      const bad = p(2000)
      bad[bad.length - 1]! ^= 1
      const w = a.groForTest([p(1000), bad])
      assert.is(w.length, 2)
      assert.is(w[1]!.gsoType, 0)
      assert.equal(w[1]!.packet, bad)
      // SYN / FIN / RST stand alone
      assert.is(a.groForTest([p(1000), p(2000, {flags: 0x11})]).length, 2)
      // a shorter segment ends the train; the next one starts a new packet
      const short = tcp(src, dst, payload.subarray(0, 500), {seq: 2000, options: ts})
      assert.equal(a.groForTest([p(1000), short, p(2500)]).map((x) => x.segments), [2, 1])
      // a lone packet is written as is, without GSO
      const one = a.groForTest([p(1000)])
      assert.is(one[0]!.gsoType, 0)
      assert.is(one[0]!.flags, 0)
      assert.equal(one[0]!.packet, p(1000))
    })
  }

  t('non-TCP packets are not segmented', () => {
    const a = loadAddon()
    const pkt = tcp('10.1.0.1', '10.1.0.2', payload)
    pkt[9] = 17
    assert.is(a.tsoForTest(pkt, 1448), null)
  })
}

t.run()
