#!/usr/bin/env node
// Runs the uvu test files under DIR matching PATTERN and counts honestly: a test that did not pass and was not
// deliberately skipped is a failure; a hook that throws fails its suite with the error shown; a file that fails
// to load, a test registered after run(), a `.only`, or a suite over its time limit is a failure too.
// Ends with one line `RESULT passed=N failed=N skipped=N` (test/run.mjs sums these) and exits 1 on any failure.
// Usage: node --import tsx test/lib/runner.mjs DIR [PATTERN]    env TEST_SUITE_TIMEOUT (seconds, default 600)
import {readdirSync, statSync} from 'node:fs'
import {join, relative, resolve} from 'node:path'
import {pathToFileURL} from 'node:url'

globalThis.UVU_DEFER = 1 // uvu queues suites instead of running them when its module loads
const {registry} = await import('./uvu.mjs')

const [dirArg = 'test/unit', patternArg = '\\.test\\.[mc]?ts$'] = process.argv.slice(2)
const dir = resolve(dirArg)
const pattern = new RegExp(patternArg)
const limitMs = Number(process.env.TEST_SUITE_TIMEOUT ?? 600) * 1000

function listFiles(d) {
  const out = []
  for (const e of readdirSync(d).sort()) {
    const p = join(d, e)
    if (statSync(p).isDirectory()) out.push(...listFiles(p))
    else if (pattern.test(p)) out.push(p)
  }
  return out
}

const failures = [] // {where, why}
let passed = 0, failed = 0
const say = (s) => process.stdout.write(s)
const errText = (e) => (e && e.stack) || String(e)

globalThis.UVU_QUEUE = []
const files = listFiles(dir)
for (const [i, file] of files.entries()) {
  const name = relative(process.cwd(), file)
  registry.file = name
  globalThis.UVU_INDEX = i
  globalThis.UVU_QUEUE.push([name])
  try {
    await import(pathToFileURL(file).href)
  } catch (e) {
    failed++
    failures.push({where: name, why: `failed to load: ${errText(e)}`})
    say(`\n✘ ${name} failed to load:\n  ${errText(e).split('\n').join('\n  ')}\n`)
  }
}
for (const s of registry.suites) {
  if (s.pending > 0) {
    failed += s.pending
    failures.push({where: `${s.file} ${s.name || '(unnamed suite)'}`, why: `${s.pending} test(s) registered after its last run() (or never run): they would never execute`})
  }
}
for (const o of registry.onlys) {
  failed++
  failures.push({where: `${o.file} ${o.suite} › ${o.title}`, why: '.only left in: every other test of the suite is silently skipped'})
}

const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: exceeded the ${ms / 1000}s suite time limit (TEST_SUITE_TIMEOUT)`)), ms).unref())
for (const group of globalThis.UVU_QUEUE) {
  const file = group.shift()
  say(`\n${file}\n`)
  for (const run of group) {
    const hookErrorsBefore = registry.hookErrors.length
    let result
    try {
      result = await Promise.race([run(), timeout(limitMs, file)])
    } catch (e) {
      // an after-hook that throws escapes uvu's runner; so does the time limit
      failed++
      failures.push({where: file, why: errText(e)})
      say(`\n  ✘ ${errText(e)}\n`)
      continue
    }
    const [errs, ran, , total] = result
    passed += ran
    failed += total - ran
    if (typeof errs === 'string') say('\n' + errs + '\n')
    const hookErrors = registry.hookErrors.slice(hookErrorsBefore)
    for (const h of hookErrors) {
      failures.push({where: `${h.file} ${h.suite || '(unnamed suite)'}`, why: `${h.kind} hook threw: ${errText(h.error)}`})
      say(`\n  ✘ ${h.kind} hook of ${h.suite || '(unnamed suite)'} threw:\n    ${errText(h.error).split('\n').join('\n    ')}\n`)
    }
    if (total > ran && typeof errs === 'string') failures.push({where: file, why: `${total - ran} of ${total} failed`})
    if (total > ran && typeof errs !== 'string' && hookErrors.length === 0) failures.push({where: file, why: `${total - ran} of ${total} did not run (a hook failed)`})
  }
}

const skipped = registry.skips.length
if (failures.length) say('\nFailures:\n' + failures.map((f) => `  ${f.where}: ${f.why.split('\n')[0]}`).join('\n') + '\n')
for (const s of registry.skips) say(`skipped: ${s.file} ${s.suite} › ${s.title}\n`)
say(`\nRESULT passed=${passed} failed=${failed} skipped=${skipped}\n`)
for (const s of registry.skips) say(`SKIP ${JSON.stringify({file: s.file, suite: s.suite, title: s.title})}\n`)
// stdout is asynchronous on a pipe: exit only once everything written (the RESULT line above all) is flushed
process.exitCode = failed ? 1 : 0
process.stdout.write('', () => process.exit(failed ? 1 : 0))
