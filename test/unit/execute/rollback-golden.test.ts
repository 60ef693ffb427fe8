// Golden rollback cases: test/fixtures/rollbacks/<case>/case.json (the spec or the del request, the observed state
// before, the failure injected) and rollback.txt (what ran, the error, the rollback that ran, the state after),
// run against the executor with FakeSystem. UPDATE_GOLDEN=1 records rollback.txt; a missing one fails.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {TunctlError} from '../../../src/lib/errors.js'
import {executeWith} from '../../../src/execute/run.js'
import {stillPresent} from '../../../src/execute/delete.js'
import {computePlan} from '../../../src/plan/diff.js'
import {makeDeletePlan} from '../../../src/plan/delete.js'
import {compilePlan} from '../../../src/plan/lines.js'
import type {DesiredTunnel, Mode, ObservedState, ObservedTunnel, Plan, TunnelParams} from '../../../src/model/types.js'
import {ALL_KERNEL, FAKE_DRIVERS, FakeSystem, desired, observed} from '../../lib/fakes.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/rollbacks')

type Builder<T> = Partial<T> & {name: string; mode: Mode; p?: Partial<TunnelParams>}
interface Case {
  description: string
  /** the observed state before (observed() builders: name, mode, p, owned, driver, addresses, routes) */
  before: Array<Builder<ObservedTunnel>>
  /** apply: the spec's tunnels (desired() builders) and --prune */
  spec?: Array<Builder<DesiredTunnel>>
  prune?: boolean
  /** del: the names and flags */
  del?: {names: string[]; force?: boolean; ignoreMissing?: boolean}
  /** the failure injected: a batch line replaced (TUNCTL_FAIL_AT_LINE) given by number or as the first line of a step, lines failing or ignored by the kernel, a failing encapsulator start */
  failure: {line?: number; step?: string; failLine?: string; ignoreLine?: string; ignoreField?: keyof TunnelParams; startFails?: boolean}
}

const essence = (o: ObservedState) =>
  o.tunnels.map((t) => `  ${t.name} ${t.driver} ${t.params.mode} ${t.owned ? 'owned' : 'foreign'} ${JSON.stringify(t.params)} addresses=${JSON.stringify(t.addresses)} routes=${JSON.stringify(t.routes)}`)

async function run(c: Case): Promise<string> {
  const sys = new FakeSystem(c.before.map(({name, mode, ...rest}) => observed(name, mode, rest)))
  if (c.failure.failLine) sys.failLine = new RegExp(c.failure.failLine)
  if (c.failure.ignoreLine) sys.ignoreLine = new RegExp(c.failure.ignoreLine)
  if (c.failure.ignoreField) sys.ignoreField = c.failure.ignoreField
  if (c.failure.startFails) sys.startFails = true
  const before = await sys.observe()
  let plan: Plan
  let adopted: string[] = []
  if (c.del) {
    const d = makeDeletePlan(before, c.del.names, c.del)
    plan = d.plan
    adopted = d.foreign
  } else {
    const spec = (c.spec ?? []).map(({name, mode, ...rest}) => desired(name, mode, rest))
    plan = computePlan({file: 'spec.yaml', tunnels: spec}, before, {prune: Boolean(c.prune), support: ALL_KERNEL}, FAKE_DRIVERS)
  }
  let failAtLine = c.failure.line
  if (c.failure.step !== undefined) {
    const compiled = compilePlan(plan, FAKE_DRIVERS)
    const i = compiled.lineStep.findIndex((k) => compiled.programs[k]!.step.name === c.failure.step)
    if (i < 0) throw new Error(`case: step ${c.failure.step} has no batch line`)
    failAtLine = i + 1
  }
  const out: string[] = [`# ${c.description}`, `plan (${c.del ? 'del' : 'apply'}): ${plan.steps.map((s) => `${s.kind} ${s.name}`).join(', ') || 'nothing'}`]
  if (failAtLine !== undefined) out.push(`failure injected at batch line ${failAtLine}`)
  let outcome: string
  try {
    const r = await executeWith(sys, plan, {
      drivers: FAKE_DRIVERS,
      snapshot: before,
      failAtLine,
      adopted: new Set(adopted),
      verifyRetryMs: [],
      ...(c.del ? {operation: 'del' as const, verifyError: stillPresent()} : {}),
    })
    outcome = `succeeded: ${JSON.stringify(r)}`
  } catch (e) {
    if (!(e instanceof TunctlError)) throw e
    const argv = 'argv' in e ? ` argv=${JSON.stringify(e.argv)}` : ''
    outcome = `error (exit ${e.exitCode}, ${e.code}, applied=${Boolean(e.applied)}, rolledBack=${Boolean(e.rolledBack)})${argv}:\n  ${e.message.split('\n').join('\n  ')}`
  }
  sys.batches.forEach((b, i) => {
    out.push(i === 0 ? 'batch:' : i === 1 ? 'rollback batch:' : `batch ${i + 1}:`)
    for (const l of b) out.push(`  ${l.join(' ')}`)
  })
  if (sys.log.length) out.push('other actions:', ...sys.log.map((l) => `  ${l}`))
  out.push(outcome)
  const after = await sys.observe()
  const same = JSON.stringify(essence(after)) === JSON.stringify(essence(before))
  out.push(`state after: ${same ? 'as before' : 'changed'}`, ...essence(after))
  return out.join('\n') + '\n'
}

const cases = existsSync(root) ? readdirSync(root).filter((d) => existsSync(join(root, d, 'case.json'))).sort() : []

test('there are rollback golden cases', () => {
  assert.ok(cases.length >= 6, `${cases.length} cases`)
})

for (const name of cases) {
  test(`golden rollback: ${name}`, async () => {
    const dir = join(root, name)
    const got = await run(JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Case)
    const golden = join(dir, 'rollback.txt')
    if (process.env.UPDATE_GOLDEN) writeFileSync(golden, got)
    assert.ok(existsSync(golden), `${golden} missing (run with UPDATE_GOLDEN=1)`)
    assert.fixture(got, readFileSync(golden, 'utf8'))
  })
}

test.run()
