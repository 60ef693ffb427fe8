// The ESP codec (native/esp.c, for a userspace vti): its C test program test/unit/userspace/c/esp_test.c, compiled against
// libcrypto and run here; each of its cases is one test. Interop: the kernel's own ESP packets
// (test/fixtures/esp/kernel-esp.txt, captured by test/fixtures/esp/capture-kernel.sh) are decapsulated and
// re-encapsulated to the same bytes.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'

const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..', '..')
const fixture = join(repo, 'test', 'fixtures', 'esp', 'kernel-esp.txt')
const t = suite('ESP codec (native/esp.c): kernel interop, tampering, anti-replay, sequence numbers')

const dir = mkdtempSync(join(tmpdir(), 'tunctl-esp-test-'))
const bin = join(dir, 'test_esp')
const sources = [join(repo, 'test', 'unit', 'userspace', 'c', 'esp_test.c'), join(repo, 'native', 'esp.c'), '-lcrypto']
const flags = ['-std=gnu11', '-O1', '-pthread', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter', '-I', join(repo, 'native')]
const cc = spawnSync(process.env.CC ?? 'cc', [...flags, '-o', bin, ...sources], {encoding: 'utf8'})
const run = cc.status === 0 ? spawnSync(bin, [fixture], {encoding: 'utf8', timeout: 120_000}) : undefined
// the same cases under the sanitizers (clang): memory errors, undefined behaviour, leaks, and data races between
// the encapsulating and the decapsulating thread
const hasClang = spawnSync('clang', ['--version']).status === 0
const sanitized = (['address,undefined', 'thread'] as const).map((san) => {
  if (!hasClang) return {san, cc: undefined, run: undefined}
  const out = join(dir, `test_esp_${san.replace(',', '_')}`)
  const c = spawnSync('clang', [...flags, '-g', `-fsanitize=${san}`, '-fno-sanitize-recover=undefined', '-o', out, ...sources],
    {encoding: 'utf8'})
  const r = c.status === 0 ? spawnSync(out, [fixture], {encoding: 'utf8', timeout: 300_000}) : undefined
  return {san, cc: c, run: r}
})
rmSync(dir, {recursive: true, force: true})

if (cc.status !== 0) {
  t('test/unit/userspace/c/esp_test.c compiles against libcrypto (apt-get install libssl-dev)', () => {
    assert.unreachable(`cc failed (${cc.error?.message ?? cc.status}):\n${cc.stderr}`)
  })
} else {
  const lines = run!.stdout.split('\n')
  const cases = lines.flatMap((l) => {
    if (l.startsWith('ok ')) return [{name: l.slice(3), ok: true, why: ''}]
    if (!l.startsWith('not ok ')) return []
    const [name, why] = l.slice(7).split('\t')
    return [{name: name!, ok: false, why: why ?? ''}]
  })
  for (const c of cases) {
    t(c.name, () => {
      if (!c.ok) assert.unreachable(c.why)
    })
  }
  t('test_esp ran to the end, every kernel packet of the fixture was a case', () => {
    const done = lines.find((l) => l.startsWith('done '))
    assert.ok(done, `no "done" line: exit ${run!.status} ${run!.signal ?? ''}\n${run!.stderr}`)
    assert.is(Number(done!.split(' ')[1]), cases.length, 'cases printed')
    assert.is(run!.status, cases.some((c) => !c.ok) ? 1 : 0, 'exit status')
    const packets = readFileSync(fixture, 'utf8').split('\n').filter((l) => /^aes-\S+ (in|out) [0-9a-f]+$/.test(l))
    assert.ok(packets.length >= 80, 'fixture packets')
    assert.is(cases.filter((c) => /^kernel .* packet \d+ /.test(c.name)).length, packets.length, 'kernel packet cases')
    assert.ok(cases.length > 200, 'case count')
  })
}

for (const {san, cc: c, run: r} of sanitized) {
  const title = `test_esp under -fsanitize=${san}: every case passes, no sanitizer report`
  if (!c) {
    t.skip(`${title} (skipped: clang not installed)`, () => {})
    continue
  }
  t(title, () => {
    assert.is(c.status, 0, `clang: ${c.stderr}`)
    const report = /(ERROR: (Address|Leak)Sanitizer|runtime error|WARNING: ThreadSanitizer)[^\n]*/.exec(r!.stderr)
    assert.not.ok(report, report?.[0])
    assert.ok(/^done \d+ 0$/m.test(r!.stdout), `exit ${r!.status}: ${r!.stderr.slice(0, 2000)}`)
    assert.is(r!.status, 0)
  })
}

t.run()
