// The native codecs (native/codec.c through the addon): byte-for-byte against packets captured from real kernel
// tunnels (test/fixtures/packets/*.hex), the kernel's encapsulation rules, and every decap drop reason.
import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {addonAvailable, loadAddon, type NativeParams} from '../../../src/userspace/addon.js'
import type {TunnelParams} from '../../../src/model/types.js'
import {csum, icmp4, icmp6} from './packets.js'

const FIX = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..', 'fixtures', 'packets')
const A = '198.51.100.1'
const B = '198.51.100.2'

function p(mode: TunnelParams['mode'], extra: Partial<TunnelParams> = {}): NativeParams {
  return {mode, local: A, remote: B, ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, up: true, ...extra}
}
/** the receiving end of a sender's config */
function peer(c: NativeParams): NativeParams {
  const r: NativeParams = {...c, local: c.remote === 'any' ? B : c.remote!, remote: c.mode === 'isatap' || c.remote === 'any' ? 'any' : c.local!}
  if (c.okey !== undefined) r.ikey = c.okey
  else delete r.ikey
  r.icsum = !!c.ocsum
  r.iseq = !!c.oseq
  return r
}
function withIpCsum(b: Buffer): Buffer {
  b.writeUInt16BE(0, 10)
  b.writeUInt16BE(csum(b.subarray(0, (b[0]! & 15) * 4)), 10)
  return b
}

const skipAll = addonAvailable() ? undefined : 'native addon not built (node scripts/build-native.mjs)'
const fx = suite('codec vs packets captured from kernel tunnels')
const enc = suite('encapsulation follows the kernel')
const dec = suite('decapsulation drops what does not match, by reason')

if (skipAll) {
  fx.skip(`codec: skipped: ${skipAll}`, () => {})
} else {
  const files = readdirSync(FIX).filter((f) => f.endsWith('.hex'))
  fx('fixtures are present (one per captured case)', () => {
    assert.ok(files.length >= 8, `fixtures: ${files.join(', ')}`)
  })
  for (const f of files) {
    const lines = readFileSync(join(FIX, f), 'utf8').split('\n')
    const cfg = JSON.parse(lines.find((l) => l.startsWith('# config '))!.slice(9)) as NativeParams
    const pkts = lines.filter((l) => l && !l.startsWith('#')).map((l) => Buffer.from(l, 'hex'))
    fx(`${f}: decap of the kernel's packets gives their inner packet; encap of that inner packet gives the kernel's bytes`, () => {
      assert.ok(pkts.length > 0)
      const a = loadAddon()
      let iseq = 0
      for (const pkt of pkts) {
        const d = a.decapForTest(peer(cfg), pkt, iseq)
        assert.is(d.reason, 'ok')
        iseq = d.iseqno
        const hl = pkt.length - d.inner!.length
        assert.equal(d.inner!.toString('hex'), pkt.subarray(hl).toString('hex'))
        // GRE sequence numbers: the kernel starts at 1; continue from the captured one
        let oseq = 0
        if (cfg.mode === 'gre' && cfg.oseq) oseq = pkt.readUInt32BE(hl - 4) - 1
        const e = a.encapForTest(cfg, d.inner!, oseq)
        assert.is(e.result, 'send')
        assert.is(e.dst, [...pkt.subarray(16, 20)].join('.'))
        // the IP id is chosen by the kernel at send time (ip_select_ident): take the captured one
        const ours = Buffer.from(e.packet!)
        pkt.copy(ours, 4, 4, 6)
        withIpCsum(ours)
        assert.is(ours.toString('hex'), pkt.toString('hex'))
      }
    })
  }

  enc('ttl: 0 inherits the inner TTL / hop limit, a fixed ttl is used as is', () => {
    const a = loadAddon()
    assert.is(a.encapForTest(p('ipip'), icmp4('10.0.0.1', '10.0.0.2', {ttl: 17})).packet![8], 17)
    assert.is(a.encapForTest(p('ipip', {ttl: 200}), icmp4('10.0.0.1', '10.0.0.2', {ttl: 17})).packet![8], 200)
    assert.is(a.encapForTest(p('sit'), icmp6('2001:db8::1', '2001:db8::2', {hop: 9})).packet![8], 9)
  })

  enc('tos: inherit copies DSCP and ECN (CE becomes ECT(0)); a fixed tos keeps its DSCP and takes the inner ECN', () => {
    const a = loadAddon()
    assert.is(a.encapForTest(p('gre'), icmp4('10.0.0.1', '10.0.0.2', {tos: 0xb9})).packet![1], 0xb9)
    assert.is(a.encapForTest(p('gre'), icmp4('10.0.0.1', '10.0.0.2', {tos: 0xbb})).packet![1], 0xba)
    assert.is(a.encapForTest(p('gre', {tos: 0x10}), icmp4('10.0.0.1', '10.0.0.2', {tos: 0xb9})).packet![1], 0x11)
    assert.is(a.encapForTest(p('sit'), icmp6('2001:db8::1', '2001:db8::2', {tclass: 0x2a})).packet![1], 0x2a)
    // any odd tos inherits in ip_tunnel (gre, ipip); sit's IPv6 path inherits only for exactly 1
    assert.is(a.encapForTest(p('gre', {tos: 0x21}), icmp4('10.0.0.1', '10.0.0.2', {tos: 0xb8})).packet![1], 0xb8)
    assert.is(a.encapForTest(p('sit', {tos: 0x21}), icmp6('2001:db8::1', '2001:db8::2', {tclass: 0xb8})).packet![1], 0x20)
  })

  enc('DF: always with pmtudisc; without, copied from the inner packet unless ignore-df', () => {
    const a = loadAddon()
    const df = (x: NativeParams, o: {df?: boolean}) => (a.encapForTest(x, icmp4('10.0.0.1', '10.0.0.2', o)).packet!.readUInt16BE(6) & 0x4000) !== 0
    assert.is(df(p('gre'), {df: false}), true)
    assert.is(df(p('gre', {pmtudisc: false}), {df: true}), true)
    assert.is(df(p('gre', {pmtudisc: false}), {df: false}), false)
    assert.is(df(p('gre', {pmtudisc: false, ignoreDf: true}), {df: true}), false)
  })

  enc('default MTU as the kernel: ipip/sit/isatap 1480, gre 1476 minus 4 per key/csum/seq option', () => {
    const a = loadAddon()
    assert.is(a.defaultMtu(p('ipip')), 1480)
    assert.is(a.defaultMtu(p('sit')), 1480)
    assert.is(a.defaultMtu(p('isatap', {remote: 'any'})), 1480)
    assert.is(a.defaultMtu(p('gre')), 1476)
    assert.is(a.defaultMtu(p('gre', {okey: 1, ikey: 1})), 1472)
    assert.is(a.defaultMtu(p('gre', {okey: 1, ocsum: true, oseq: true})), 1464)
  })

  enc('GRE header: flags, protocol type, key, sequence from 1, checksum over header and payload', () => {
    const a = loadAddon()
    const e = a.encapForTest(p('gre', {okey: 0x01020304, ocsum: true, oseq: true}), icmp6('2001:db8::1', '2001:db8::2'))
    const g = e.packet!.subarray(20)
    assert.is(g.readUInt16BE(0), 0xb000)
    assert.is(g.readUInt16BE(2), 0x86dd)
    assert.is(g.readUInt32BE(8), 0x01020304)
    assert.is(g.readUInt32BE(12), 1)
    assert.is(csum(g), 0)
    assert.is(e.oseqno, 1)
    assert.is(e.packet![9], 47)
  })

  enc('too big with DF: ICMP fragmentation needed back to the inner sender with the tunnel MTU', () => {
    const a = loadAddon()
    const inner = icmp4('10.0.0.1', '10.0.0.2', {payload: 1600, df: true})
    const e = a.encapForTest(p('gre', {mtu: 1400}), inner)
    assert.is(e.result, 'icmp')
    const ic = e.packet!
    assert.is(ic[9], 1)
    assert.is([...ic.subarray(12, 16)].join('.'), '10.0.0.2')
    assert.is([...ic.subarray(16, 20)].join('.'), '10.0.0.1')
    assert.is(ic[20], 3)
    assert.is(ic[21], 4)
    assert.is(ic.readUInt16BE(26), 1400)
    assert.is(csum(ic.subarray(0, 20)), 0)
    assert.is(csum(ic.subarray(20)), 0)
    assert.is(ic.subarray(28, 48).toString('hex'), inner.subarray(0, 20).toString('hex'))
    // without DF the packet is sent (the outer packet may be fragmented)
    assert.is(a.encapForTest(p('gre', {mtu: 1400, pmtudisc: false}), icmp4('10.0.0.1', '10.0.0.2', {payload: 1600, df: false})).result, 'send')
  })

  enc('too big IPv6: ICMPv6 packet too big, at most 1280 bytes', () => {
    const a = loadAddon()
    const e = a.encapForTest(p('sit', {mtu: 1300}), icmp6('2001:db8::1', '2001:db8::2', {payload: 1400}))
    assert.is(e.result, 'icmp')
    assert.is(e.packet![6], 58)
    assert.is(e.packet![40], 2)
    assert.is(e.packet!.readUInt32BE(44), 1300)
    assert.ok(e.packet!.length <= 1280)
  })

  enc('sit 6rd: the IPv4 destination comes from the IPv6 destination (prefix and relay prefix)', () => {
    const a = loadAddon()
    const rd = p('sit', {remote: 'any', sixrdPrefix: '2001:db8::/32', sixrdRelayPrefix: '0.0.0.0/0'})
    assert.is(a.encapForTest(rd, icmp6('2001:db8:c633:6401::1', '2001:db8:c633:6402::1')).dst, '198.51.100.2')
    // relay prefix 198.51.0.0/16: the IPv6 address carries only the low 16 bits
    const rd2 = p('sit', {remote: 'any', sixrdPrefix: '2001:db8::/32', sixrdRelayPrefix: '198.51.0.0/16'})
    assert.is(a.encapForTest(rd2, icmp6('2001:db8:6401::1', '2001:db8:6402::1')).dst, '198.51.100.2')
    // default 6to4 (2002::/16) when no 6rd prefix is configured
    assert.is(a.encapForTest(p('sit', {remote: 'any'}), icmp6('2002:c633:6401::1', '2002:cb00:7107::1')).dst, '203.0.113.7')
    const none = a.encapForTest(p('sit', {remote: 'any'}), icmp6('2001:db8::1', '2001:db8:1::1'))
    assert.is(none.result, 'drop')
    assert.is(none.reason, 'tx_no_route')
  })

  enc('isatap: destination from the ISATAP interface identifier, else the default router', () => {
    const a = loadAddon()
    const c = p('isatap', {remote: 'any', routers: [{address: '192.0.2.1', default: false}, {address: '192.0.2.254', default: true}]})
    assert.is(a.encapForTest(c, icmp6('fe80::5efe:c633:6401', 'fe80::5efe:c633:6402')).dst, B)
    assert.is(a.encapForTest(c, icmp6('2001:db8::5efe:c633:6401', '2001:db8:ffff::1')).dst, '192.0.2.254')
    assert.is(a.encapForTest(c, icmp4('10.0.0.1', '10.0.0.2')).reason, 'tx_inner_proto')
  })

  enc('sit with encapsulated any/ipip carries IPv4 as protocol 4 and IPv6 as 41; ip6ip refuses IPv4', () => {
    const a = loadAddon()
    const any = p('sit', {proto: 'any'})
    const e4 = a.encapForTest(any, icmp4('10.0.0.1', '10.0.0.2'))
    assert.is(e4.packet![9], 4)
    assert.is(a.encapForTest(any, icmp6('2001:db8::1', '2001:db8::2')).packet![9], 41)
    assert.is(a.decapForTest(peer(any), e4.packet!).reason, 'ok')
    assert.is(a.decapForTest(peer(p('sit', {proto: 'ip6ip'})), e4.packet!).reason, 'bad_proto')
    assert.is(a.encapForTest(p('sit', {proto: 'ip6ip'}), icmp4('10.0.0.1', '10.0.0.2')).reason, 'tx_inner_proto')
    assert.is(a.encapForTest(p('sit', {proto: 'ipip'}), icmp6('2001:db8::1', '2001:db8::2')).reason, 'tx_inner_proto')
  })

  enc('GRE carries IPv4 and IPv6 with their EtherTypes; IPIP only IPv4', () => {
    const a = loadAddon()
    assert.is(a.encapForTest(p('gre'), icmp4('10.0.0.1', '10.0.0.2')).packet!.readUInt16BE(22), 0x0800)
    assert.is(a.encapForTest(p('gre'), icmp6('2001:db8::1', '2001:db8::2')).packet!.readUInt16BE(22), 0x86dd)
  })

  enc('remote any with IPv4 inside (NBMA ipip/gre): the inner destination is the next hop', () => {
    const a = loadAddon()
    assert.is(a.encapForTest(p('ipip', {remote: 'any'}), icmp4('10.0.0.1', '203.0.113.9')).dst, '203.0.113.9')
    assert.is(a.encapForTest(p('gre', {remote: 'any'}), icmp6('2001:db8::1', '2001:db8::2')).reason, 'tx_no_route')
  })

  enc('ipip carries only IPv4; unknown packets are dropped with a reason', () => {
    const a = loadAddon()
    assert.is(a.encapForTest(p('ipip', {proto: 'ipip'}), icmp6('2001:db8::1', '2001:db8::2')).reason, 'tx_inner_proto')
    assert.is(a.encapForTest(p('ipip'), Buffer.from([0x12, 0, 0])).reason, 'tx_malformed')
    assert.throws(() => a.encapForTest(p('ipip', {proto: 'mplsip'}), icmp4('10.0.0.1', '10.0.0.2')), /mplsip/)
  })

  const keyed = p('gre', {ikey: 42, okey: 42, icsum: true, ocsum: true, iseq: true, oseq: true})
  const inner4 = icmp4('10.0.0.1', '10.0.0.2')
  const send = (c: NativeParams, inner = inner4, seq = 0) => Buffer.from(loadAddon().encapForTest(c, inner, seq).packet!)
  const reason = (c: NativeParams, pkt: Buffer, iseq = 0) => loadAddon().decapForTest(c, pkt, iseq).reason

  dec('a matching packet is accepted', () => {
    assert.is(reason(peer(keyed), send(keyed)), 'ok')
  })
  dec('key: wrong, missing, or present on an unkeyed tunnel → bad_key', () => {
    assert.is(reason(peer(keyed), send({...keyed, okey: 43})), 'bad_key')
    assert.is(reason(peer(keyed), send({...keyed, okey: undefined})), 'bad_key')
    assert.is(reason(peer(p('gre')), send(p('gre', {okey: 42}))), 'bad_key')
  })
  dec('source other than remote → bad_source; destination other than local → bad_dest', () => {
    assert.is(reason(peer(keyed), send({...keyed, local: '198.51.100.9'})), 'bad_source')
    assert.is(reason(peer(keyed), send({...keyed, remote: '198.51.100.9'})), 'bad_dest')
    assert.is(reason({...peer(keyed), remote: 'any', local: 'any'}, send({...keyed, local: '198.51.100.9'})), 'ok')
  })
  dec('checksum: wrong → bad_csum; absent while required or present while not → csum_flags', () => {
    const pkt = send(keyed)
    pkt[pkt.length - 3]! ^= 0x40
    assert.is(reason(peer(keyed), pkt), 'bad_csum')
    assert.is(reason(peer(keyed), send({...keyed, ocsum: false})), 'csum_flags')
    assert.is(reason({...peer(keyed), icsum: false}, send(keyed)), 'csum_flags')
  })
  dec('sequence: missing, duplicate or older → seq; newer accepted', () => {
    const c = peer(keyed)
    assert.is(reason(c, send({...keyed, oseq: false})), 'seq')
    const r = loadAddon().decapForTest(c, send(keyed, inner4, 9)) // seq 10
    assert.is(r.iseqno, 11)
    assert.is(reason(c, send(keyed, inner4, 9), 11), 'seq') // duplicate 10
    assert.is(reason(c, send(keyed, inner4, 4), 11), 'seq') // older 5
    assert.is(reason(c, send(keyed, inner4, 20), 11), 'ok') // 21
  })
  dec('GRE version 1 or routing present → gre_flags; non-IP payload type → inner_proto', () => {
    const pkt = send(p('gre'))
    pkt[21] = 0x01
    assert.is(reason(peer(p('gre')), withIpCsum(pkt)), 'gre_flags')
    const pkt2 = send(p('gre'))
    pkt2[20] = 0x40
    assert.is(reason(peer(p('gre')), pkt2), 'gre_flags')
    const pkt3 = send(p('gre'))
    pkt3.writeUInt16BE(0x6558, 22)
    assert.is(reason(peer(p('gre')), pkt3), 'inner_proto')
  })
  dec('every truncation of a valid packet is dropped, never accepted', () => {
    const pkt = send(keyed)
    for (let n = 0; n < pkt.length; n++) {
      const cut = Buffer.from(pkt.subarray(0, n))
      assert.is.not(reason(peer(keyed), cut), 'ok', `length ${n}`)
      if (n >= 20) {
        cut.writeUInt16BE(n, 2) // consistent outer length: the GRE or inner header is short
        withIpCsum(cut)
        assert.is.not(reason(peer(keyed), cut), 'ok', `consistent length ${n}`)
      }
    }
    assert.is(reason(peer(keyed), pkt.subarray(0, 10)), 'truncated')
  })
  dec('bad outer header checksum / version / fragment → malformed; wrong outer protocol → bad_proto', () => {
    const pkt = send(keyed)
    pkt[10]! ^= 1
    assert.is(reason(peer(keyed), pkt), 'malformed')
    const v6 = send(keyed)
    v6[0] = 0x65
    assert.is(reason(peer(keyed), v6), 'malformed')
    const frag = send(keyed)
    frag.writeUInt16BE(0x2000, 6)
    assert.is(reason(peer(keyed), withIpCsum(frag)), 'malformed')
    assert.is(reason(peer(p('ipip')), send(p('gre'))), 'bad_proto')
    assert.is(reason(peer(p('sit', {proto: 'ip6ip'})), send(p('ipip'))), 'bad_proto')
  })
  dec('inner header not matching its type → inner_malformed', () => {
    const g = send(p('gre'), icmp6('2001:db8::1', '2001:db8::2'))
    g.writeUInt16BE(0x0800, 22) // says IPv4, carries IPv6
    assert.is(reason(peer(p('gre')), g), 'inner_malformed')
  })
  dec('ECN (RFC 6040): outer CE on a not-ECT inner → ecn; on an ECT inner → inner marked CE', () => {
    const c = p('ipip')
    const ce = (inner: Buffer) => {
      const pkt = send(c, inner)
      pkt[1] = (pkt[1]! & ~3) | 3
      return withIpCsum(pkt)
    }
    assert.is(reason(peer(c), ce(icmp4('10.0.0.1', '10.0.0.2', {tos: 0}))), 'ecn')
    const r = loadAddon().decapForTest(peer(c), ce(icmp4('10.0.0.1', '10.0.0.2', {tos: 2})))
    assert.is(r.inner![1]! & 3, 3)
    assert.is(csum(r.inner!.subarray(0, 20)), 0)
  })
  dec('sit 6rd with a relay prefix: the embedded low bits plus the relay prefix must give the outer source', () => {
    const rd = p('sit', {remote: 'any', sixrdPrefix: '2001:db8::/32', sixrdRelayPrefix: '198.51.0.0/16'})
    const rx = {...rd, local: B}
    assert.is(reason(rx, send(rd, icmp6('2001:db8:6401::1', '2001:db8:6402::1'))), 'ok')
    assert.is(reason(rx, send(rd, icmp6('2001:db8:6409::1', '2001:db8:6402::1'))), 'spoofed')
    // with a fixed remote (point-to-point) no embedding is required
    assert.is(reason(peer(p('sit')), send(p('sit'), icmp6('2001:db8:6409::1', '2001:db8:6402::1'))), 'ok')
  })

  dec('sit/isatap spoofing: 6to4/6rd or ISATAP addresses must embed the outer source', () => {
    const nbma = p('sit', {remote: 'any'})
    const rx = {...nbma, local: B}
    assert.is(reason(rx, send(nbma, icmp6('2002:c633:6401::1', '2002:c633:6402::1'))), 'ok')
    assert.is(reason(rx, send(nbma, icmp6('2002:c633:6409::1', '2002:c633:6402::1'))), 'spoofed')
    const isa = p('isatap', {remote: 'any', routers: []})
    const isaRx = {...isa, local: B}
    assert.is(reason(isaRx, send(isa, icmp6('fe80::5efe:c633:6401', 'fe80::5efe:c633:6402'))), 'ok')
    assert.is(reason(isaRx, send(isa, icmp6('fe80::5efe:c633:6409', 'fe80::5efe:c633:6402'))), 'spoofed')
    // a router in the potential router list may send from any inner address
    assert.is(reason({...isaRx, routers: [{address: A, default: true}]}, send(isa, icmp6('2001:db8::1', 'fe80::5efe:c633:6402'))), 'ok')
  })
}

fx.run()
enc.run()
dec.run()
