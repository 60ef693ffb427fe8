// The plan of deletions behind `tunctl del`: every name checked before anything runs, one delete step per tunnel.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {TunctlError} from '../../../src/lib/errors.js'
import {makeDeletePlan} from '../../../src/plan/delete.js'
import {compilePlan} from '../../../src/plan/lines.js'
import {FAKE_DRIVERS, observed, state} from '../../lib/fakes.mjs'

const host = () => state([observed('g1', 'gre'), observed('f1', 'ipip', {owned: false}), observed('u1', 'gre', {driver: 'userspace'})], {veth0: 'veth'})

test('one delete step per named tunnel (duplicates once), compiled to link del (+ stop for userspace)', () => {
  const d = makeDeletePlan(host(), ['g1', 'u1', 'g1'])
  assert.equal(d.plan.steps.map((s) => [s.kind, s.name, s.driver]), [['delete', 'g1', 'kernel'], ['delete', 'u1', 'userspace']])
  assert.equal(d.plan.counts, {create: 0, update: 0, replace: 0, delete: 2})
  assert.equal(d.missing, [])
  assert.equal(d.foreign, [])
  const c = compilePlan(d.plan, FAKE_DRIVERS)
  assert.equal(c.lines, [['link', 'del', 'dev', 'g1'], ['link', 'del', 'dev', 'u1']])
  assert.equal(c.programs[1]!.post, [{op: 'stop', name: 'u1'}])
})

test('every problem is listed and nothing is planned: missing, foreign without --force, not a tunnel', () => {
  const e = (() => {
    try {
      makeDeletePlan(host(), ['g1', 'nosuch', 'f1', 'veth0'])
    } catch (err) {
      return err
    }
    return undefined
  })()
  assert.ok(e instanceof TunctlError, String(e))
  assert.is(e.exitCode, 1)
  assert.is(
    e.message,
    [
      'no tunnel named nosuch (--ignore-missing to accept that)',
      "f1 is not managed by tunctl (ifalias is not 'tunctl'); use --force to delete it anyway",
      'veth0 is not a tunnel (kind veth); tunctl does not delete it',
      'Nothing was deleted.',
    ].join('\n'),
  )
})

test('--ignore-missing lists the missing names; --force deletes a foreign tunnel and reports it for the rollback', () => {
  const d = makeDeletePlan(host(), ['nosuch', 'f1'], {ignoreMissing: true, force: true})
  assert.equal(d.missing, ['nosuch'])
  assert.equal(d.foreign, ['f1'])
  assert.equal(d.plan.steps.map((s) => s.name), ['f1'])
})

test.run()
