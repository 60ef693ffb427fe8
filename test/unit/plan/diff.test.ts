// Unit tests of the pure plan diff: step kinds, ordering, driver choice, ownership and conflicts.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {computePlan, ConflictError} from '../../../src/plan/diff.js'
import {UnavailableError} from '../../../src/lib/errors.js'
import {planToJSON, renderPlan} from '../../../src/plan/render.js'
import {DRIVERS} from '../../../src/drivers/index.js'
import {ALL_KERNEL, FAKE_DRIVERS, desired, observed, state} from '../../lib/fakes.mjs'

const opts = {prune: false, support: ALL_KERNEL}
const plan = (d: any[], o: any, extra = {}) => computePlan({file: 't.yaml', tunnels: d}, o, {...opts, ...extra}, FAKE_DRIVERS)

test('absent tunnel → create with kernel driver and reason', () => {
  const p = plan([desired('gre1', 'gre')], state([]))
  assert.is(p.steps.length, 1)
  assert.is(p.steps[0]!.kind, 'create')
  assert.is(p.steps[0]!.driver, 'kernel')
  assert.is(p.steps[0]!.driverReason, 'kernel: module ip_gre loaded')
  assert.equal(p.counts, {create: 1, update: 0, replace: 0, delete: 0})
})

test('identical tunnel (mtu unset in spec) → no steps', () => {
  const p = plan([desired('gre1', 'gre', {addresses: ['10.0.0.1/30']})], state([observed('gre1', 'gre', {addresses: ['10.0.0.1/30']})]))
  assert.is(p.steps.length, 0)
  assert.match(renderPlan(p, {color: false, file: 't.yaml'}), /No changes\. .*\nPlan: 0 to create, 0 to update, 0 to replace, 0 to delete\.\n$/)
})

test('ttl change → update listing the field', () => {
  const p = plan([desired('gre1', 'gre', {p: {ttl: 64}})], state([observed('gre1', 'gre')]))
  assert.is(p.steps[0]!.kind, 'update')
  assert.equal(p.steps[0]!.changes, [{field: 'ttl', from: 0, to: 64}])
  assert.match(renderPlan(p, {color: false}), '    ~ ttl: inherit → 64')
})

test('remote any → address → replace with driver reason', () => {
  const p = plan([desired('gre1', 'gre')], state([observed('gre1', 'gre', {p: {remote: 'any'}})]))
  assert.is(p.steps[0]!.kind, 'replace')
  assert.is(p.steps[0]!.reason, 'remote any ↔ address cannot change in place')
})

test('mode change → replace', () => {
  const p = plan([desired('t1', 'ipip')], state([observed('t1', 'gre')]))
  assert.is(p.steps[0]!.kind, 'replace')
  assert.match(p.steps[0]!.reason!, /mode gre → ipip/)
})

test('mode change lists the common fields that change, not the other mode\'s own fields', () => {
  const p = plan([desired('t1', 'ipip', {p: {dev: 'lo'}})], state([observed('t1', 'gre', {p: {ikey: 5}})]))
  const fields = p.steps[0]!.changes.map((c) => c.field)
  assert.ok(fields.includes('dev'), `dev none → lo is listed: ${fields}`)
  assert.not.ok(fields.includes('ikey'), `gre's key is not an ipip field: ${fields}`)
})

test('driver change kernel → userspace → replace', () => {
  const p = plan([desired('t1', 'gre', {driver: 'userspace'})], state([observed('t1', 'gre')]))
  assert.is(p.steps[0]!.kind, 'replace')
  assert.match(p.steps[0]!.reason!, /driver kernel → userspace/)
})

test('dead userspace encapsulator → update that restarts it', () => {
  const p = plan([desired('t1', 'gre', {driver: 'userspace'})], state([observed('t1', 'gre', {driver: 'userspace', alive: false, pid: 99})]))
  assert.is(p.steps[0]!.kind, 'update')
  assert.equal(p.steps[0]!.changes, [{field: 'encapsulator', from: 'dead', to: 'running'}])
})

test('foreign tunnel of the same name → ConflictError 65 mentioning del --force', () => {
  try {
    plan([desired('gre1', 'gre')], state([observed('gre1', 'gre', {owned: false})]))
    assert.unreachable()
  } catch (e: any) {
    assert.instance(e, ConflictError)
    assert.is(e.exitCode, 65)
    assert.match(e.message, /tunctl del --force gre1/)
  }
})

test('non-tunnel link of the same name → ConflictError', () => {
  assert.throws(() => plan([desired('veth0', 'gre')], state([], {veth0: 'veth'})), (e: any) => e instanceof ConflictError && /veth/.test(e.message))
})

test('state absent: owned → delete, foreign → conflict, missing → nothing', () => {
  const p = plan([desired('a', 'gre', {state: 'absent'}), desired('b', 'gre', {state: 'absent'})], state([observed('a', 'gre')]))
  assert.equal(p.steps.map((s) => [s.kind, s.name]), [['delete', 'a']])
  assert.throws(() => plan([desired('a', 'gre', {state: 'absent'})], state([observed('a', 'gre', {owned: false})])), (e: any) => e instanceof ConflictError)
})

test('state absent of a tunnel whose mode differs: deleted by name, and the plan shows the mode that exists', () => {
  const p = plan([desired('vt', 'gre', {state: 'absent'})], state([observed('vt', 'vti')]))
  assert.equal(p.steps.map((s) => [s.kind, s.name, s.observed?.params.mode]), [['delete', 'vt', 'vti']])
  const text = renderPlan(p, {color: false})
  assert.match(text, /^- vt \(vti, kernel\)$/m)
  assert.not.match(text, 'gre')
  assert.is((planToJSON(p).steps as any[])[0].mode, 'vti')
})

test('dev: a device that does not exist, or that the same plan creates, replaces or deletes → conflict at the dev value', () => {
  const devAt = {line: 7, column: 10, excerpt: '    dev: nosuch0\n         ^'}
  const err = (f: () => unknown) => {
    try {
      f()
    } catch (e) {
      if (e instanceof ConflictError) return e
      throw e
    }
    assert.unreachable('no conflict')
  }
  // exists (a non-tunnel link, or a tunnel that stays): fine
  assert.is(plan([desired('t1', 'gre', {p: {dev: 'eth0'}})], state([], {eth0: 'veth'})).steps.length, 1)
  assert.is(plan([desired('t1', 'gre', {p: {dev: 'u0'}})], state([observed('u0', 'ipip', {owned: false})])).steps.length, 1)
  const missing = err(() => plan([desired('t1', 'gre', {p: {dev: 'nosuch0'}, devAt})], {...state([]), netns: 'blue'}))!
  assert.equal(missing.conflicts.map((c) => [c.name, c.pointer, c.message]), [['t1', '/tunnels/t1/dev', 'device nosuch0 does not exist in network namespace blue']])
  assert.is(missing.exitCode, 65)
  assert.match(missing.message, /^t\.yaml:7:10: tunnel "t1": device nosuch0 does not exist in network namespace blue\n    dev: nosuch0\n {9}\^$/)
  assert.match(err(() => plan([desired('t1', 'gre', {p: {dev: 'nosuch0'}})], state([])))!.message, 'in the root network namespace')
  // an update to a missing dev too
  assert.match(err(() => plan([desired('t1', 'gre', {p: {dev: 'gone0'}})], state([observed('t1', 'gre')])))!.message, 'device gone0 does not exist')
  // created by the same plan: not there yet when the kernel creates t1
  const same = err(() => plan([desired('u1', 'ipip'), desired('t1', 'gre', {p: {dev: 'u1'}})], state([])))!
  assert.equal(same.conflicts.map((c) => c.name), ['t1'])
  assert.match(same.message, 'device u1 does not exist yet: this file creates it')
  // deleted or replaced by the same plan
  assert.match(err(() => plan([desired('u1', 'ipip', {state: 'absent'}), desired('t1', 'gre', {p: {dev: 'u1'}})], state([observed('u1', 'ipip')])))!.message, 'device u1 is deleted by this file')
  assert.match(err(() => plan([desired('u1', 'gre'), desired('t1', 'gre', {p: {dev: 'u1'}})], state([observed('u1', 'ipip')])))!.message, 'device u1 is replaced')
  // a rollback's plan does not refuse (its batch reports a missing device)
  assert.is(plan([desired('t1', 'gre', {p: {dev: 'nosuch0'}})], state([]), {restoring: true}).steps.length, 1)
})

test('prune deletes owned unlisted tunnels only; foreign survive', () => {
  const o = state([observed('mine', 'ipip', {p: {mtu: 1480}}), observed('theirs', 'gre', {owned: false, p: {local: '203.0.113.9'}})])
  assert.is(plan([], o).steps.length, 0)
  const p = plan([], o, {prune: true})
  assert.equal(p.steps.map((s) => [s.kind, s.name]), [['delete', 'mine']])
})

test('endpoint clash with a foreign tunnel → ConflictError', () => {
  const o = state([observed('theirs', 'gre', {owned: false})])
  assert.throws(() => plan([desired('mine', 'gre')], o), (e: any) => e instanceof ConflictError && /theirs/.test(e.message))
  // different key → fine
  assert.is(plan([desired('mine', 'gre', {p: {ikey: 5, okey: 5}})], o).steps.length, 1)
})

test('auto falls back to userspace with the kernel reason; vti with no kernel → 69', () => {
  const support = {...ALL_KERNEL, gre: {kernel: false, userspace: true, reason: 'kernel lacks ip_gre'}, vti: {kernel: false, userspace: false, reason: 'kernel lacks ip_vti'}}
  const p = plan([desired('g', 'gre')], state([]), {support})
  assert.is(p.steps[0]!.driver, 'userspace')
  assert.is(p.steps[0]!.driverReason, 'userspace: kernel lacks ip_gre')
  assert.throws(() => plan([desired('v', 'vti')], state([]), {support}), (e: any) => e instanceof UnavailableError && e.exitCode === 69)
  assert.throws(() => plan([desired('g', 'gre')], state([]), {support, driver: 'kernel'}), (e: any) => e instanceof UnavailableError)
})

test('driver userspace beside a loaded kernel module is refused (exit 69, with the reason); loadable only is fine', () => {
  const loaded = {gre: {kernel: true, userspace: true, reason: 'module ip_gre loaded', kernelLoaded: true}}
  let err: any
  try {
    plan([desired('g', 'gre')], state([]), {support: loaded, driver: 'userspace'})
  } catch (e) {
    err = e
  }
  assert.ok(err instanceof UnavailableError)
  assert.is(err.exitCode, 69)
  assert.match(err.message, /g: driver userspace refused: module ip_gre loaded, so the kernel handles GRE, IP protocol 47 in this namespace too and would answer each packet for the userspace encapsulator with ICMP unreachable/)
  // auto picks the kernel; a loadable (not loaded) module leaves userspace allowed
  assert.is(plan([desired('g', 'gre')], state([]), {support: loaded}).steps[0]!.driver, 'kernel')
  const loadable = {gre: {kernel: true, userspace: true, reason: 'module ip_gre loadable'}}
  assert.is(plan([desired('g', 'gre')], state([]), {support: loadable, driver: 'userspace'}).steps[0]!.driver, 'userspace')
})

test('steps ordered deletes, replaces, updates, creates', () => {
  const o = state([observed('u', 'gre'), observed('r', 'gre', {p: {remote: 'any'}}), observed('d', 'gre', {p: {local: '192.0.2.9'}})])
  const p = plan([desired('c', 'ipip'), desired('u', 'gre', {p: {ttl: 9}}), desired('r', 'gre', {p: {ikey: 1, okey: 1}}), desired('d', 'gre', {state: 'absent'})], o)
  assert.equal(p.steps.map((s) => s.kind), ['delete', 'replace', 'update', 'create'])
  assert.match(renderPlan(p, {color: false}), /\nPlan: 1 to create, 1 to update, 1 to replace, 1 to delete\.\n$/)
})


test('userspace tunnels get the kernel driver\'s replace reasons (a file plans alike on either driver)', () => {
  const us = {...ALL_KERNEL, gre: {kernel: false, userspace: true, reason: 'kernel lacks ip_gre'}, sit: {kernel: false, userspace: true, reason: 'kernel lacks sit'}}
  const real = (d: any[], o: any) => computePlan({file: 't.yaml', tunnels: d}, o, {prune: false, support: us}, DRIVERS)
  const obs = (name: string, mode: any, p: any) => observed(name, mode, {driver: 'userspace', alive: true, pid: 99, p})
  const cases: Array<[string, any, any, any, RegExp]> = [
    ['remote address → any', 'gre', {}, {remote: 'any'}, /remote any ↔ address/],
    ['remote any → address', 'gre', {remote: 'any'}, {}, /remote any ↔ address/],
    ['inner protocol', 'sit', {proto: 'any'}, {proto: 'ip6ip'}, /inner protocol any → ip6ip/],
    ['a gre key cleared', 'gre', {ikey: 43, okey: 43}, {}, /key on → off/],
    ['dev → none', 'gre', {dev: 'lo'}, {}, /dev lo → none/],
  ]
  for (const [what, mode, from, to, reason] of cases) {
    const p = real([desired('t1', mode, {p: to})], state([obs('t1', mode, from)]))
    assert.is(p.steps.length, 1, what)
    assert.is(p.steps[0]!.kind, 'replace', what)
    assert.is(p.steps[0]!.driver, 'userspace', what)
    assert.match(p.steps[0]!.reason!, reason, what)
  }
  // what the kernel changes in place stays an update for userspace too
  const ttl = real([desired('t1', 'gre', {p: {ttl: 64}})], state([obs('t1', 'gre', {})]))
  assert.is(ttl.steps[0]!.kind, 'update')
  const key = real([desired('t1', 'gre', {p: {ikey: 7, okey: 7}})], state([obs('t1', 'gre', {})]))
  assert.is(key.steps[0]!.kind, 'update', 'a key added is in place')
})

test.run()
