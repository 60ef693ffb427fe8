// Counts one suite's run from its output and exit code (pure, so the counting itself is tested:
// test/unit/runner/tally.test.ts). test/lib/runner.mjs prints `RESULT passed=N failed=N skipped=N` and a
// `SKIP {json}` line per deliberate skip; anything else (no RESULT line, a non-zero exit with no failure
// counted) is a failure too. Under strict (CI=true) a skip not listed in test/skips.json fails.

/** @returns {{passed:number, failed:number, skipped:number, problems:string[]}} */
export function tally(output, code, {strict = false, allowedSkips = {}} = {}) {
  // eslint-disable-next-line no-control-regex
  const plain = String(output).replace(/\x1b\[[0-9;]*m/g, '')
  let passed = 0, failed = 0, skipped = 0, seen = 0
  const problems = []
  for (const m of plain.matchAll(/^RESULT passed=(\d+) failed=(\d+) skipped=(\d+)$/gm)) {
    passed += Number(m[1]); failed += Number(m[2]); skipped += Number(m[3]); seen++
  }
  if (failed) problems.push(`${failed} failing`)
  for (const m of plain.matchAll(/^SKIP (\{.*\})$/gm)) {
    let s
    try {
      s = JSON.parse(m[1])
    } catch {
      continue
    }
    const key = skipKey(s)
    if (strict && !(key in allowedSkips)) {
      failed++
      problems.push(`skipped under CI but not listed in test/skips.json: ${key}`)
    }
  }
  if (seen === 0) {
    failed++
    problems.push(`exited ${code} without a RESULT line (crashed, or not run by test/lib/runner.mjs)`)
  } else if (code !== 0 && failed === 0) {
    failed++
    problems.push(`exited ${code} although every test passed`)
  }
  return {passed, failed, skipped, problems}
}

/** The one spelling of a skipped test, as test/skips.json lists it. */
export const skipKey = (s) => [s.file, s.suite, s.title].filter(Boolean).join(' › ')
