// src/userspace/kernel-twin.ts: the link-local addresses and default MTU of the kernel's tunnel devices, as
// measured in user-mode-linux 6.1.176 (a veth underlay of mtu 1400, 192.0.2.1/24 on it, 198.51.100.1/32 on lo).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {
  createdDeviceView,
  isatapInterfaceId,
  kernelDefaultMtu,
  kernelIpv6Addresses,
  kernelViewLines,
  linkViews,
  routeDevices,
  routeQuery,
  type TwinParams,
  type V4Addr,
} from '../../../src/userspace/kernel-twin.js'
import {gre} from '../../../src/drivers/gre.js'

const ns: V4Addr[] = [
  {local: '127.0.0.1', scope: 'host'},
  {local: '198.51.100.1', scope: 'global'},
  {local: '192.0.2.1', scope: 'global'},
  {local: '169.254.1.1', scope: 'link'},
]
const addrs = (mode: string, local: string, remote: string, v4 = ns) =>
  kernelIpv6Addresses({mode, local, remote}, v4).map((a) => `${a.address}/${a.prefixlen}`)

test('isatap interface id: documentation/private addresses get 0:5efe, global ones 200:5efe (__ipv6_isatap_ifid)', () => {
  assert.is(isatapInterfaceId('192.0.2.1'), '0:5efe:c000:201')
  assert.is(isatapInterfaceId('10.1.2.3'), '0:5efe:a01:203')
  assert.is(isatapInterfaceId('172.16.0.1'), '0:5efe:ac10:1')
  assert.is(isatapInterfaceId('172.32.0.1'), '200:5efe:ac20:1')
  assert.is(isatapInterfaceId('198.18.0.1'), '0:5efe:c612:1')
  assert.is(isatapInterfaceId('198.51.100.1'), '200:5efe:c633:6401')
  assert.is(isatapInterfaceId('203.0.113.9'), '200:5efe:cb00:7109')
  assert.is(isatapInterfaceId('192.88.99.1'), '0:5efe:c058:6301')
  assert.is(isatapInterfaceId('0.0.0.0'), undefined)
})

test('isatap: fe80::5efe:… or fe80::200:5efe:… from local; none with local any', () => {
  assert.equal(addrs('isatap', '192.0.2.1', 'any'), ['fe80::5efe:c000:201/64'])
  assert.equal(addrs('isatap', '198.51.100.1', 'any'), ['fe80::200:5efe:c633:6401/64'])
  assert.equal(addrs('isatap', 'any', 'any'), [])
})

test('gre with a local address: the isatap-style identifier, with or without remote (measured g1, g2, g3)', () => {
  assert.equal(addrs('gre', '192.0.2.1', '192.0.2.2'), ['fe80::5efe:c000:201/64'])
  assert.equal(addrs('gre', '192.0.2.1', 'any'), ['fe80::5efe:c000:201/64'])
  assert.equal(addrs('gre', '198.51.100.1', '192.0.2.2'), ['fe80::200:5efe:c633:6401/64'])
})

test('gre with local any: fe80::a.b.c.d per global address (add_v4_addrs; measured g4)', () => {
  assert.equal(addrs('gre', 'any', '192.0.2.2'), ['fe80::c633:6401/64', 'fe80::c000:201/64'])
  // not point-to-point: host-scope addresses too
  assert.equal(addrs('gre', 'any', 'any'), ['fe80::7f00:1/64', 'fe80::c633:6401/64', 'fe80::c000:201/64'])
})

test('ipip: the isatap-style identifier of local (measured p1, p2); none with local any', () => {
  assert.equal(addrs('ipip', '192.0.2.1', '192.0.2.2'), ['fe80::5efe:c000:201/64'])
  assert.equal(addrs('ipip', '192.0.2.1', 'any'), ['fe80::5efe:c000:201/64'])
  assert.equal(addrs('ipip', 'any', '192.0.2.2'), [])
})

test('sit point-to-point: fe80::<local>, or per global address with local any (measured s1, s3, s4)', () => {
  assert.equal(addrs('sit', '192.0.2.1', '192.0.2.2'), ['fe80::c000:201/64'])
  assert.equal(addrs('sit', '198.51.100.1', '192.0.2.9'), ['fe80::c633:6401/64'])
  assert.equal(addrs('sit', 'any', '192.0.2.2'), ['fe80::c633:6401/64', 'fe80::c000:201/64'])
})

test('sit NBMA: the IPv4-compatible ::a.b.c.d/96 (measured s2)', () => {
  assert.equal(addrs('sit', '192.0.2.1', 'any'), ['::c000:201/96'])
  assert.equal(addrs('sit', 'any', 'any', [{local: '192.0.2.1', scope: 'global'}]), ['::c000:201/96'])
})

test('default MTU: underlay 1400 → gre 1376, gre key 1372, ipip/sit 1380 (measured); no device → 1476/1472/1480', () => {
  assert.is(kernelDefaultMtu({mode: 'gre', local: '192.0.2.1', remote: '192.0.2.2'}, 1400), 1376)
  assert.is(kernelDefaultMtu({mode: 'gre', local: '192.0.2.1', remote: '192.0.2.2', okey: 6}, 1400), 1372)
  assert.is(kernelDefaultMtu({mode: 'gre', local: '192.0.2.1', remote: 'any', okey: 5}, undefined), 1472)
  assert.is(kernelDefaultMtu({mode: 'gre', local: 'any', remote: 'any', okey: 5, ocsum: true, oseq: true}, undefined), 1464)
  assert.is(kernelDefaultMtu({mode: 'gre', local: 'any', remote: 'any'}, undefined), 1476)
  assert.is(kernelDefaultMtu({mode: 'ipip', local: '192.0.2.1', remote: '192.0.2.2'}, 1400), 1380)
  assert.is(kernelDefaultMtu({mode: 'ipip', local: '192.0.2.1', remote: 'any'}, undefined), 1480)
  assert.is(kernelDefaultMtu({mode: 'sit', local: '192.0.2.1', remote: '192.0.2.2'}, 1400), 1380)
  assert.is(kernelDefaultMtu({mode: 'sit', local: '192.0.2.1', remote: 'any'}, undefined), 1480)
})

test('default MTU of a multicast-remote gre: keyed by its group (iproute2, the gre driver) → 1500 − 28 = 1472 (measured in UML)', () => {
  const p = gre.normalize({mode: 'gre', local: '203.0.113.1', remote: '239.1.1.1'})
  assert.is(p.ikey, 0xef010101)
  assert.is(p.okey, 0xef010101)
  assert.is(kernelDefaultMtu({mode: 'gre', local: p.local, remote: p.remote, okey: p.okey}, 1500), 1472)
  // not the header_ops' hard_header_len: ip_tunnel_bind_dev subtracts only t_hlen since 5.11 (28e104d00281)
  assert.is(kernelDefaultMtu({mode: 'gre', local: '203.0.113.1', remote: '239.1.1.1', okey: 5}, 1500), 1472)
})

test('default MTU floors and cap: ipip/gre 68, sit 1280, IP_MAX_MTU', () => {
  assert.is(kernelDefaultMtu({mode: 'gre', local: 'any', remote: '192.0.2.2', okey: 1}, 90), 68)
  assert.is(kernelDefaultMtu({mode: 'sit', local: 'any', remote: '192.0.2.2'}, 1290), 1280)
  assert.is(kernelDefaultMtu({mode: 'isatap', local: '192.0.2.1', remote: 'any'}, 9000), 8980)
  assert.is(kernelDefaultMtu({mode: 'ipip', local: 'any', remote: '192.0.2.2'}, 65536), 0xfff0 - 20)
})

// `ip -j addr show` of a namespace: an underlay (mtu 1400) up, a second device down, two TUN devices
const ipAddrShow = [
  {ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, addr_info: [{family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host'}]},
  {ifname: 'veth0', flags: ['BROADCAST', 'UP', 'LOWER_UP'], mtu: 1400, addr_info: [{family: 'inet', local: '192.0.2.1', prefixlen: 24, scope: 'global'}]},
  {ifname: 'down0', flags: ['BROADCAST'], mtu: 1500, addr_info: [{family: 'inet', local: '203.0.113.1', prefixlen: 24, scope: 'global'}]},
  {
    ifname: 'g1',
    flags: ['POINTOPOINT', 'NOARP', 'UP'],
    mtu: 1476,
    addr_info: [
      {family: 'inet6', local: 'fe80::1234:5678:9abc:def0', prefixlen: 64, scope: 'link'},
      {family: 'inet6', local: '2001:db8::1', prefixlen: 64, scope: 'global'},
    ],
  },
  {ifname: 's1', flags: ['POINTOPOINT', 'NOARP'], mtu: 1480, addr_info: []},
]

test('linkViews: flags, MTU and addresses per device from one `ip -j addr show`', () => {
  const v = linkViews(ipAddrShow)
  assert.equal([...v.keys()], ['lo', 'veth0', 'down0', 'g1', 's1'])
  assert.is(v.get('veth0')!.up, true)
  assert.is(v.get('down0')!.up, false)
  assert.is(v.get('g1')!.mtu, 1476)
  assert.is(v.get('g1')!.addrs.length, 2)
})

test('routeDevices: answers matched to queries by destination; a failed query (no line) gets none', () => {
  const qs = [routeQuery({mode: 'gre', local: '192.0.2.1', remote: '192.0.2.2'})!, 'route get 198.51.100.9', routeQuery({mode: 'sit', local: 'any', remote: '192.0.2.3', dev: 'veth0'})!]
  assert.equal(qs, ['route get 192.0.2.2 from 192.0.2.1', 'route get 198.51.100.9', 'route get 192.0.2.3 oif veth0'])
  const out = '[{"dst":"192.0.2.2","dev":"veth0","prefsrc":"192.0.2.1"}]\n[{"dst":"192.0.2.3","dev":"veth0"}]\n'
  assert.equal([...routeDevices(qs, out)], [
    ['route get 192.0.2.2 from 192.0.2.1', 'veth0'],
    ['route get 192.0.2.3 oif veth0', 'veth0'],
  ])
  assert.is(routeQuery({mode: 'isatap', local: '192.0.2.1', remote: 'any'}), undefined)
})

test('kernelViewLines: one batch for many tunnels: addrgenmode none, the random link-local out, the kernel one in, default MTU', () => {
  const links = linkViews(ipAddrShow)
  const routeDev = new Map([['route get 192.0.2.2 from 192.0.2.1', 'veth0']])
  const lines = kernelViewLines(
    [
      {name: 'g1', params: {mode: 'gre', local: '192.0.2.1', remote: '192.0.2.2'}, withMtu: true},
      // down: no addresses yet (addrconf adds them on NETDEV_UP); no route: no device, 1480
      {name: 's1', params: {mode: 'sit', local: '192.0.2.1', remote: '198.51.100.9'}, withMtu: true},
      {name: 'gone0', params: {mode: 'ipip', local: '192.0.2.1', remote: '192.0.2.2'}, withMtu: true},
    ],
    links,
    routeDev,
  )
  assert.equal(lines, [
    'link set dev g1 addrgenmode none',
    'addr del fe80::1234:5678:9abc:def0/64 dev g1',
    'addr add fe80::5efe:c000:201/64 dev g1',
    'link set dev g1 mtu 1376',
    'link set dev s1 addrgenmode none',
  ])
})

test('kernelViewLines: local any gre takes the up devices\' IPv4 addresses; a configured MTU or withMtu false sets none', () => {
  const links = linkViews(ipAddrShow)
  const lines = kernelViewLines(
    [
      {name: 'g1', params: {mode: 'gre', local: 'any', remote: '192.0.2.2'}, withMtu: false},
      {name: 's1', params: {mode: 'sit', local: '192.0.2.1', remote: '192.0.2.2', mtu: 1300}, withMtu: true},
    ],
    links,
    new Map(),
  )
  // 203.0.113.1 is on a down device, 127.0.0.1 is host scope on a point-to-point tunnel: not taken
  assert.equal(lines, ['link set dev g1 addrgenmode none', 'addr del fe80::1234:5678:9abc:def0/64 dev g1', 'addr add fe80::c000:201/64 dev g1', 'link set dev s1 addrgenmode none'])
})

test('createdDeviceView: what kernelViewLines adds to a fresh device the engine made (link-locals when up, default MTU), without ip', () => {
  // a fresh TUN device (engine.c: addrgenmode none from the start, no address) on a namespace whose route to
  // 192.0.2.2 leaves by veth0 (mtu 1400)
  const cases: Array<[TwinParams & {mtu?: number}, boolean]> = [
    [{mode: 'gre', local: '192.0.2.1', remote: '192.0.2.2'}, true],
    [{mode: 'gre', local: '192.0.2.1', remote: '192.0.2.2', okey: 5}, true],
    [{mode: 'gre', local: '192.0.2.1', remote: '192.0.2.2', mtu: 1300}, true],
    [{mode: 'ipip', local: '198.51.100.1', remote: '192.0.2.2'}, true],
    [{mode: 'ipip', local: 'any', remote: '192.0.2.2'}, true],
    [{mode: 'sit', local: '192.0.2.1', remote: '192.0.2.2'}, true],
    [{mode: 'sit', local: '192.0.2.1', remote: 'any'}, true],
    [{mode: 'isatap', local: '198.51.100.1', remote: 'any'}, true],
    [{mode: 'gre', local: '192.0.2.1', remote: '192.0.2.9', dev: 'veth0'}, false],
  ]
  for (const [p, up] of cases) {
    const links = new Map([
      ['t0', {ifname: 't0', up, mtu: 1500, addrs: []}],
      ['veth0', {ifname: 'veth0', up: true, mtu: 1400, addrs: []}],
    ])
    const q = routeQuery(p)
    const routeDev = new Map(q && p.remote === '192.0.2.2' ? [[q, 'veth0']] : [])
    const lines = kernelViewLines([{name: 't0', params: p, withMtu: true}], links, routeDev).filter((l) => !l.endsWith('addrgenmode none'))
    const tdev = (q && routeDev.get(q)) || p.dev
    const v = createdDeviceView(p, up, tdev ? links.get(tdev)?.mtu : undefined)
    assert.ok(v, JSON.stringify(p))
    const mine = [...v!.linkLocal.map((a) => `addr add ${a} dev t0`), ...(v!.mtu !== undefined && v!.mtu !== 1500 ? [`link set dev t0 mtu ${v!.mtu}`] : [])]
    assert.equal(mine, lines, JSON.stringify(p))
    assert.is(v!.mtu === undefined, p.mtu !== undefined, `${JSON.stringify(p)}: a configured MTU is the spec's`)
  }
  assert.equal(createdDeviceView({mode: 'gre', local: '192.0.2.1', remote: '192.0.2.2'}, true, 1400), {linkLocal: ['fe80::5efe:c000:201/64'], mtu: 1376})
  assert.equal(createdDeviceView({mode: 'ipip', local: '198.51.100.1', remote: '192.0.2.2'}, false, undefined), {linkLocal: [], mtu: 1480})
})

test('createdDeviceView: undefined where the namespace\'s IPv4 addresses decide the link-locals (gre and sit with local any)', () => {
  assert.is(createdDeviceView({mode: 'gre', local: 'any', remote: '192.0.2.2'}, true, 1400), undefined)
  assert.is(createdDeviceView({mode: 'sit', local: 'any', remote: '192.0.2.2'}, false, undefined), undefined)
  assert.ok(createdDeviceView({mode: 'isatap', local: 'any', remote: 'any'}, true, undefined))
})

test.run()
