// Applies on one namespace are serialised by the lock /run/tunctl/<netns>/lock (documented in apply --help):
// a held lock → exit 75 after --lock-timeout with nothing changed; a dead holder's lock is taken over;
// concurrent applies of the same file all succeed, exactly one of them creating the tunnel.
import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdirSync, writeFileSync} from 'node:fs'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {linkExists, makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml} from './lib/sh.js'
import {snapshot, snapshotDiff} from './lib/snapshot.js'
import {examplePath} from './lib/spec.js'
import {show, tunctl, tunctlAsync} from './lib/tunctl.js'

interface State {
  pair?: Pair
  holder?: ChildProcess
}

const s = suite<State>('kernel: namespace lock', {})
s.after((st) => {
  st.holder?.kill('SIGKILL')
  removePair(st.pair)
})

const lockFile = (ns: string) => `/run/tunctl/${ns}/lock`

s('a lock held by a live process: exit 75 after --lock-timeout, nothing changed', (st) => {
  assertInUml()
  st.pair = makePair('lock')
  const a = st.pair.a
  st.holder = spawn('sleep', ['120'], {stdio: 'ignore'})
  mkdirSync(`/run/tunctl/${a}`, {recursive: true})
  writeFileSync(lockFile(a), `${st.holder.pid}\n`)
  const before = snapshot(a)
  const t0 = Date.now()
  const r = tunctl(['apply', '--lock-timeout', '2', '--netns', a, examplePath('gre')])
  const took = Date.now() - t0
  assert.is(r.code, 75, show(r))
  assert.ok(took >= 2000, `waited for the lock timeout (${took} ms)`)
  assert.is(snapshotDiff(before, snapshot(a)), '', 'nothing changed')
  assert.ok(existsSync(lockFile(a)), "the other holder's lock is left alone")
})

s("a dead holder's lock is taken over", async (st) => {
  const a = st.pair!.a
  const h = st.holder!
  await new Promise((res) => {
    h.once('exit', res)
    h.kill('SIGKILL')
  })
  st.holder = undefined
  const r = tunctl(['apply', '--lock-timeout', '2', '--netns', a, examplePath('gre')])
  assert.is(r.code, 0, show(r))
  assert.ok(linkExists(a, 'gre1'))
  assert.not.ok(existsSync(lockFile(a)), 'lock released after apply')
})

s('three concurrent applies of the same file: all succeed, one creates', async (st) => {
  const a = st.pair!.a
  tunctl(['del', '--netns', a, 'gre1'])
  assert.not.ok(linkExists(a, 'gre1'))
  const runs = await Promise.all([1, 2, 3].map(() => tunctlAsync(['apply', '--netns', a, examplePath('ipip')])))
  for (const r of runs) assert.is(r.code, 0, 'each concurrent apply succeeds' + show(r))
  const creators = runs.filter((r) => /^\+ ipip1\b/m.test(r.stdout))
  assert.is(creators.length, 1, 'exactly one apply planned the create; the others saw it done' + runs.map(show).join(''))
  assert.ok(linkExists(a, 'ipip1'))
})

s.run()
