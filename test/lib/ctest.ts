// A C test program as a uvu suite: builds the program (the test's C file plus the native sources it tests) with
// the system C compiler, under ASan/UBSan when the runtime is installed, runs it, and reports each `ok NAME` /
// `not ok NAME` line it prints as a test. A missing compiler, a program that does not build, crashes, prints no
// `N cases, N failed` summary or fewer than `minCases` cases fails the suite.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface CTest {
  /** the suite's title */
  title: string
  /** the test program, relative to the repository */
  program: string
  /** the native sources it links (file names in native/) */
  native: string[]
  /** compiler flags before the sources (default: -std=c11) and libraries after them */
  flags?: string[]
  libs?: string[]
  /** the program's arguments, and LeakSanitizer on (default off) */
  args?: string[]
  detectLeaks?: boolean
  /** at least this many cases must be reported */
  minCases: number
  /** the test's name for a case line without its `ok`/`not ok` (default: the rest of the line) */
  caseName?: (rest: string) => string
  /** more checks of the reported case lines */
  alsoCheck?: (lines: string[]) => void
}

export function cTestSuite(c: CTest): void {
  const dir = mkdtempSync(join(tmpdir(), 'tunctl-ctest-'))
  const exe = join(dir, basename(c.program, '.c'))
  const cc = process.env.CC ?? 'cc'
  const src = [join(repo, c.program), ...c.native.map((f) => join(repo, 'native', f))]
  const base = [...(c.flags ?? ['-std=c11']), '-D_DEFAULT_SOURCE', '-Wall', '-Wextra', '-Werror', '-O1', '-g', `-I${join(repo, 'native')}`, ...src, ...(c.libs ?? []), '-o', exe]
  let build = spawnSync(cc, ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', ...base], {encoding: 'utf8'})
  if (build.status !== 0) build = spawnSync(cc, base, {encoding: 'utf8'}) // no sanitizer runtime installed
  const run = build.status === 0 ? spawnSync(exe, c.args ?? [], {encoding: 'utf8', timeout: 120_000, env: {...process.env, ASAN_OPTIONS: `detect_leaks=${c.detectLeaks ? 1 : 0}`}}) : undefined
  rmSync(dir, {recursive: true, force: true})

  const t = suite(c.title)
  t('the C test program builds and runs to the end', () => {
    assert.is(build.status, 0, `${cc} failed: ${build.error ?? ''}${build.stderr}`)
    assert.ok(run, 'not run')
    assert.match(run!.stdout, /^\d+ cases, \d+ failed$/m, `no summary; stderr: ${run!.stderr}`)
    assert.ok(run!.status === 0 || /^not ok /m.test(run!.stdout), `exit ${run!.status} signal ${run!.signal}: ${run!.stderr}`)
  })
  const lines = (run?.stdout ?? '').split('\n').filter((l) => /^(not )?ok /.test(l))
  t('the program reports its cases', () => {
    assert.ok(lines.length >= c.minCases, `${lines.length} cases`)
    c.alsoCheck?.(lines)
  })
  for (const line of lines) {
    const ok = line.startsWith('ok ')
    const rest = line.replace(/^(not )?ok /, '')
    t(c.caseName ? c.caseName(rest) : rest, () => assert.ok(ok, line))
  }
  t.run()
}
