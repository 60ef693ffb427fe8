// A mode whose kernel module is missing: --driver kernel exits 69 and changes nothing; auto falls back to
// userspace where there is one (sit), and vti (no userspace driver) exits 69.
// Runs last in the boot (file name): it unloads sit and ip_vti and loads them again in teardown.
// Modules are never auto-loaded inside UML (no /lib/modules), so "unloaded" is a deterministic "missing".
import {existsSync} from 'node:fs'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml, run} from './lib/sh.js'
import {snapshot, snapshotDiff, type Snapshot} from './lib/snapshot.js'
import {examplePath} from './lib/spec.js'
import {show, tunctl, tunctlOk} from './lib/tunctl.js'

interface State {
  pair?: Pair
  before?: Snapshot
  unloaded: string[]
}

const s = suite<State>('kernel module missing', {unloaded: []})

/** rmmod, retrying while namespaces deleted by earlier tests are still being torn down. */
function unload(mod: string): void {
  const end = Date.now() + 10_000
  for (;;) {
    const r = run('rmmod', [mod])
    if (r.code === 0 || !existsSync(`/sys/module/${mod}`)) return
    if (Date.now() > end) throw new Error(`rmmod ${mod}: ${r.stderr.trim()} (is a ${mod} link left in some namespace?)`)
    run('sleep', ['0.3'])
  }
}

s.after((st) => {
  removePair(st.pair)
  // give the modules back to anything that runs after this file in the same boot
  for (const m of st.unloaded) run('modprobe', ['-d', '/run/mods', m])
})

s('unload sit and ip_vti', (st) => {
  assertInUml()
  for (const m of ['sit', 'ip_vti']) {
    assert.ok(existsSync(`/sys/module/${m}`), `${m} should be loaded at boot (MODULES)`)
    unload(m)
    st.unloaded.push(m)
    assert.not.ok(existsSync(`/sys/module/${m}`), `${m} unloaded`)
  }
  st.pair = makePair('nomod')
  st.before = snapshot(st.pair.a)
})

for (const mode of ['sit', 'isatap'] as const) {
  s(`${mode} with --driver kernel: exit 69, nothing changed`, (st) => {
    const a = st.pair!.a
    const r = tunctl(['apply', '--driver', 'kernel', '--netns', a, examplePath(mode)])
    assert.is(r.code, 69, show(r))
    assert.match(r.stderr, /sit/, 'the message names the missing module' + show(r))
    assert.is(snapshotDiff(st.before!, snapshot(a)), '', 'nothing changed')
  })
}

s('sit with driver auto: the plan falls back to userspace and says so', (st) => {
  const p = tunctlOk(['plan', '--netns', st.pair!.a, examplePath('sit')])
  assert.match(p.stdout, /^\+ sit1 \(sit, userspace\)/m, p.stdout)
})

s('vti with --driver kernel: exit 69, nothing changed; with auto the plan falls back to the userspace driver', (st) => {
  const a = st.pair!.a
  const r = tunctl(['apply', '--driver', 'kernel', '--netns', a, examplePath('vti')])
  assert.is(r.code, 69, show(r))
  assert.match(r.stderr, /ip_vti/, 'the message names the missing module' + show(r))
  assert.is(snapshotDiff(st.before!, snapshot(a)), '', 'nothing changed')
  const k = tunctl(['plan', '--driver', 'kernel', '--netns', a, examplePath('vti')])
  assert.is(k.code, 69, 'plan reports the mode unavailable too' + show(k))
  const p = tunctlOk(['plan', '--netns', a, examplePath('vti')])
  assert.match(p.stdout, /^\+ vti1 \(vti, userspace\)/m, p.stdout)
})

s('doctor reports sit and vti missing in the kernel and served by the userspace driver, gre by the kernel', () => {
  const r = tunctlOk(['doctor'])
  const line = (m: string) => r.stdout.split('\n').find((l) => new RegExp(`^\\s*${m}\\b`).test(l)) ?? ''
  for (const [m, mod] of [['sit', 'sit'], ['vti', 'ip_vti']]) {
    assert.match(line(m), new RegExp(`^\\s*${m}\\s+userspace\\s+no: kernel has no ${mod}\\b.*\\byes: native addon`), `doctor: ${m}` + show(r))
  }
  assert.match(line('gre'), /^\s*gre\s+kernel\s+yes/, 'doctor: gre kernel' + show(r))
})

s.run()
