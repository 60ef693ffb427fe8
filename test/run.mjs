#!/usr/bin/env node
// Runs every test suite (unit, host e2e in namespaces, kernel e2e inside user-mode-linux) and ends with
// one line `N passed, N failed, N skipped`. Usage: node test/run.mjs [unit|host|uml ...]  (default: all)
// Each suite runs under test/lib/runner.mjs, which counts honestly and prints a RESULT line; test/lib/tally.mjs
// sums them. A suite whose prerequisites are missing is reported as one titled skip that says why, except with
// CI=true, where a missing prerequisite is a failure (CI must have them all), and so is any skipped test not
// listed with its reason in test/skips.json.
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tally} from './lib/tally.mjs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const runner = join(repo, 'test', 'lib', 'runner.mjs')
const allowedSkips = JSON.parse(readFileSync(join(repo, 'test', 'skips.json'), 'utf8'))
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

/** Runs a command, streams its output, and counts it with tally(): its RESULT lines, skips and exit code. */
function runCounted(name, cmd, args, limitSec) {
  return new Promise((resolve) => {
    process.stdout.write(`\n=== suite ${name}: ${cmd} ${args.join(' ')} (time limit ${limitSec} s)\n`)
    const child = spawn(cmd, args, {cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], detached: true})
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid, 'SIGKILL') // the whole process group: the suite and what it started
      } catch {}
    }, limitSec * 1000)
    let text = ''
    const onData = (stream) => (d) => {
      text += d
      stream.write(d)
    }
    child.stdout.on('data', onData(process.stdout))
    child.stderr.on('data', onData(process.stderr))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const t = tally(text, code ?? signal, {strict, allowedSkips})
      if (timedOut) {
        t.failed++
        t.problems.push(`killed after its ${limitSec} s time limit`)
      }
      for (const p of t.problems) failures.push(`${name}: ${p}`)
      totals.passed += t.passed
      totals.failed += t.failed
      totals.skipped += t.skipped
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
    await runCounted('unit', process.execPath, ['--import', 'tsx', runner, 'test/unit'], 600)
  },
  async host() {
    if (!hasTests(join(repo, 'test/host'))) return skip('host', 'no host tests present')
    const why = whyNotRoot()
    if (why) return skip('host', why)
    await runCounted('host', process.execPath, ['--import', 'tsx', runner, 'test/host'], 1500)
  },
  async uml() {
    if (!hasTests(join(repo, 'test/uml'))) return skip('uml', 'no user-mode-linux tests present')
    const why = whyNotUml()
    if (why) return skip('uml', why)
    // one boot for the whole kernel suite (boots cost ~3 s, processes inside are slow)
    await runCounted('uml', 'bash', [join(repo, 'test/uml/uml.sh'), join(repo, 'test/uml/suite.sh')], 2700)
  },
}

/**
 * Removes what an earlier, interrupted run left: host test namespaces named tunctl-t-…-pPID-… whose PID no longer
 * runs (test/host/lib/netns.ts names them so), every process inside them, and their /run/tunctl state directories.
 * Namespaces of a run still in progress, and anything not named by the tests, are left alone.
 */
function sweepLeftovers() {
  if (process.getuid?.() !== 0) return
  const list = spawnSync('ip', ['netns', 'list'], {encoding: 'utf8'}).stdout ?? ''
  for (const ns of list.split('\n').map((l) => l.split(' ')[0]).filter(Boolean)) {
    const m = /^tunctl-t-.*-p(\d+)-[ab][0-9a-f]{6}$/.exec(ns)
    if (!m || isRunning(Number(m[1]))) continue
    const pids = (spawnSync('ip', ['netns', 'pids', ns], {encoding: 'utf8'}).stdout ?? '').split('\n').filter(Boolean)
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {}
    }
    spawnSync('ip', ['netns', 'del', ns])
    const root = process.env.TUNCTL_RUN_DIR ?? '/run/tunctl'
    for (const dir of [join(root, 'ns', ns), join(root, ns)]) rmSync(dir, {recursive: true, force: true}) // src/lib/rundir.ts, and its legacy layout
    process.stdout.write(`swept the namespace ${ns} left by an earlier run (pid ${m[1]}, ${pids.length} processes)\n`)
  }
}

function isRunning(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return e.code === 'EPERM'
  }
}

sweepLeftovers()

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
