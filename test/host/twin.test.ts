// The kernel twin's call sites in the engine (native/engine.c twin_tx / twin_icmp, src/userspace/kernel-twin.ts via
// engine.ts kernelView), on the host (userspace only): the device looks like the kernel's (addrgenmode none, the
// kernel's link-local address, its default MTU), a routing loop is dropped and counted as `collisions`, and an ICMP
// error about an outer packet is counted (`icmpErrors`) and makes the next transmits report a link failure to the
// inner sender, as ipgre_err / ip_tunnel_xmit do. The kernel comparison itself is test/uml/differential.test.ts.
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {nsDir} from '../../src/userspace/paths.js'
import {yaml} from '../uml/lib/spec.js'
import {until, tunctlOk as ok} from './lib/cli.js'
import {type Pair, A_ADDR, B_ADDR, ipn, makePair, nsExec, removePair, whyNoUserspaceCli} from './lib/netns.js'

const scratch = mkdtempSync(join(tmpdir(), 'tunctl-twin-'))
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))

const why = whyNoUserspaceCli() ?? (existsSync('/sys/module/ip_gre') ? 'this kernel has ip_gre: auto would not pick userspace' : undefined)

function apply(ns: string, tunnels: Record<string, unknown>) {
  const f = join(scratch, `${ns}.yaml`)
  writeFileSync(f, yaml({version: 1, tunnels}))
  return ok(['apply', '--netns', ns, f])
}
function counters(ns: string, name: string): Record<string, any> | undefined {
  try {
    return JSON.parse(readFileSync(join(nsDir(ns), `${name}.stats.json`), 'utf8')).counters
  } catch {
    return undefined
  }
}
const linkLocals = (ns: string, dev: string) =>
  (JSON.parse(ipn(ns, '-j', '-6', 'addr', 'show', 'dev', dev))[0]?.addr_info ?? []).filter((a: any) => a.scope === 'link').map((a: any) => `${a.local}/${a.prefixlen}`)

const t = suite<{pair?: Pair}>('kernel twin in the engine (host namespaces)', {})
if (why) t.skip(`skipped: ${why}`, () => {})
else {
  t.before((st) => {
    st.pair = makePair('twin')
  })
  t.after((st) => removePair(st.pair))

  t('the device as the kernel makes it: addrgenmode none, fe80::200:5efe:<local> only, default MTU 1500 − 20 − 8', async ({pair}) => {
    apply(pair!.a, {g1: {mode: 'gre', local: A_ADDR, remote: B_ADDR, key: 1, ttl: 64, addresses: ['192.0.2.1/30']}})
    const want = ['fe80::200:5efe:c633:6401/64'] // 198.51.100.1 is global: 0x02 in the identifier (__ipv6_isatap_ifid)
    const got = await until('the kernel link-local', () => {
      const l = linkLocals(pair!.a, 'g1')
      return JSON.stringify(l) === JSON.stringify(want) && l
    }, 10_000).catch(() => linkLocals(pair!.a, 'g1'))
    assert.equal(got, want)
    const link = JSON.parse(ipn(pair!.a, '-j', '-d', 'link', 'show', 'dev', 'g1'))[0]
    assert.is(link.mtu, 1472, 'ip_tunnel_bind_dev: veth 1500 − 20 − GRE with key 8')
    assert.is(link.inet6_addr_gen_mode, 'none')
    assert.match(ok(['apply', '--netns', pair!.a, join(scratch, `${pair!.a}.yaml`)]).out, /No changes/)
  })

  t('a routing loop (the route to the remote leaves by the tunnel) is dropped and counted as collisions', async ({pair}) => {
    const before = counters(pair!.a, 'g1')?.collisions ?? 0
    ipn(pair!.a, 'route', 'add', `${B_ADDR}/32`, 'dev', 'g1')
    try {
      nsExec(pair!.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '192.0.2.2'])
      const c = await until('collisions counted', () => {
        const n = counters(pair!.a, 'g1')
        return n && n.collisions >= before + 3 && n
      }, 10_000).catch(() => counters(pair!.a, 'g1'))
      assert.ok(c && c.collisions >= before + 3, `collisions ${JSON.stringify(c)}`)
    } finally {
      ipn(pair!.a, 'route', 'del', `${B_ADDR}/32`, 'dev', 'g1')
    }
  })

  t('an ICMP error about an outer packet: counted (icmpErrors), the next transmits report a link failure', async ({pair}) => {
    // b routes 203.0.113.77 nowhere: it answers a's outer packets with ICMP unreachable (ip_error)
    ipn(pair!.b, 'route', 'add', 'unreachable', '203.0.113.77/32')
    nsExec(pair!.b, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'])
    nsExec(pair!.b, 'sysctl', ['-q', '-w', 'net.ipv4.icmp_ratelimit=0'])
    ipn(pair!.a, 'route', 'add', '203.0.113.77/32', 'via', B_ADDR)
    apply(pair!.a, {
      g1: {mode: 'gre', local: A_ADDR, remote: B_ADDR, key: 1, ttl: 64, addresses: ['192.0.2.1/30']},
      g2: {mode: 'gre', local: A_ADDR, remote: '203.0.113.77', key: 2, ttl: 64, addresses: ['192.0.2.5/30']},
    })
    // three errors: err_count 3 (the device's own IPv6 packets, router solicitations and MLD reports, may take
    // some of the link failures as in the kernel)
    const first = nsExec(pair!.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '192.0.2.6'])
    assert.is.not(first.code, 0, 'nobody answers through g2')
    const c = await until('the ICMP errors counted', () => {
      const n = counters(pair!.a, 'g2')
      return n && n.icmpErrors >= 3 && n
    }, 10_000).catch(() => counters(pair!.a, 'g2'))
    assert.ok(c && c.icmpErrors >= 3, `g2 icmpErrors ${JSON.stringify(c)}`)
    assert.is(counters(pair!.a, 'g1')?.icmpErrors, 0, 'g1 is not the tunnel the error is about')
    // err_count: the next transmit within 30 s gets ICMP host unreachable back (dst_link_failure)
    const next = nsExec(pair!.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '192.0.2.6'])
    assert.match(next.out + next.err, /Destination Host Unreachable/, next.out + next.err)
  })
}
t.run()

// isatap's next hop from the route (native/isatap.c, engroute.c; ipip6_tunnel_xmit): a prefix routed via a second,
// not default, ISATAP router goes to that router. Here the default router's address (b's 198.51.100.2) has no
// isatap tunnel: a packet sent there is lost, so only the route's router can answer.
const u = suite<{pair?: Pair}>('isatap next hop from the route (host namespaces)', {})
if (why) u.skip(`skipped: ${why}`, () => {})
else {
  u.before((st) => {
    st.pair = makePair('isr')
  })
  u.after((st) => removePair(st.pair))

  u('a prefix via fe80::200:5efe:<second router>: its packets go to that router, its replies are accepted (listed, not default)', async ({pair}) => {
    const R2 = '198.51.100.3'
    ipn(pair!.b, 'addr', 'add', `${R2}/24`, 'dev', 'ul0')
    ipn(pair!.b, 'addr', 'add', '2001:db8:10a::2/128', 'dev', 'lo', 'nodad')
    apply(pair!.b, {qi: {mode: 'isatap', local: R2, ttl: 64, routers: [], addresses: ['2001:db8:8::200:5efe:c633:6403/64']}})
    apply(pair!.a, {
      i1: {mode: 'isatap', local: A_ADDR, ttl: 64, routers: [{address: B_ADDR, default: true}, {address: R2, default: false}], addresses: ['2001:db8:8::200:5efe:c633:6401/64']},
    })
    ipn(pair!.a, '-6', 'route', 'add', '2001:db8:10a::/64', 'via', 'fe80::200:5efe:c633:6403', 'dev', 'i1')
    // the engine learns the route from its notification (native/README "isatap next hop"): a packet sent before
    // it is processed (a loaded machine: tens of ms) still goes by the route before, to the default router
    await until('the engine sends by the new route', () => nsExec(pair!.a, 'ping', ['-c', '1', '-W', '1', '2001:db8:10a::2']).code === 0, 10_000)
    const before = counters(pair!.b, 'qi')?.rxPackets ?? 0
    const p = nsExec(pair!.a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '2001:db8:10a::2'])
    assert.match(p.out, /3 packets transmitted, 3 received/, p.out + p.err)
    const c = await until('qi counts the requests', () => {
      const n = counters(pair!.b, 'qi')
      return n && n.rxPackets >= before + 3 && n
    }, 10_000).catch(() => counters(pair!.b, 'qi'))
    assert.ok(c && c.rxPackets >= before + 3, `qi ${JSON.stringify(c)}`)
    // the same prefix via the default router (its address has no isatap tunnel here): lost; the route decides
    ipn(pair!.a, '-6', 'route', 'del', '2001:db8:10a::/64')
    ipn(pair!.a, '-6', 'route', 'add', '2001:db8:10a::/64', 'via', 'fe80::200:5efe:c633:6402', 'dev', 'i1')
    const q = nsExec(pair!.a, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '2001:db8:10a::2'])
    assert.match(q.out, /2 packets transmitted, 0 received/, q.out + q.err)
  })
}
u.run()
