// Host e2e of the userspace encapsulator: for gre, ipip, sit and isatap, two namespaces joined by veth run an
// engine each (started through control.ts), ping and iperf3 through the tunnel, inject packets that do not
// match the tunnel and check the drop counters, kill an engine and check it is reported dead.
import {readFileSync} from 'node:fs'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {isDaemonAlive, observeEncaps, startEncap, stopEncap} from '../../src/userspace/control.js'
import {addonAvailable, loadAddon} from '../../src/userspace/addon.js'
import {statsPath} from '../../src/userspace/paths.js'
import type {Counters, TunnelParams} from '../../src/model/types.js'
import {A_ADDR, B_ADDR, type Pair, ipn, iperf, makePair, nsExec, ping, rawSendFrom, removePair, run, sleep, tcpTransfer, whyNoHost} from './lib/netns.js'
import {icmp4, icmp6} from '../unit/userspace/packets.js'
import {processRuns, waitFor} from '../lib/wait.js'

const why = whyNoHost() ?? (addonAvailable() ? undefined : 'native addon not built (node scripts/build-native.mjs)')

function params(mode: TunnelParams['mode'], local: string, remote: string, extra: Partial<TunnelParams> = {}): TunnelParams {
  return {mode, local, remote, ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, up: true, ...extra}
}

async function counters(ns: string, name = 'tun0'): Promise<Counters> {
  const m = await observeEncaps({netns: ns})
  const c = m.get(name)?.counters
  assert.ok(c, `counters of ${name} in ${ns}`)
  return c!
}

/** waits until the engine has written counters satisfying pred (stats files are rewritten every second) */
async function waitCounters(ns: string, pred: (c: Counters) => boolean, ms = 4000, name = 'tun0'): Promise<Counters> {
  return waitFor(() => counters(ns, name), pred, {what: `${name} counters in ${ns}`, timeoutMs: ms, intervalMs: 200})
}

const drop = (c: Counters, r: string) => c.drops?.[r] ?? 0

interface Case {
  mode: TunnelParams['mode']
  a: TunnelParams
  b: TunnelParams
  addrA: string[]
  addrB: string[]
  pingTargets: [string, string] // [B's inner address, A's inner address]
  /** packets sent from A's namespace that B must drop: [reason, packet] */
  bad: () => Array<[string, Buffer]>
}

const addon = () => loadAddon()

const cases: Case[] = [
  {
    mode: 'gre',
    a: params('gre', A_ADDR, B_ADDR, {ikey: 42, okey: 42, icsum: true, ocsum: true, iseq: false, oseq: false}),
    b: params('gre', B_ADDR, A_ADDR, {ikey: 42, okey: 42, icsum: true, ocsum: true, iseq: false, oseq: false}),
    addrA: ['10.1.0.1/30', '2001:db8:1::1/64'],
    addrB: ['10.1.0.2/30', '2001:db8:1::2/64'],
    pingTargets: ['10.1.0.2', '10.1.0.1'],
    bad() {
      const inner = icmp4('10.1.0.1', '10.1.0.2')
      const good = params('gre', A_ADDR, B_ADDR, {ikey: 42, okey: 42, icsum: true, ocsum: true})
      const wrongKey = addon().encapForTest({...good, okey: 43}, inner).packet!
      const wrongSrc = addon().encapForTest({...good, local: '198.51.100.3'}, inner).packet!
      const badCsum = Buffer.from(addon().encapForTest(good, inner).packet!)
      badCsum[badCsum.length - 1]! ^= 0xff
      const noCsum = addon().encapForTest({...good, ocsum: false}, inner).packet!
      return [
        // another key or another source: no tunnel of the namespace takes it (ip_tunnel_lookup finds none)
        ['no_tunnel', wrongKey],
        ['no_tunnel', wrongSrc],
        ['bad_csum', badCsum],
        ['csum_flags', noCsum],
      ]
    },
  },
  {
    mode: 'ipip',
    a: params('ipip', A_ADDR, B_ADDR, {proto: 'ipip'}),
    b: params('ipip', B_ADDR, A_ADDR, {proto: 'ipip'}),
    addrA: ['10.2.0.1/30'],
    addrB: ['10.2.0.2/30'],
    pingTargets: ['10.2.0.2', '10.2.0.1'],
    bad() {
      const inner = icmp4('10.2.0.1', '10.2.0.2')
      const good = params('ipip', A_ADDR, B_ADDR, {proto: 'ipip'})
      const wrongSrc = addon().encapForTest({...good, local: '198.51.100.3'}, inner).packet!
      const short = addon().encapForTest(good, inner).packet!.subarray(0, 30) // inner header cut
      short.writeUInt16BE(30, 2)
      return [
        ['no_tunnel', wrongSrc],
        ['inner_malformed', fixIpCsum(Buffer.from(short))],
      ]
    },
  },
  {
    mode: 'sit',
    a: params('sit', A_ADDR, B_ADDR, {proto: 'ip6ip'}),
    b: params('sit', B_ADDR, A_ADDR, {proto: 'ip6ip'}),
    addrA: ['2001:db8:3::1/64'],
    addrB: ['2001:db8:3::2/64'],
    pingTargets: ['2001:db8:3::2', '2001:db8:3::1'],
    bad() {
      const inner = icmp6('2001:db8:3::1', '2001:db8:3::2')
      const good = params('sit', A_ADDR, B_ADDR, {proto: 'ip6ip'})
      return [['no_tunnel', addon().encapForTest({...good, local: '198.51.100.3'}, inner).packet!]]
    },
  },
  {
    mode: 'isatap',
    a: params('isatap', A_ADDR, 'any', {proto: 'ip6ip', routers: [{address: B_ADDR, default: true}]}),
    b: params('isatap', B_ADDR, 'any', {proto: 'ip6ip', routers: []}),
    addrA: ['2001:db8:4::5efe:c633:6401/64'],
    addrB: ['2001:db8:4::5efe:c633:6402/64'],
    pingTargets: ['2001:db8:4::5efe:c633:6402', '2001:db8:4::5efe:c633:6401'],
    bad() {
      // inner source is not an ISATAP address embedding the outer source, and A is not in B's router list
      const inner = icmp6('2001:db8:4::1', '2001:db8:4::5efe:c633:6402')
      const p = params('isatap', A_ADDR, 'any', {proto: 'ip6ip', routers: []})
      return [['spoofed', addon().encapForTest(p, inner).packet!]]
    },
  },
]

function fixIpCsum(b: Buffer): Buffer {
  b.writeUInt16BE(0, 10)
  let s = 0
  for (let i = 0; i < 20; i += 2) s += b.readUInt16BE(i)
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16)
  b.writeUInt16BE(~s & 0xffff, 10)
  return b
}

for (const c of cases) {
  const t = suite(`userspace ${c.mode} (host namespaces)`)
  let pair: Pair | undefined

  if (why) {
    t.skip(`userspace ${c.mode}: skipped: ${why}`, () => {})
    t.run()
    continue
  }

  t.before(async () => {
    pair = makePair(c.mode.slice(0, 4))
    await startEncap('tun0', c.a, {netns: pair.a})
    await startEncap('tun0', c.b, {netns: pair.b})
    for (const [ns, addrs] of [
      [pair.a, c.addrA],
      [pair.b, c.addrB],
    ] as const) {
      for (const a of addrs) ipn(ns, 'addr', 'add', a, 'dev', 'tun0', ...(a.includes(':') ? ['nodad'] : []))
      ipn(ns, 'link', 'set', 'tun0', 'up')
    }
  })

  t.after(() => removePair(pair))

  t('the TUN device exists with the kernel default MTU and the engine is alive', async () => {
    const link = JSON.parse(ipn(pair!.a, '-j', '-d', 'link', 'show', 'dev', 'tun0'))[0]
    assert.is(link.linkinfo?.info_kind, 'tun')
    assert.is(link.mtu, c.mode === 'gre' ? 1468 : 1480)
    const m = await observeEncaps({netns: pair!.a})
    assert.ok(m.get('tun0')?.alive)
    assert.equal(m.get('tun0')?.params, c.a)
  })

  t('ping both ways', () => {
    const ab = ping(pair!.a, c.pingTargets[0])
    assert.ok(ab.ok, ab.out)
    const ba = ping(pair!.b, c.pingTargets[1])
    assert.ok(ba.ok, ba.out)
  })

  t('iperf3 through the tunnel; counters increase', async () => {
    const before = await counters(pair!.a)
    const bps = iperf(pair!.a, pair!.b, c.pingTargets[0], 2)
    assert.ok(bps > 50e6, `throughput ${bps} bit/s`)
    const after = await waitCounters(pair!.a, (x) => x.txBytes > before.txBytes + 10e6)
    assert.ok(after.txPackets > before.txPackets + 1000, `tx ${before.txPackets} → ${after.txPackets}`)
    assert.ok(after.rxPackets > before.rxPackets, `rx ${before.rxPackets} → ${after.rxPackets}`)
    // offloads: the sender's engine cut TSO packets, the receiver's coalesced segments into GSO writes
    const statsA = JSON.parse(readFileSync(statsPath('tun0', pair!.a), 'utf8')).counters
    const statsB = JSON.parse(readFileSync(statsPath('tun0', pair!.b), 'utf8')).counters
    assert.is(statsA.offload, true)
    assert.ok(statsA.tsoSegments > 1000, `tsoSegments ${statsA.tsoSegments}`)
    assert.ok(statsB.groMerged > 1000, `groMerged ${statsB.groMerged}`)
    console.log(`    ${c.mode}: ${(bps / 1e9).toFixed(2)} Gbit/s`)
  })

  t('32 MB over TCP arrive intact both ways (TSO segmentation and coalescing keep the bytes)', async () => {
    const ab = tcpTransfer(pair!.a, pair!.b, c.pingTargets[0], 32 << 20)
    assert.is(ab.received, ab.sent)
    const ba = tcpTransfer(pair!.b, pair!.a, c.pingTargets[1], 32 << 20)
    assert.is(ba.received, ba.sent)
  })

  t('packets that do not match the tunnel are dropped and counted by reason', async () => {
    const bad = c.bad()
    const n = new Map<string, number>()
    for (const [r] of bad) n.set(r, (n.get(r) ?? 0) + 1)
    const before = await counters(pair!.b)
    for (const [, pkt] of bad) rawSendFrom(pair!.a, pkt)
    const want = (x: Counters) => [...n].every(([r, k]) => drop(x, r) >= drop(before, r) + k)
    const after = await waitCounters(pair!.b, want)
    for (const [r, k] of n) assert.is(drop(after, r) - drop(before, r), k, `drops.${r}: ${JSON.stringify(after.drops)}`)
    assert.ok(after.rxDropped >= before.rxDropped + bad.length)
  })

  if (c.mode === 'gre') {
    t('startEncap on a running engine changes the tunnel in place: new key on both ends, same engine, counters kept', async () => {
      const pidBefore = (await observeEncaps({netns: pair!.a})).get('tun0')!.pid
      const txBefore = (await counters(pair!.a)).txPackets
      assert.ok(txBefore > 0, 'traffic before the change')
      await startEncap('tun0', {...c.a, ikey: 7, okey: 7}, {netns: pair!.a})
      assert.ok((await counters(pair!.a)).txPackets >= txBefore, 'counters not reset by the change')
      await startEncap('tun0', {...c.b, ikey: 7, okey: 7}, {netns: pair!.b})
      const m = await observeEncaps({netns: pair!.a})
      assert.is(m.get('tun0')!.pid, pidBefore)
      assert.is(m.get('tun0')!.params.okey, 7)
      const r = ping(pair!.a, c.pingTargets[0])
      assert.ok(r.ok, r.out)
    })
  }

  if (c.mode === 'gre') {
    t('a second GRE tunnel in the same namespaces (other key): the same engine, both carry traffic, each packet reaches exactly one tunnel; a packet nobody takes is still counted', async () => {
      const k = {ikey: 43, okey: 43}
      await startEncap('tun1', {...c.a, ...k}, {netns: pair!.a})
      await startEncap('tun1', {...c.b, ...k}, {netns: pair!.b})
      try {
        ipn(pair!.a, 'addr', 'add', '10.1.1.1/30', 'dev', 'tun1')
        ipn(pair!.b, 'addr', 'add', '10.1.1.2/30', 'dev', 'tun1')
        ipn(pair!.a, 'link', 'set', 'tun1', 'up')
        ipn(pair!.b, 'link', 'set', 'tun1', 'up')
        const om = await observeEncaps({netns: pair!.b})
        assert.is(om.get('tun1')!.pid, om.get('tun0')!.pid, 'one engine process for both tunnels')
        // counters written after this point (the previous test's in-flight packets are counted by then)
        const since = Date.now() + 300
        const updated = () => Date.parse(JSON.parse(readFileSync(statsPath('tun0', pair!.b), 'utf8')).updatedAt)
        await waitFor(async () => updated(), (u) => u > since, {what: 'fresh counters of tun0', timeoutMs: 4000, intervalMs: 100})
        const before = await counters(pair!.b)
        const r1 = ping(pair!.a, '10.1.1.2', 5)
        assert.ok(r1.ok, r1.out)
        const r0 = ping(pair!.a, c.pingTargets[0], 5)
        assert.ok(r0.ok, r0.out)
        await sleep(1300)
        const after = await counters(pair!.b)
        assert.is(after.rxDropped, before.rxDropped, JSON.stringify(after.drops))
        // tun1's packets never reach tun0: the engine's dispatch gives each packet to one tunnel
        const raw0 = JSON.parse(readFileSync(statsPath('tun0', pair!.b), 'utf8')).counters
        const raw1 = JSON.parse(readFileSync(statsPath('tun1', pair!.b), 'utf8')).counters
        assert.ok(raw1.rxPackets >= 5, `tun1 rxPackets ${raw1.rxPackets}`)
        assert.is(raw0.otherTunnel, 0, 'tun0 saw none of tun1\'s packets')
        // a packet matching neither tunnel (key 99): the oldest tunnel of its protocol (tun0) counts it, once
        const stray = addon().encapForTest({...c.a, ikey: 99, okey: 99}, icmp4('10.1.0.1', '10.1.0.2')).packet!
        const d0 = await counters(pair!.b)
        const d1 = await counters(pair!.b, 'tun1')
        rawSendFrom(pair!.a, stray)
        const e0 = await waitCounters(pair!.b, (x) => drop(x, 'no_tunnel') === drop(d0, 'no_tunnel') + 1)
        // tun1 wrote its counters once more since
        const since0 = Date.parse(JSON.parse(readFileSync(statsPath('tun0', pair!.b), 'utf8')).updatedAt)
        const fresh = () => Date.parse(JSON.parse(readFileSync(statsPath('tun1', pair!.b), 'utf8')).updatedAt) > since0
        for (const end = Date.now() + 4000; !fresh() && Date.now() < end; ) await sleep(100)
        assert.ok(fresh(), 'tun1 wrote its counters')
        const e1 = await counters(pair!.b, 'tun1')
        assert.is(drop(e0, 'no_tunnel'), drop(d0, 'no_tunnel') + 1, `tun0 drops ${JSON.stringify(e0.drops)}`)
        assert.is(drop(e1, 'no_tunnel'), drop(d1, 'no_tunnel'), `tun1 drops ${JSON.stringify(e1.drops)}`)
      } finally {
        await stopEncap('tun1', {netns: pair!.a})
        await stopEncap('tun1', {netns: pair!.b})
      }
    })
  }

  if (c.mode === 'ipip') {
    t('pmtudisc off: an outer packet too big for the underlay is sent as IPv4 fragments', async () => {
      await startEncap('tun0', {...c.a, pmtudisc: false}, {netns: pair!.a})
      await startEncap('tun0', {...c.b, pmtudisc: false}, {netns: pair!.b})
      for (const ns of [pair!.a, pair!.b]) ipn(ns, 'link', 'set', 'ul0', 'mtu', '1400')
      try {
        const r = nsExec(pair!.a, 'ping', ['-c', '3', '-i', '0.3', '-W', '2', '-M', 'dont', '-s', '1440', c.pingTargets[0]])
        assert.is(r.code, 0, r.out + r.err)
        assert.match(r.out, /3 received/)
      } finally {
        for (const ns of [pair!.a, pair!.b]) ipn(ns, 'link', 'set', 'ul0', 'mtu', '1500')
        await startEncap('tun0', c.a, {netns: pair!.a})
        await startEncap('tun0', c.b, {netns: pair!.b})
      }
    })
  }

  t('underlay MTU too small for a DF packet: ICMP frag needed / packet too big with the MTU that fits', () => {
    ipn(pair!.a, 'link', 'set', 'ul0', 'mtu', '1400')
    try {
      const target = c.pingTargets[0]
      const r = nsExec(pair!.a, 'ping', [target.includes(':') ? '-6' : '-4', '-c', '2', '-i', '0.3', '-W', '1', '-M', 'do', '-s', '1400', target])
      const want = 1400 - 20 - (c.mode === 'gre' ? 12 : 0) // outer IPv4 header (+ GRE with key and checksum)
      const m = /mtu ?[=:] ?(\d+)/.exec(r.out + r.err)
      assert.ok(m, r.out + r.err)
      assert.is(Number(m![1]), want)
      // smaller packets still pass
      const ok = ping(pair!.a, target)
      assert.ok(ok.ok, ok.out)
    } finally {
      ipn(pair!.a, 'link', 'set', 'ul0', 'mtu', '1500')
    }
  })

  t('a killed engine is reported dead; startEncap starts a new one on the same device; stopEncap removes a left-over device', async () => {
    const m = await observeEncaps({netns: pair!.b})
    const pid = m.get('tun0')!.pid!
    process.kill(pid, 'SIGKILL')
    await waitFor(() => processRuns(pid), (r) => !r, {what: `killed engine ${pid} gone`})
    const m2 = await observeEncaps({netns: pair!.b})
    assert.is(m2.get('tun0')?.alive, false)
    assert.is(run('ip', ['-n', pair!.b, 'link', 'show', 'dev', 'tun0']).code, 0, 'persistent TUN left behind')
    // restart (what apply does for a dead encapsulator): reattaches to the device, addresses kept
    const cur = (await observeEncaps({netns: pair!.b})).get('tun0')!.params
    const {pid: pid2} = await startEncap('tun0', cur, {netns: pair!.b})
    assert.is.not(pid2, pid)
    assert.ok((await observeEncaps({netns: pair!.b})).get('tun0')!.alive)
    const r = ping(pair!.a, c.pingTargets[0])
    assert.ok(r.ok, r.out)
    process.kill(pid2, 'SIGKILL')
    await waitFor(() => processRuns(pid2), (r) => !r, {what: `killed engine ${pid2} gone`})
    await stopEncap('tun0', {netns: pair!.b})
    assert.is.not(run('ip', ['-n', pair!.b, 'link', 'show', 'dev', 'tun0']).code, 0)
    assert.is((await observeEncaps({netns: pair!.b})).size, 0)
  })

  t('stopEncap of the last tunnel of a live engine: the engine removes its device and exits', async () => {
    const pid = (await observeEncaps({netns: pair!.a})).get('tun0')!.pid!
    await stopEncap('tun0', {netns: pair!.a})
    assert.is.not(run('ip', ['-n', pair!.a, 'link', 'show', 'dev', 'tun0']).code, 0)
    // it answers the commit, then exits
    await waitFor(() => processRuns(pid), (r) => !r, {what: `engine ${pid} exits after its last tunnel`})
    assert.is(isDaemonAlive(pid), false)
  })

  if (c.mode === 'gre') {
    t('the device deleted under a running engine (ip link del): the engine forgets the tunnel (and exits: it was the last)', async () => {
      const {pid} = await startEncap('tun0', c.a, {netns: pair!.a})
      ipn(pair!.a, 'link', 'del', 'dev', 'tun0')
      const end = Date.now() + 4000
      let m = await observeEncaps({netns: pair!.a})
      while (m.size && Date.now() < end) {
        await sleep(200)
        m = await observeEncaps({netns: pair!.a})
      }
      assert.is(m.size, 0)
      let alive = true
      try {
        process.kill(pid, 0)
        alive = !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
      } catch {
        alive = false
      }
      assert.is(alive, false)
    })

    t('a reconfiguration the engine refuses fails startEncap with the reason and keeps the tunnel as it ran; stopEncap cleans up', async () => {
      const {pid} = await startEncap('tun0', c.a, {netns: pair!.a})
      let err: any
      try {
        await startEncap('tun0', {...c.a, local: '300.1.1.1'}, {netns: pair!.a})
      } catch (e) {
        err = e
      }
      assert.match(String(err?.message), /bad local address/)
      const o = (await observeEncaps({netns: pair!.a})).get('tun0')
      assert.is(o?.alive, true, 'the engine still runs the tunnel')
      assert.is(o?.pid, pid, 'the same engine')
      assert.is(o?.params.local, c.a.local, 'its previous parameters (state file restored)')
      await stopEncap('tun0', {netns: pair!.a})
      assert.is.not(run('ip', ['-n', pair!.a, 'link', 'show', 'dev', 'tun0']).code, 0)
      // its last tunnel removed, the engine exits
      await waitFor(() => processRuns(pid), (r) => !r, {what: `engine ${pid} exits after its last tunnel`})
      assert.is(isDaemonAlive(pid), false)
    })
  }

  t.run()
}
