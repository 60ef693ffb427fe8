// Applies on one namespace are serialised by the flock(2) lock /run/tunctl/<netns>/lock (documented in apply --help):
// a held lock → exit 75 after --lock-timeout with nothing changed; the lock dies with its holder; a lock file
// naming a dead pid is no obstacle; concurrent applies of the same file all succeed, exactly one creating the tunnel.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
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
/** the holder and its sleep (its own process group) */
function killHolder(h: ChildProcess | undefined) {
  try {
    if (h?.pid) process.kill(-h.pid, 'SIGKILL')
  } catch {}
}

s.after((st) => {
  killHolder(st.holder)
  removePair(st.pair)
})

const lockFile = (ns: string) => `/run/tunctl/ns/${ns}/lock`
/** whether someone holds the flock on the file (flock(1) -n exits 1 then) */
const held = (f: string) => spawnSync('flock', ['-n', f, 'true']).status === 1

async function until(what: string, cond: () => boolean, ms = 20_000) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

s('a lock held by a live process: exit 75 after --lock-timeout, nothing changed', async (st) => {
  assertInUml()
  st.pair = makePair('lock')
  const a = st.pair.a
  mkdirSync(`/run/tunctl/ns/${a}`, {recursive: true})
  // flock -o: only the flock process holds the lock (its sleep child does not inherit the fd)
  st.holder = spawn('flock', ['-o', lockFile(a), 'sleep', '120'], {stdio: 'ignore', detached: true})
  await until('the holder to take the lock', () => held(lockFile(a)))
  const before = snapshot(a)
  const t0 = Date.now()
  const r = tunctl(['apply', '--lock-timeout', '2', '--netns', a, examplePath('gre')])
  const took = Date.now() - t0
  assert.is(r.code, 75, show(r))
  assert.ok(took >= 2000, `waited for the lock timeout (${took} ms)`)
  assert.is(snapshotDiff(before, snapshot(a)), '', 'nothing changed')
  assert.ok(existsSync(lockFile(a)), "the other holder's lock is left alone")
})

s("the lock dies with its holder (SIGKILL); a file naming a dead pid is no obstacle", async (st) => {
  const a = st.pair!.a
  const h = st.holder!
  await new Promise((res) => {
    h.once('exit', res)
    killHolder(h)
  })
  st.holder = undefined
  writeFileSync(lockFile(a), '999999\n')
  const r = tunctl(['apply', '--lock-timeout', '2', '--netns', a, examplePath('gre')])
  assert.is(r.code, 0, show(r))
  assert.ok(linkExists(a, 'gre1'))
  assert.not.ok(held(lockFile(a)), 'lock released after apply')
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
