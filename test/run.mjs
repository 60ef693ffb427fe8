#!/usr/bin/env node
// Runs every test suite (unit, host e2e in namespaces, kernel e2e inside user-mode-linux) and ends with
// one line `N passed, N failed, N skipped`. Usage: node test/run.mjs [unit|host|uml ...]  (default: all)
// A suite whose prerequisites are missing is reported as one titled skip that says why, except with
// CI=true, where a missing prerequisite is a failure (CI must have them all).
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const uvu = join(repo, 'node_modules', 'uvu', 'bin.js')
const strict = process.env.CI === 'true'

const totals = {passed: 0, failed: 0, skipped: 0}
const failures = []

const hasTests = (dir) =>
  existsSync(dir) && readdirSync(dir, {recursive: true}).some((f) => String(f).endsWith('.test.ts'))

function whyNotRoot() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)'
  const r = spawnSync('ip', ['netns', 'list'])
  if (r.status !== 0) return 'ip netns does not work here'
  return undefined
}

function whyNotUml() {
  const r = spawnSync('sh', ['-c', 'command -v linux.uml'])
  if (r.status !== 0) return 'linux.uml not installed (apt-get install user-mode-linux)'
  return whyNotRoot()
}

/** Runs a command, streams its output, and parses uvu's "Total/Passed/Skipped" summaries from it. */
function runCounted(name, cmd, args, opts = {}) {
  return new Promise((resolve) => {
    process.stdout.write(`\n=== suite ${name}: ${cmd} ${args.join(' ')}\n`)
    const child = spawn(cmd, args, {cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], ...opts})
    let text = ''
    const onData = (stream) => (d) => {
      text += d
      stream.write(d)
    }
    child.stdout.on('data', onData(process.stdout))
    child.stderr.on('data', onData(process.stderr))
    child.on('close', (code) => {
      // eslint-disable-next-line no-control-regex
      const plain = text.replace(/\x1b\[[0-9;]*m/g, '')
      let total = 0, passed = 0, skipped = 0, seen = 0
      for (const m of plain.matchAll(/Total:\s+(\d+)\s+Passed:\s+(\d+)\s+Skipped:\s+(\d+)/g)) {
        total += Number(m[1]); passed += Number(m[2]); skipped += Number(m[3]); seen++
      }
      let failed = total - passed - skipped
      if (seen === 0 || (code !== 0 && failed === 0)) {
        failed += 1 // the suite crashed or exited non-zero without a failing test: count it
        failures.push(`${name}: exited ${code} ${seen === 0 ? 'without a test summary' : 'after its tests'}`)
      } else if (failed > 0) failures.push(`${name}: ${failed} failing`)
      totals.passed += passed
      totals.failed += failed
      totals.skipped += skipped
      resolve()
    })
  })
}

function skip(name, why) {
  if (strict) {
    totals.failed += 1
    failures.push(`${name}: prerequisite missing under CI: ${why}`)
    process.stdout.write(`\n=== suite ${name}: FAILED (CI requires it): ${why}\n`)
  } else {
    totals.skipped += 1
    process.stdout.write(`\n=== suite ${name}: SKIPPED: ${why}\n`)
  }
}

const suites = {
  async unit() {
    await runCounted('unit', process.execPath, ['--import', 'tsx', uvu, 'test/unit', '\\.test\\.ts$'])
  },
  async host() {
    if (!hasTests(join(repo, 'test/host'))) return skip('host', 'no host tests present')
    const why = whyNotRoot()
    if (why) return skip('host', why)
    await runCounted('host', process.execPath, ['--import', 'tsx', uvu, 'test/host', '\\.test\\.ts$'])
  },
  async uml() {
    if (!hasTests(join(repo, 'test/uml'))) return skip('uml', 'no user-mode-linux tests present')
    const why = whyNotUml()
    if (why) return skip('uml', why)
    // one boot for the whole kernel suite (boots cost ~3 s, processes inside are slow)
    await runCounted('uml', 'bash', [join(repo, 'test/uml/uml.sh'), join(repo, 'test/uml/suite.sh')])
  },
}

const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(suites)
for (const name of wanted) {
  if (!suites[name]) {
    console.error(`unknown suite ${name}; known: ${Object.keys(suites).join(', ')}`)
    process.exit(64)
  }
  await suites[name]()
}

if (failures.length) process.stdout.write('\nFailures:\n  ' + failures.join('\n  ') + '\n')
process.stdout.write(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`)
process.exitCode = totals.failed ? 1 : 0
