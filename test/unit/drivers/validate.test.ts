// Per-mode kernel rules of validate(), with pointers relative to the entry, and normalize() defaults.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {ALL_KEYS, COMMON_KEYS, DRIVERS} from '../../../src/drivers/index.js'
import {parseKey} from '../../../src/net/key.js'
import {endpoint} from '../../../src/net/endpoint.js'
import ipaddr from 'ipaddr.js'
import type {Mode} from '../../../src/model/types.js'

const v = (mode: Mode, e: Record<string, unknown>) => DRIVERS[mode].validate({mode, ...e})
const ptrs = (mode: Mode, e: Record<string, unknown>) => v(mode, e).map((d) => d.pointer)

test('minimal entries are valid in every mode', () => {
  for (const m of Object.keys(DRIVERS) as Mode[]) assert.equal(v(m, {}), [], m)
})

test('keys only on gre and vti', () => {
  for (const m of ['ipip', 'sit', 'isatap'] as Mode[]) {
    assert.equal(ptrs(m, {key: 1}), ['/key'])
    assert.equal(ptrs(m, {'input-key': 1, 'output-key': 2}), ['/input-key', '/output-key'])
  }
  assert.equal(v('gre', {key: 1}), [])
  assert.equal(v('vti', {'input-key': '0.0.0.1', 'output-key': 2}), [])
})

test('key XOR input-key/output-key; bad key values', () => {
  assert.equal(ptrs('gre', {key: 1, 'input-key': 2}), ['/key'])
  assert.equal(ptrs('vti', {key: 1, 'output-key': 2}), ['/key'])
  assert.equal(ptrs('gre', {key: '1.2.3'}), ['/key'])
  assert.equal(ptrs('gre', {key: 2 ** 32}), ['/key'])
})

test('dotted-quad keys are u32 big-endian like iproute2 get_addr32', () => {
  assert.is(parseKey('0.0.0.42'), 42)
  assert.is(parseKey('1.2.3.4'), 0x01020304)
  assert.is(parseKey('255.255.255.255'), 0xffffffff)
  assert.is(parseKey(7), 7)
  assert.is(parseKey('0x10'), 16)
  assert.is(parseKey('256.0.0.0'), undefined)
  assert.equal(DRIVERS.gre.normalize({mode: 'gre', key: '0.0.1.0'}).ikey, 256)
})

test('csum/seq/ignore-df only on gre', () => {
  for (const m of ['ipip', 'sit', 'isatap', 'vti'] as Mode[]) {
    assert.equal(ptrs(m, {csum: true, seq: true, 'ignore-df': false}), ['/csum', '/seq', '/ignore-df'], m)
  }
  assert.equal(v('gre', {csum: {input: true}, seq: false}), [])
  assert.equal(ptrs('gre', {csum: {inbound: true}}), ['/csum'])
})

test('a fixed ttl needs pmtudisc true', () => {
  for (const m of ['ipip', 'sit', 'isatap', 'gre'] as Mode[]) {
    assert.equal(ptrs(m, {ttl: 64, pmtudisc: false}), ['/ttl'], m)
    assert.equal(v(m, {ttl: 'inherit', pmtudisc: false}), [], m)
    assert.equal(v(m, {ttl: 64}), [], m)
  }
  assert.equal(ptrs('gre', {ttl: 0}), ['/ttl'])
  assert.equal(ptrs('gre', {ttl: 256}), ['/ttl'])
})

test('ignore-df needs pmtudisc false', () => {
  assert.equal(ptrs('gre', {'ignore-df': true}), ['/ignore-df'])
  assert.equal(ptrs('gre', {'ignore-df': true, pmtudisc: true}), ['/ignore-df'])
  assert.equal(v('gre', {'ignore-df': true, pmtudisc: false}), [])
})

test('encapsulated values per mode', () => {
  for (const e of ['ipip', 'mplsip', 'any']) assert.equal(v('ipip', {encapsulated: e}), [], e)
  assert.equal(ptrs('ipip', {encapsulated: 'ip6ip'}), ['/encapsulated'])
  for (const e of ['ip6ip', 'ipip', 'mplsip', 'any']) assert.equal(v('sit', {encapsulated: e}), [], e)
  for (const m of ['gre', 'vti', 'isatap'] as Mode[]) assert.equal(ptrs(m, {encapsulated: 'ipip'}), ['/encapsulated'], m)
})

test('6rd only on sit, with kernel prefix rules', () => {
  assert.equal(v('sit', {'6rd-prefix': '2001:db8::/32'}), [])
  assert.equal(v('sit', {'6rd-prefix': '2001:db8:100::/40', '6rd-relay-prefix': '192.0.0.0/8'}), [])
  assert.equal(ptrs('sit', {'6rd-prefix': '2001:db8::1/32'}), ['/6rd-prefix']) // host bits
  assert.equal(ptrs('sit', {'6rd-prefix': '2001:db8::/48'}), ['/6rd-prefix']) // 48 + 32 > 64
  assert.equal(ptrs('sit', {'6rd-prefix': '2001:db8::/32', '6rd-relay-prefix': '192.0.2.1/24'}), ['/6rd-relay-prefix'])
  assert.equal(ptrs('sit', {'6rd-relay-prefix': '192.0.0.0/8'}), ['/6rd-relay-prefix'])
  // 0.0.0.0 with a length: the kernel takes it, iproute2 cannot show it back (verification could not see it)
  assert.equal(ptrs('sit', {'6rd-prefix': '2001:db8::/40', '6rd-relay-prefix': '0.0.0.0/8'}), ['/6rd-relay-prefix'])
  assert.equal(v('sit', {'6rd-prefix': '2001:db8::/32', '6rd-relay-prefix': '0.0.0.0/0'}), [])
  assert.equal(ptrs('sit', {'6rd-prefix': '2001:db8::/32', encapsulated: 'ipip'}), ['/6rd-prefix'])
  for (const m of ['ipip', 'gre', 'vti', 'isatap'] as Mode[]) assert.equal(ptrs(m, {'6rd-prefix': '2001:db8::/32'}), ['/6rd-prefix'], m)
})

test('routers only on isatap; isatap remote must be any', () => {
  assert.equal(v('isatap', {routers: ['192.0.2.254', {address: '192.0.2.3', default: false}]}), [])
  for (const m of ['ipip', 'sit', 'gre', 'vti'] as Mode[]) assert.equal(ptrs(m, {routers: ['192.0.2.254']}), ['/routers'], m)
  assert.equal(ptrs('isatap', {remote: '198.51.100.7'}), ['/remote'])
  assert.equal(v('isatap', {remote: 'any'}), [])
  assert.equal(ptrs('isatap', {routers: ['192.0.2.1', '192.0.2.1', 'x']}), ['/routers/1', '/routers/2'])
})

test('vti has no ttl/tos/pmtudisc', () => {
  assert.equal(ptrs('vti', {ttl: 64, tos: 0, pmtudisc: true}), ['/ttl', '/tos', '/pmtudisc'])
})

test('addresses, routes and dev are not the driver\'s: spec/semantic.ts checks them once (families: net/addr.ts innerFamilies)', () => {
  assert.equal(v('ipip', {addresses: ['10.0.0.1/30', '2001:db8::1/64']}), [])
  assert.equal(v('sit', {routes: [{to: '10.0.0.0/8', via: '2001:db8::1'}]}), [])
  assert.equal(v('gre', {dev: 'eth0'}), [])
})

test('mtu ranges per mode (the kernel clamps silently above the maximum)', () => {
  assert.equal(ptrs('sit', {mtu: 1279}), ['/mtu'])
  assert.equal(v('sit', {mtu: 1280}), [])
  assert.equal(v('ipip', {mtu: 68}), [])
  assert.equal(ptrs('ipip', {mtu: 65516}), ['/mtu'])
  assert.equal(v('gre', {mtu: 65511}), [])
  assert.equal(ptrs('gre', {mtu: 65511, key: 1}), ['/mtu'])
})

test('normalize fills kernel defaults', () => {
  assert.equal(DRIVERS.ipip.normalize({mode: 'ipip'}), {mode: 'ipip', local: 'any', remote: 'any', ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, proto: 'ipip', up: true})
  assert.equal(DRIVERS.sit.normalize({mode: 'sit'}).proto, 'ip6ip')
  assert.equal(DRIVERS.isatap.normalize({mode: 'isatap'}), {mode: 'isatap', local: 'any', remote: 'any', ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, proto: 'ip6ip', up: true, routers: []})
  assert.equal(DRIVERS.vti.normalize({mode: 'vti', key: 5, up: false}), {mode: 'vti', local: 'any', remote: 'any', ikey: 5, okey: 5, fwmark: 0, up: false})
  const g = DRIVERS.gre.normalize({mode: 'gre', csum: true, seq: {output: true}, 'input-key': 3})
  assert.equal([g.icsum, g.ocsum, g.iseq, g.oseq, g.ikey, g.okey], [true, true, false, true, 3, undefined])
  assert.ok(!('okey' in g), 'absent fields are absent, not undefined-valued')
  // 6rd: relay defaults to 0.0.0.0/0; the kernel default 2002::/16 means "not configured"
  assert.equal(DRIVERS.sit.normalize({mode: 'sit', '6rd-prefix': '2001:0DB8::/32'}).sixrdRelayPrefix, '0.0.0.0/0')
  assert.equal(DRIVERS.sit.normalize({mode: 'sit', '6rd-prefix': '2001:0DB8::/32'}).sixrdPrefix, '2001:db8::/32')
  assert.is(DRIVERS.sit.normalize({mode: 'sit', '6rd-prefix': '2002::/16'}).sixrdPrefix, undefined)
  // multicast gre: iproute2 uses the group as key when none is given
  assert.is(DRIVERS.gre.normalize({mode: 'gre', local: '192.0.2.1', remote: '239.1.1.1'}).ikey, 0xef010101)
  assert.is(DRIVERS.ipip.normalize({mode: 'ipip', tos: 'inherit', ttl: 'inherit', local: '0.0.0.0'}).local, 'any')
})

test('COMMON_KEYS and per-mode keys', () => {
  for (const k of ['mode', 'state', 'local', 'remote', 'dev', 'fwmark', 'mtu', 'up', 'addresses', 'routes', 'driver']) assert.ok(COMMON_KEYS.includes(k as any), k)
  for (const m of ['ipip', 'sit', 'isatap', 'gre'] as Mode[]) for (const k of ['ttl', 'tos', 'pmtudisc']) assert.ok(DRIVERS[m].keys.includes(k), `${m} ${k}`)
  for (const k of ['ttl', 'tos', 'pmtudisc', 'encapsulated']) assert.not.ok(DRIVERS.vti.keys.includes(k), `vti ${k}`)
  assert.ok(ALL_KEYS.includes('6rd-relay-prefix') && ALL_KEYS.includes('routers') && ALL_KEYS.includes('ignore-df'))
  assert.is(DRIVERS.isatap.kind, 'sit')
})

test('dotted quads without a parse: the canonical endpoint and gre multicast agree with ipaddr.js', () => {
  const quads = ['1.2.3.4', '192.0.2.1', '10.0.0.255', '223.255.255.255', '224.0.0.0', '230.1.2.3', '239.255.255.255', '240.0.0.0', '255.255.255.255', '0.0.0.1']
  for (const a of quads) {
    assert.is(endpoint(a), ipaddr.IPv4.parse(a).toString(), a)
    const multicast = ipaddr.IPv4.parse(a).range() === 'multicast'
    // iproute2 keys a multicast tunnel by its group; a multicast remote needs a local address
    assert.is(DRIVERS.gre.normalize({mode: 'gre', local: '192.0.2.1', remote: a}).ikey !== undefined, multicast, a)
    assert.equal(ptrs('gre', {remote: a}), multicast ? ['/remote'] : [], a)
  }
  assert.equal([endpoint('0.0.0.0'), endpoint(undefined), endpoint('any')], ['any', 'any', 'any'])
})

test.run()
