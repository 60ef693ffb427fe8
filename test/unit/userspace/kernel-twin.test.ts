// src/userspace/kernel-twin.ts: the link-local addresses and default MTU of the kernel's tunnel devices, as
// measured in user-mode-linux 6.1.176 (a veth underlay of mtu 1400, 192.0.2.1/24 on it, 198.51.100.1/32 on lo).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {isatapInterfaceId, kernelDefaultMtu, kernelIpv6Addresses, type V4Addr} from '../../../src/userspace/kernel-twin.js'

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

test('default MTU floors and cap: ipip/gre 68, sit 1280, IP_MAX_MTU', () => {
  assert.is(kernelDefaultMtu({mode: 'gre', local: 'any', remote: '192.0.2.2', okey: 1}, 90), 68)
  assert.is(kernelDefaultMtu({mode: 'sit', local: 'any', remote: '192.0.2.2'}, 1290), 1280)
  assert.is(kernelDefaultMtu({mode: 'isatap', local: '192.0.2.1', remote: 'any'}, 9000), 8980)
  assert.is(kernelDefaultMtu({mode: 'ipip', local: 'any', remote: '192.0.2.2'}, 65536), 0xfff0 - 20)
})

test.run()
