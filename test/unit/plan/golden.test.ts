// Golden plan cases: test/fixtures/plans/<case>/{spec.yaml, observed.json, [options.json], plan.txt}. UPDATE_GOLDEN=1 rewrites plan.txt.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join, dirname} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseSpec} from '../../../src/spec/load.js'
import {makePlan, renderPlan} from '../../../src/plan/index.js'
import type {ModeSupport} from '../../../src/plan/diff.js'
import {TunctlError} from '../../../src/lib/errors.js'
import type {Mode} from '../../../src/model/types.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/plans')
const SUPPORT: Record<Mode, ModeSupport> = {
  ipip: {kernel: true, userspace: true, reason: 'module ipip loaded'},
  gre: {kernel: true, userspace: true, reason: 'module ip_gre loaded'},
  sit: {kernel: true, userspace: true, reason: 'module sit loaded'},
  isatap: {kernel: true, userspace: false, reason: 'module sit loaded'},
  vti: {kernel: true, userspace: false, reason: 'module ip_vti loaded'},
}

function render(dir: string): string {
  const file = 'spec.yaml'
  const desired = parseSpec(file, readFileSync(join(dir, file), 'utf8'), {rtTables: new Map()})
  const observed = JSON.parse(readFileSync(join(dir, 'observed.json'), 'utf8'))
  const o = existsSync(join(dir, 'options.json')) ? JSON.parse(readFileSync(join(dir, 'options.json'), 'utf8')) : {}
  try {
    const plan = makePlan(desired, observed, {prune: Boolean(o.prune), driver: o.driver, support: {...SUPPORT, ...o.support}, adopt: new Set(o.adopt ?? [])})
    return renderPlan(plan, {color: false, showCommands: true, file})
  } catch (e) {
    if (e instanceof TunctlError) return `error (exit ${e.exitCode}): ${e.message}\n`
    throw e
  }
}

const cases = readdirSync(root).filter((d) => existsSync(join(root, d, 'spec.yaml'))).sort()

test('there are golden cases', () => {
  assert.ok(cases.length >= 12, `${cases.length} cases`)
})

for (const c of cases) {
  test(`golden plan: ${c}`, () => {
    const dir = join(root, c)
    const got = render(dir)
    const golden = join(dir, 'plan.txt')
    if (process.env.UPDATE_GOLDEN) writeFileSync(golden, got)
    assert.ok(existsSync(golden), `${golden} missing (run with UPDATE_GOLDEN=1)`)
    assert.fixture(got, readFileSync(golden, 'utf8'))
  })
}

test.run()
