// Golden error cases: test/fixtures/errors/<case>/{spec.yaml, stderr.txt}. stderr.txt is exactly what
// `tunctl validate spec.yaml` prints (run from the case folder). UPDATE_GOLDEN=1 rewrites stderr.txt.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {chmodSync, existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {decodeSpec, parseSpec} from '../../../src/spec/load.js'
import {InputError, SpecError} from '../../../src/lib/errors.js'
import {loadKeyFiles} from '../../../src/ipsec/keyfile.js'

export const GOLDEN_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/errors')
const update = process.env.UPDATE_GOLDEN === '1'

/** What the CLI prints on stderr for this case (handleError: `tunctl: ` + message). */
export function renderCase(dir: string): string {
  try {
    // the bytes as validate reads them (a file that is not UTF-8 is refused before parsing)
    const text = decodeSpec('spec.yaml', readFileSync(join(dir, 'spec.yaml')))
    const state = parseSpec('spec.yaml', text, {rtTables: new Map()})
    // vti ipsec key files of the case (git keeps no 0600: *.keys get it here, *.open.keys keep 0644)
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.keys'))) chmodSync(join(dir, f), f.endsWith('.open.keys') ? 0o644 : 0o600)
    loadKeyFiles(state, {cwd: dir})
  } catch (e) {
    if (e instanceof SpecError || e instanceof InputError) return `tunctl: ${e.message}\n`
    throw e
  }
  return '(valid)\n'
}

const cases = readdirSync(GOLDEN_ROOT).filter((c) => existsSync(join(GOLDEN_ROOT, c, 'spec.yaml'))).sort()

test('there are golden error cases', () => {
  assert.ok(cases.length >= 12, `only ${cases.length} cases`)
})

for (const c of cases) {
  test(`golden error: ${c}`, () => {
    const dir = join(GOLDEN_ROOT, c)
    const got = renderCase(dir)
    const file = join(dir, 'stderr.txt')
    if (update) writeFileSync(file, got)
    assert.ok(existsSync(file), `${file} is missing: check the case's output by hand, then record it with UPDATE_GOLDEN=1`)
    assert.not.equal(got, '(valid)\n', `${c}/spec.yaml is valid; an error case must be invalid`)
    assert.fixture(got, readFileSync(file, 'utf8'))
  })
}

test.run()
