// The test runner itself: planted failures, skips, broken hooks and late registrations are counted as such.
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {tally} from '../../lib/tally.mjs'

const repo = join(import.meta.dirname, '..', '..', '..')
const runFixtures = () =>
  spawnSync(process.execPath, ['--import', 'tsx', 'test/lib/runner.mjs', 'test/fixtures/runner/planted'], {cwd: repo, encoding: 'utf8'})

const r = suite('test/lib/runner.mjs')

r('planted failure, broken hook and late test: 4 failed, 2 passed, 1 skipped, exit 1, the hook error shown', () => {
  const out = runFixtures()
  assert.is(out.status, 1, out.stdout + out.stderr)
  assert.match(out.stdout, /^RESULT passed=2 failed=4 skipped=1$/m)
  assert.match(out.stdout, /before hook of broken hook threw:\n\s+Error: planted hook failure/)
  assert.match(out.stdout, /registered after its last run\(\)/)
  assert.match(out.stdout, /^SKIP \{"file":"test\/fixtures\/runner\/planted\/a-fail-skip.test.ts","suite":"planted","title":"skipped on purpose"\}$/m)
})

r('a file that fails to load is a failure', () => {
  const out = spawnSync(process.execPath, ['--import', 'tsx', 'test/lib/runner.mjs', 'test/fixtures/runner', 'missing-import\\.test\\.ts$'], {cwd: repo, encoding: 'utf8'})
  assert.is(out.status, 1, out.stdout + out.stderr)
  assert.match(out.stdout, /^RESULT passed=0 failed=1 skipped=0$/m)
  assert.match(out.stdout, /failed to load/)
})

const t = suite('test/lib/tally.mjs')

t('sums RESULT lines; skips are not subtracted from failures', () => {
  const got = tally('RESULT passed=3 failed=1 skipped=2\nRESULT passed=1 failed=0 skipped=0\n', 1)
  assert.equal({passed: got.passed, failed: got.failed, skipped: got.skipped}, {passed: 4, failed: 1, skipped: 2})
})

t('no RESULT line (a crash) is one failure', () => {
  assert.is(tally('Segmentation fault\n', 139).failed, 1)
  assert.is(tally('', 0).failed, 1)
})

t('a non-zero exit with nothing failing is a failure', () => {
  assert.is(tally('RESULT passed=5 failed=0 skipped=0\n', 1).failed, 1)
})

t('under CI a skip not listed in test/skips.json fails; a listed one does not', () => {
  const out = 'RESULT passed=1 failed=0 skipped=1\nSKIP {"file":"f.test.ts","suite":"s","title":"x"}\n'
  assert.is(tally(out, 0, {strict: true}).failed, 1)
  assert.is(tally(out, 0, {strict: true, allowedSkips: {'f.test.ts › s › x': 'reason'}}).failed, 0)
  assert.is(tally(out, 0, {strict: false}).failed, 0)
})

t.run()
r.run()
