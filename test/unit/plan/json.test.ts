// planToJSON output of every golden case validates against schemas/plan-output.schema.json (and apply's).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join, dirname} from 'node:path'
import {fileURLToPath} from 'node:url'
import Ajv from 'ajv'
import {parseSpec} from '../../../src/spec/load.js'
import {ConflictError, makePlan, planToJSON} from '../../../src/plan/index.js'
import type {Mode} from '../../../src/model/types.js'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '../../fixtures/plans')
const schema = (n: string) => JSON.parse(readFileSync(join(here, '../../../schemas', `${n}-output.schema.json`), 'utf8'))
const ajv = new (Ajv as any)({strict: false, allErrors: true})
const planV = ajv.compile(schema('plan'))
const applyV = ajv.compile(schema('apply'))
const support = Object.fromEntries((['ipip', 'gre', 'sit', 'isatap', 'vti'] as Mode[]).map((m) => [m, {kernel: true, userspace: true, reason: 'x'}]))

test('schemas reject a wrong shape', () => {
  assert.not.ok(planV({ok: true, file: 'x', plan: {steps: [{action: 'explode'}], counts: {}, changes: 1}}))
})

for (const c of readdirSync(root).filter((d) => existsSync(join(root, d, 'spec.yaml'))).sort()) {
  test(`plan/apply JSON schema: ${c}`, () => {
    const desired = parseSpec('spec.yaml', readFileSync(join(root, c, 'spec.yaml'), 'utf8'), {rtTables: new Map()})
    const observed = JSON.parse(readFileSync(join(root, c, 'observed.json'), 'utf8'))
    const golden = readFileSync(join(root, c, 'plan.txt'), 'utf8')
    let plan
    try {
      // the options the golden plan test uses (adopt, driver, support), so each case reaches the same outcome
      const o = existsSync(join(root, c, 'options.json')) ? JSON.parse(readFileSync(join(root, c, 'options.json'), 'utf8')) : {}
      plan = makePlan(desired, observed, {prune: Boolean(o.prune), driver: o.driver, support: {...support, ...o.support} as any, adopt: new Set(o.adopt ?? [])})
    } catch (e) {
      // a conflict case has no plan: its golden plan.txt must say so, and the error must be a positioned one
      assert.ok(golden.startsWith('error (exit '), `${c}: makePlan threw but plan.txt expects a plan: ${e}`)
      if (golden.startsWith('error (exit 65)')) assert.instance(e, ConflictError)
      return
    }
    const j = JSON.parse(JSON.stringify(planToJSON(plan)))
    assert.ok(planV({ok: true, file: 'spec.yaml', plan: j}), JSON.stringify(planV.errors))
    assert.ok(applyV({ok: true, plan: j, applied: true, verified: true, rolledBack: false, lines: 3}), JSON.stringify(applyV.errors))
    assert.ok(applyV({ok: false, plan: j, applied: true, verified: false, rolledBack: true, error: {code: 'command-failed', exitCode: 1, message: 'x'}}), JSON.stringify(applyV.errors))
  })
}

test.run()
