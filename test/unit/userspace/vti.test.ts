// The userspace vti data path (native/vti.c over native/esp.c) against the kernel: builds the C test program
// test/unit/userspace/c/vti_test.c (ASan/UBSan when available) and reports each of its cases as a test here.
// Interop: every ESP packet the kernel's vti sent (test/fixtures/esp/kernel-esp.txt, outer IPv4 header included)
// is received, and sent again byte for byte; tampering, replay, MTU/ICMP, ECN and sequence-number cases.
// A missing compiler or libcrypto, a program that does not build or crashes fails the suite.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const dir = mkdtempSync(join(tmpdir(), 'tunctl-vti-'))
const exe = join(dir, 'vti_test')
const cc = process.env.CC ?? 'cc'
const src = [join(repo, 'test/unit/userspace/c/vti_test.c'), ...['vti.c', 'esp.c', 'codec.c'].map((f) => join(repo, 'native', f))]
const base = ['-std=gnu11', '-D_DEFAULT_SOURCE', '-pthread', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter', '-O1', '-g', `-I${join(repo, 'native')}`, ...src, '-lcrypto', '-o', exe]
let build = spawnSync(cc, ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', ...base], {encoding: 'utf8'})
if (build.status !== 0) build = spawnSync(cc, base, {encoding: 'utf8'}) // no sanitizer runtime installed
const fixture = join(repo, 'test', 'fixtures', 'esp', 'kernel-esp.txt')
const run = build.status === 0 ? spawnSync(exe, [fixture], {encoding: 'utf8', timeout: 120_000, env: {...process.env, ASAN_OPTIONS: 'detect_leaks=1'}}) : undefined
rmSync(dir, {recursive: true, force: true})

const t = suite('vti (C): userspace vti against the kernel vti + esp4')

t('the C test program builds and runs to the end', () => {
  assert.is(build.status, 0, `${cc} failed: ${build.error ?? ''}${build.stderr}`)
  assert.ok(run, 'not run')
  assert.match(run!.stdout, /^\d+ cases, \d+ failed$/m, `no summary; stderr: ${run!.stderr}`)
  assert.ok(run!.status === 0 || /^not ok /m.test(run!.stdout), `exit ${run!.status} signal ${run!.signal}: ${run!.stderr}`)
})

const lines = (run?.stdout ?? '').split('\n').filter((l) => /^(not )?ok /.test(l))
t('the program reports its cases, the kernel packets among them', () => {
  assert.ok(lines.length >= 100, `${lines.length} cases`)
  assert.ok(lines.filter((l) => / kernel aes-.* byte for byte/.test(l)).length >= 80, 'kernel packets missing')
})
for (const line of lines) {
  const ok = line.startsWith('ok ')
  const name = line.replace(/^(not )?ok /, '').replace(/\t.*$/, '')
  t(name, () => assert.ok(ok, line))
}

t.run()
