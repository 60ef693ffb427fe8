// The kernel twin (native/pmtu.c, native/icmperr.c) against the kernel's rules: builds the C test program
// test/unit/userspace/c/twin_test.c with the system C compiler (ASan/UBSan when available) and reports each
// of its cases as a test here. A missing compiler or a program that does not build or crashes fails the suite.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'tunctl-twin-'))
const exe = join(dir, 'twin_test')
const cc = process.env.CC ?? 'cc'
const src = [join(repo, 'test/unit/userspace/c/twin_test.c'), join(repo, 'native/icmperr.c'), join(repo, 'native/pmtu.c'), join(repo, 'native/dispatch.c'), join(repo, 'native/codec.c')]
const base = ['-std=c11', '-D_DEFAULT_SOURCE', '-Wall', '-Wextra', '-Werror', '-O1', '-g', `-I${join(repo, 'native')}`, ...src, '-o', exe]
let build = spawnSync(cc, ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', ...base], {encoding: 'utf8'})
if (build.status !== 0) build = spawnSync(cc, base, {encoding: 'utf8'}) // no sanitizer runtime installed
const run = build.status === 0 ? spawnSync(exe, [], {encoding: 'utf8', env: {...process.env, ASAN_OPTIONS: 'detect_leaks=0'}}) : undefined
rmSync(dir, {recursive: true, force: true})

const t = suite('kernel twin (C)')

t('the C test program builds and runs to the end', () => {
  assert.is(build.status, 0, `${cc} failed: ${build.error ?? ''}${build.stderr}`)
  assert.ok(run, 'not run')
  assert.match(run!.stdout, /^\d+ cases, \d+ failed$/m, `no summary; stderr: ${run!.stderr}`)
  assert.ok(run!.status === 0 || /^not ok /m.test(run!.stdout), `exit ${run!.status} signal ${run!.signal}: ${run!.stderr}`)
})

const lines = (run?.stdout ?? '').split('\n').filter((l) => /^(not )?ok /.test(l))
t('the program reports its cases', () => assert.ok(lines.length >= 80, `${lines.length} cases`))
for (const line of lines) {
  const ok = line.startsWith('ok ')
  const name = line.replace(/^(not )?ok /, '')
  t(name, () => assert.ok(ok, line))
}

t.run()
