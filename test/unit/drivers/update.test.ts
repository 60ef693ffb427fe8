// replaceReason and encodeUpdate, following what the 6.1 kernel did in UML (test/fixtures/ip/experiments.txt).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {DRIVERS} from '../../../src/drivers/index.js'
import type {Mode, TunnelParams} from '../../../src/model/types.js'

const L = '192.0.2.1'
const R = '198.51.100.7'
const n = (mode: Mode, e: Record<string, unknown> = {}): TunnelParams => DRIVERS[mode].normalize({mode, local: L, remote: R, ...e})
const reason = (mode: Mode, a: Record<string, unknown>, b: Record<string, unknown>) => DRIVERS[mode].replaceReason(n(mode, a), n(mode, b))
const text = (lines: string[][]) => lines.map((l) => l.join(' '))

test('remote any ↔ address needs a replace in every mode', () => {
  for (const m of ['ipip', 'sit', 'gre', 'vti'] as Mode[]) {
    assert.match(reason(m, {}, {remote: 'any'}) ?? '', /remote any ↔ address/, m)
    assert.match(reason(m, {remote: 'any'}, {}) ?? '', /remote any ↔ address/, m)
    assert.is(reason(m, {}, {remote: '203.0.113.9'}), undefined, m)
  }
})

test('inner protocol changes need a replace (ipip and sit ignore it on changelink)', () => {
  assert.match(reason('ipip', {}, {encapsulated: 'any'}) ?? '', /inner protocol ipip → any/)
  assert.match(reason('sit', {encapsulated: 'any'}, {}) ?? '', /inner protocol any → ip6ip/)
})

test('mode changes (sit ↔ isatap: the isatap flag) need a replace', () => {
  const sit = DRIVERS.sit.normalize({mode: 'sit', local: L})
  const isa = DRIVERS.isatap.normalize({mode: 'isatap', local: L})
  assert.match(DRIVERS.isatap.replaceReason(sit, isa) ?? '', /mode sit → isatap/)
})

test('gre: flags can be added in place but not removed; key value changes in place', () => {
  assert.is(reason('gre', {key: 1}, {key: 2}), undefined)
  assert.is(reason('gre', {}, {key: 2, csum: true, seq: true}), undefined)
  assert.match(reason('gre', {key: 1}, {}) ?? '', /input key on → off/)
  assert.match(reason('gre', {'output-key': 1}, {}) ?? '', /output key on → off/)
  assert.match(reason('gre', {csum: true}, {csum: {input: true}}) ?? '', /output checksum/)
  assert.match(reason('gre', {seq: true}, {}) ?? '', /input sequence/)
  assert.match(reason('gre', {}, {remote: '239.1.1.1'}) ?? '', /multicast/)
})

test('vti: keys are marks, 0 = none, removable in place', () => {
  assert.is(reason('vti', {key: 1}, {}), undefined)
  assert.equal(text(DRIVERS.vti.encodeUpdate('v', n('vti', {key: 1}), n('vti'))), [
    `link set dev v type vti remote ${R} local ${L} ikey 0 okey 0 fwmark 0`,
  ])
})

test('removing the underlay dev needs a replace (ip link set keeps the existing one)', () => {
  for (const m of ['ipip', 'gre', 'vti'] as Mode[]) {
    assert.match(reason(m, {dev: 'eth0'}, {}) ?? '', /dev eth0 → none/, m)
    assert.is(reason(m, {}, {dev: 'eth0'}), undefined, m)
  }
})

test('update sets the full parameter set with ip link set … type, never ip tunnel change', () => {
  const lines = DRIVERS.ipip.encodeUpdate('t1', n('ipip'), n('ipip', {ttl: 9, tos: 16, fwmark: 5}))
  assert.equal(text(lines), [`link set dev t1 type ipip remote ${R} local ${L} ttl 9 tos 0x10 pmtudisc mode ipip fwmark 5`])
})

test('no change → no lines; mtu only → one mtu line; mtu rides along with a type change', () => {
  assert.equal(DRIVERS.gre.encodeUpdate('g', n('gre', {key: 1}), n('gre', {key: 1})), [])
  assert.equal(text(DRIVERS.gre.encodeUpdate('g', {...n('gre'), mtu: 1476}, n('gre', {mtu: 1400}))), ['link set dev g mtu 1400'])
  // the kernel recomputes the mtu when dev/fwmark/header size change unless IFLA_MTU is in the same request
  assert.equal(text(DRIVERS.gre.encodeUpdate('g', n('gre', {mtu: 1400}), n('gre', {mtu: 1400, 'output-key': 3}))), [
    `link set dev g mtu 1400 type gre remote ${R} local ${L} ttl inherit tos inherit pmtudisc noignore-df okey 3 fwmark 0`,
  ])
})

test('gre ignore-df → pmtudisc goes through nopmtudisc noignore-df first (the kernel refuses it in one request)', () => {
  const from = n('gre', {pmtudisc: false, 'ignore-df': true})
  const lines = text(DRIVERS.gre.encodeUpdate('g', from, n('gre')))
  assert.equal(lines, [
    `link set dev g type gre remote ${R} local ${L} ttl inherit tos inherit nopmtudisc noignore-df fwmark 0`,
    `link set dev g type gre remote ${R} local ${L} ttl inherit tos inherit pmtudisc noignore-df fwmark 0`,
  ])
  assert.equal(text(DRIVERS.gre.encodeUpdate('g', n('gre'), from)), [
    `link set dev g type gre remote ${R} local ${L} ttl inherit tos inherit nopmtudisc ignore-df fwmark 0`,
  ])
})

test('sit: 6rd set and removed in place without 6rd-reset (it crashes iproute2 6.1)', () => {
  const plain = DRIVERS.sit.normalize({mode: 'sit', local: L})
  const rd = DRIVERS.sit.normalize({mode: 'sit', local: L, '6rd-prefix': '2001:db8::/32'})
  assert.is(DRIVERS.sit.replaceReason(plain, rd), undefined)
  assert.equal(text(DRIVERS.sit.encodeUpdate('s', plain, rd)), [
    `link set dev s type sit remote any local ${L} ttl inherit tos inherit pmtudisc mode ip6ip fwmark 0 6rd-prefix 2001:db8::/32 6rd-relay_prefix 0.0.0.0/0`,
  ])
  const back = text(DRIVERS.sit.encodeUpdate('s', rd, plain))
  assert.equal(back, [`link set dev s type sit remote any local ${L} ttl inherit tos inherit pmtudisc mode ip6ip fwmark 0 6rd-prefix 2002::/16 6rd-relay_prefix 0.0.0.0/0`])
  assert.not.match(back.join('\n'), /6rd-reset/)
  assert.equal(text(DRIVERS.sit.encodeCreate('s', rd)), [
    `link add name s type sit remote any local ${L} ttl inherit tos inherit pmtudisc mode ip6ip fwmark 0 6rd-prefix 2001:db8::/32 6rd-relay_prefix 0.0.0.0/0`,
  ])
})

test('isatap: create with prl lines; router changes as prl add/delete lines only', () => {
  const a = DRIVERS.isatap.normalize({mode: 'isatap', local: L, routers: ['192.0.2.254', '192.0.2.3']})
  const b = DRIVERS.isatap.normalize({mode: 'isatap', local: L, routers: [{address: '192.0.2.254', default: false}, '192.0.2.4']})
  assert.equal(text(DRIVERS.isatap.encodeCreate('i', a)), [
    `link add name i type sit remote any local ${L} ttl inherit tos inherit pmtudisc mode ip6ip fwmark 0 isatap`,
    'tunnel prl prl-default 192.0.2.3 dev i',
    'tunnel prl prl-default 192.0.2.254 dev i',
  ])
  assert.is(DRIVERS.isatap.replaceReason(a, b), undefined)
  assert.equal(text(DRIVERS.isatap.encodeUpdate('i', a, b)), [
    'tunnel prl prl-delete 192.0.2.3 dev i',
    'tunnel prl prl-delete 192.0.2.254 dev i',
    'tunnel prl prl-default 192.0.2.4 dev i',
    'tunnel prl prl-nodefault 192.0.2.254 dev i',
  ])
})

test('create: mtu before type; all parameters explicit (iproute2 defaults tos to 0, not inherit)', () => {
  assert.equal(text(DRIVERS.gre.encodeCreate('g', n('gre', {mtu: 1400, key: '0.0.0.7', csum: true, dev: 'eth0'}))), [
    `link add name g mtu 1400 type gre remote ${R} local ${L} dev eth0 ttl inherit tos inherit pmtudisc noignore-df ikey 7 okey 7 icsum ocsum fwmark 0`,
  ])
})

test.run()
