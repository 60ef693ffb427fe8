// buildObserved over captured `ip -j` outputs (UML): tunnels, ownership, addresses, routes, counters, userspace TUN.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {addressesOf, buildObserved, parsePrl, routeKeysOf, routesOf, tableNumber} from '../../../src/observe/parse.js'
import {parseSpec} from '../../../src/spec/load.js'
import {diffRoutes} from '../../../src/plan/diff.js'
import {readRtTables} from '../../../src/lib/rttables.js'

const FX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'ip')
const read = (f: string) => JSON.parse(readFileSync(join(FX, f), 'utf8'))
const links = read('link-all.json')
const addrs = read('addr.json')
const routes = read('route.json')
const encap = {params: {mode: 'gre' as const, local: '192.0.2.1', remote: '198.51.100.9', fwmark: 0, up: true}, pid: 1234, alive: true}

test('fallback devices and non-tunnels are not reported; links and kinds cover everything', () => {
  const st = buildObserved({links, addrs, routes}, {netns: 'ns1'})
  // tun9 is tunctl's TUN device (ifalias tunctl): a userspace tunnel even without its encapsulator's record
  assert.equal(st.tunnels.map((t) => t.name), ['gre1', 'sitq', 'tun9'])
  assert.is(st.netns, 'ns1')
  for (const n of ['lo', 'tunl0', 'gre0', 'gretap0', 'erspan0', 'sit0', 'ip_vti0', 'u0', 'u1', 'tun9']) assert.ok(st.links.includes(n), n)
  assert.is(st.kinds.u0, 'veth')
  assert.is(st.kinds.tun9, 'tun')
  assert.is(st.kinds.gre1, 'gre')
})

test('gre1: params, ownership by ifalias, addresses without link-local, routes, counters', () => {
  const g = buildObserved({links, addrs, routes}).tunnels.find((t) => t.name === 'gre1')!
  assert.is(g.driver, 'kernel')
  assert.is(g.owned, true)
  assert.is(g.operstate, 'UNKNOWN')
  assert.equal(g.params.ikey, 1)
  assert.is(g.params.mtu, 1472)
  assert.is(g.params.up, true)
  assert.equal(g.addresses, ['10.0.0.1/30', '2001:db8:1::1/64'])
  assert.equal(g.routes, [
    {to: '10.2.0.0/16', table: 100, metric: 0},
    {to: '0.0.0.0/0', table: 200, metric: 0},
    {to: '::/0', table: 200, metric: 1024},
    {to: '10.1.0.0/16', table: 254, metric: 100, via: '10.0.0.2'},
    {to: '2001:db8:2::/48', table: 254, metric: 1024, via: '2001:db8:1::2'},
  ])
  assert.ok(g.counters)
  assert.is(typeof g.counters!.txErrors, 'number')
  const sitq = buildObserved({links, addrs, routes}).tunnels.find((t) => t.name === 'sitq')!
  assert.is(sitq.owned, false)
  assert.equal(sitq.routes, []) // only the kernel's prefix route and fe80::/64
})

test('a tunctl TUN device with an encapsulator becomes a userspace tunnel; without one its mode is unknown and it is dead', () => {
  const st = buildObserved({links, addrs, routes, encaps: new Map([['tun9', encap]])})
  const u = st.tunnels.find((t) => t.name === 'tun9')!
  assert.is(u.driver, 'userspace')
  assert.is(u.pid, 1234)
  assert.is(u.alive, true)
  assert.is(u.params.remote, '198.51.100.9')
  assert.is(u.params.mtu, 1500) // from the link
  assert.is(u.params.up, true)
  // the record is lost (state and stats files gone): still tunctl's (plan replaces it, del deletes it)
  const lost = buildObserved({links, addrs, routes}).tunnels.find((t) => t.name === 'tun9')!
  assert.is(lost.driver, 'userspace')
  assert.is(lost.owned, true)
  assert.is(lost.alive, false)
  assert.is(lost.params.mode as string, 'unknown')
  // a TUN device without tunctl's mark is not a tunnel
  const foreign = links.map((l: any) => (l.ifname === 'tun9' ? {...l, ifalias: undefined} : l))
  assert.ok(!buildObserved({links: foreign, addrs, routes}).tunnels.some((t) => t.name === 'tun9'))
})

test('every captured single-tunnel fixture is observed with its mode', () => {
  for (const f of ['ipip-basic', 'gre-key', 'sit-basic', 'isatap-prl', 'vti-key']) {
    const link = read(f + '.json')
    const st = buildObserved({links: [link], addrs: [], routes: [], tunnelShow: readOr(f + '.tunnel.txt')})
    assert.is(st.tunnels.length, 1, f)
    assert.is(st.tunnels[0]!.params.mode, f.split('-')[0], f)
    assert.is(st.tunnels[0]!.owned, true, f)
  }
  const isa = buildObserved({links: [read('isatap-prl.json')], addrs: [], routes: [], tunnelShow: readOr('isatap-prl.tunnel.txt')})
  assert.equal(isa.tunnels[0]!.params.routers, [
    {address: '192.0.2.3', default: false},
    {address: '192.0.2.254', default: true},
  ])
})

test('parsePrl reads pdr/pr from ip tunnel show', () => {
  const m = parsePrl('isa: ipv6/ip remote any local 192.0.2.1 pdr 192.0.2.254 pr 192.0.2.3 dev u0 ttl inherit\ngre1: gre/ip remote 1.2.3.4 local any\n')
  assert.equal(m.get('isa'), [
    {address: '192.0.2.254', default: true},
    {address: '192.0.2.3', default: false},
  ])
  assert.equal(m.get('gre1'), [])
})

test('tables: names to numbers', () => {
  assert.is(tableNumber('main'), 254)
  assert.is(tableNumber('local'), 255)
  assert.is(tableNumber('default'), 253)
  assert.is(tableNumber('100'), 100)
  assert.is(tableNumber(undefined), 254)
  assert.is(tableNumber('vpn', new Map([['vpn', 7]])), 7)
})

test('routes: local table, proto kernel, broadcast and IPv6 link-local/multicast excluded', () => {
  const rs = routesOf(
    [
      {type: 'local', dst: '10.0.0.1', dev: 't', table: 'local', protocol: 'kernel'},
      {dst: '10.0.0.0/30', dev: 't', protocol: 'kernel', scope: 'link'},
      {dst: 'fe80::/64', dev: 't', protocol: 'kernel', metric: 256, pref: 'medium'},
      {type: 'multicast', dst: 'ff00::/8', dev: 't', table: 'local', protocol: 'kernel', metric: 256, pref: 'medium'},
      {dst: '10.9.0.0/16', dev: 't', protocol: 'static'},
      {dst: 'default', dev: 't', protocol: 'boot', metric: 1024, pref: 'medium', table: '300'},
      {dst: '10.8.0.0/16', dev: 'other', protocol: 'boot'},
      {dst: '2001:db8::5', dev: 't', protocol: 'boot', metric: 1024, pref: 'medium'},
    ],
    't',
  )
  assert.equal(rs, [
    {to: '10.9.0.0/16', table: 254, metric: 0},
    {to: '2001:db8::5/128', table: 254, metric: 1024},
    {to: '::/0', table: 300, metric: 1024},
  ])
})

test('routes of many devices: each destination text parsed once per observation, the same result as one by one', () => {
  // what 1000 tunnel devices list: fe80::/64 and ff00::/8 per device; default in both families (the same text)
  const routes: any[] = []
  for (const dev of ['a', 'b', 'c']) {
    routes.push({dst: 'fe80::/64', dev, protocol: 'kernel', metric: 256, pref: 'medium'})
    routes.push({type: 'multicast', dst: 'ff00::/8', dev, table: 'local', protocol: 'kernel', metric: 256, pref: 'medium'})
    routes.push({dst: '2001:db8::/64', dev, protocol: 'boot', metric: 1024, pref: 'medium', table: dev === 'a' ? '300' : 'main'})
  }
  routes.push({dst: 'default', dev: 'a', protocol: 'boot', metric: 5})
  routes.push({dst: 'default', dev: 'b', protocol: 'boot', metric: 1024, pref: 'medium'})
  routes.push({dst: 'default', gateway: '2001:db8::1', dev: 'c', protocol: 'boot', metric: 7})
  const links = ['a', 'b', 'c'].map((ifname, i) => ({ifindex: i + 2, ifname, flags: ['UP'], linkinfo: {info_kind: 'dummy'}}))
  const st = buildObserved({links, addrs: [], routes})
  assert.equal(st.routeKeys, routeKeysOf(routes))
  assert.equal(
    st.routeKeys!.filter((k) => k.to.endsWith('/0')).map((k) => [k.dev, k.to]),
    [['a', '0.0.0.0/0'], ['b', '::/0'], ['c', '::/0']],
  )
  assert.equal(routesOf(routes, 'a'), [{to: '0.0.0.0/0', table: 254, metric: 5}, {to: '2001:db8::/64', table: 300, metric: 1024}])
  const memo = new Map()
  assert.equal(routesOf(routes, 'b', undefined, memo), routesOf(routes, 'b'))
  assert.equal(routesOf(routes, 'c', undefined, memo), [{to: '2001:db8::/64', table: 254, metric: 1024}, {to: '::/0', table: 254, metric: 7, via: '2001:db8::1'}])
})

test('addresses: canonical IPv6 text, link-local dropped, sorted, deduplicated', () => {
  const a = addressesOf(
    [{ifname: 't', addr_info: [
      {family: 'inet6', local: '2001:0db8:0000::1', prefixlen: 64},
      {family: 'inet6', local: 'fe80::1', prefixlen: 64},
      {family: 'inet', local: '10.0.0.1', prefixlen: 30},
      {family: 'inet', local: '10.0.0.1', prefixlen: 30},
    ]}],
    't',
  )
  assert.equal(a, ['10.0.0.1/30', '2001:db8::1/64'])
})

test('addresses: all of fe80::/10 is link-local, in any case; its neighbours fe7f:: and fec0:: are kept', () => {
  const info = (local: string) => ({family: 'inet6', local, prefixlen: 64})
  const a = addressesOf(
    [{ifname: 't', addr_info: [info('fe80::200:5efe:c633:6401'), info('FEBF::1'), info('fe9a:1::2'), info('feb0::'), info('fe7f::1'), info('fec0::1'), info('fe80:zz::1')]}],
    't',
  )
  assert.equal(a, ['fe7f::1/64', 'fec0::1/64'])
})

test('a link whose output cannot be decoded is skipped, not fatal', () => {
  const bad = read('gre-key.json')
  bad.linkinfo.info_data.ikey = 'not-a-key'
  const st = buildObserved({links: [bad, read('vti-key.json')], addrs: [], routes: []})
  assert.equal(st.tunnels.map((t) => t.name), ['vtix'])
  assert.is(st.kinds.grex, 'gre')
})

function readOr(f: string): string | undefined {
  try {
    return readFileSync(join(FX, f), 'utf8')
  } catch {
    return undefined
  }
}


test('sit without a remote: the kernel\'s own ::a.b.c.d/96 is not a configured address (captured in UML 6.1)', () => {
  // `ip -j addr show dev s1` for `ip link add s1 type sit local 198.51.100.1 ttl 64` + one configured address
  const raw = [
    {
      ifname: 's1',
      addr_info: [
        {family: 'inet6', local: '::198.51.100.1', prefixlen: 96, scope: 'global'},
        {family: 'inet6', local: '2001:db8:3::1', prefixlen: 64, scope: 'global'},
      ],
    },
  ]
  assert.equal(addressesOf(raw, 's1', {sit: true}), ['2001:db8:3::1/64'])
  // on any other device it is an address like any other, and read as ::c633:6401 (not the IPv4-mapped ::ffff:…)
  assert.equal(addressesOf(raw, 's1'), ['2001:db8:3::1/64', '::c633:6401/96'])
})

test('a route in a table named only in rt_tables.d/*.conf (hex id) verifies: spec and observe read the names alike', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tunctl-rt-'))
  try {
    writeFileSync(join(dir, 'rt_tables'), '# no names here\n')
    mkdirSync(join(dir, 'rt_tables.d'))
    writeFileSync(join(dir, 'rt_tables.d', 'vpn.conf'), '0x64 vpn\n')
    const names = readRtTables([join(dir, 'rt_tables')]) // what observe reads (hostRtTables) and the spec's default
    assert.is(names.get('vpn'), 100)
    const spec = 'version: 1\ntunnels:\n  gre1:\n    mode: gre\n    local: 192.0.2.1\n    remote: 198.51.100.9\n    routes: [{to: 10.9.0.0/16, table: vpn}]\n'
    const want = parseSpec('t.yaml', spec, {rtTables: names}).tunnels[0]!.routes
    assert.equal(want, [{to: '10.9.0.0/16', table: 100}])
    // iproute2 prints the table by the name it reads from the same rt_tables.d file
    const dump = [{dst: '10.9.0.0/16', dev: 'gre1', table: 'vpn', protocol: 'boot', scope: 'link', flags: []}]
    const have = routesOf(dump, 'gre1', names)
    assert.equal(have, [{to: '10.9.0.0/16', table: 100, metric: 0}])
    assert.equal(diffRoutes(have, want), {del: [], add: []}, 'the route verifies: nothing to add or delete')
    // a name no file defines stays distinct (never guessed to be the one the spec meant)
    assert.equal(diffRoutes(routesOf(dump, 'gre1', new Map()), want).add, want)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test.run()
