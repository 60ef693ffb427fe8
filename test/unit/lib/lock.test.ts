// The per-namespace lock (flock(2)): exclusive, released after fn (also on throw) and when the holder dies,
// a lock file left by a dead pid is no obstacle, timeout → LockError 75; the same with the flock(1) fallback.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {existsSync, statSync} from 'node:fs'
import {acquireLock, dropPreLock, flockAddon, lockHeld, preLock, withLock, lockPath} from '../../../src/lib/lock.js'
import {LockError} from '../../../src/lib/errors.js'

const root = mkdtempSync(join(tmpdir(), 'tunctl-lock-'))
test.after(() => rmSync(root, {recursive: true, force: true}))
const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..', '..')

test('lock path per namespace', () => {
  assert.is(lockPath(undefined, '/run/tunctl'), '/run/tunctl/host/lock')
  assert.is(lockPath('ns1', '/run/tunctl'), '/run/tunctl/ns/ns1/lock')
})

test('the native flock addon is built here (else the fallback below is all that is tested)', () => {
  assert.ok(flockAddon(), 'build/Release/tunctl_lock.node (node scripts/build-native.mjs)')
})

test('second holder waits for the first; the file records the holder and is free afterwards', async () => {
  const order: string[] = []
  const a = withLock('a', 5, async () => {
    order.push('a-in')
    assert.is(readFileSync(lockPath('a', root), 'utf8'), `${process.pid}\n`)
    await new Promise((r) => setTimeout(r, 300))
    order.push('a-out')
  }, root)
  await new Promise((r) => setTimeout(r, 20))
  const b = withLock('a', 5, async () => {
    order.push('b-in')
  }, root)
  await Promise.all([a, b])
  assert.equal(order, ['a-in', 'a-out', 'b-in'])
  assert.is(await lockHeld('a', root), false)
})

test('released when fn throws', async () => {
  let caught: unknown
  try {
    await withLock('t', 1, async () => {
      throw new Error('boom')
    }, root)
  } catch (e) {
    caught = e
  }
  assert.is((caught as Error)?.message, 'boom', 'withLock rethrows what fn threw')
  assert.is(await lockHeld('t', root), false)
})

test('held past the timeout → LockError exit 75 naming the holder', async () => {
  const held = await acquireLock('busy', 1, root)
  assert.is(await lockHeld('busy', root), true)
  const t0 = Date.now()
  try {
    await withLock('busy', 0.3, async () => 1, root)
    assert.unreachable()
  } catch (e: any) {
    assert.instance(e, LockError)
    assert.is(e.exitCode, 75)
    assert.match(e.message, `pid ${process.pid}`)
    assert.ok(Date.now() - t0 >= 300)
  } finally {
    held.release()
  }
  assert.is(await withLock('busy', 1, async () => 7, root), 7)
})

test('a lock file left by a dead pid (or empty) is no obstacle', async () => {
  mkdirSync(dirname(lockPath('stale', root)), {recursive: true})
  writeFileSync(lockPath('stale', root), '999999999\n')
  assert.is(await withLock('stale', 0, async () => 42, root), 42)
  writeFileSync(lockPath('stale', root), '')
  assert.is(await withLock('stale', 0, async () => 43, root), 43)
})

test('a holder killed with SIGKILL releases the lock (no wedge, no takeover race)', async () => {
  const script = `import {acquireLock} from ${JSON.stringify(join(repo, 'src/lib/lock.ts'))}
await acquireLock('killed', 1, ${JSON.stringify(root)}); process.stdout.write('locked\\n'); setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {stdio: ['ignore', 'pipe', 'inherit']})
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('child did not take the lock within 10 s')), 10_000)
    child.stdout!.on('data', (d) => String(d).includes('locked') && (clearTimeout(t), resolve()))
  })
  assert.is(await lockHeld('killed', root), true)
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  assert.is(await withLock('killed', 2, async () => 'mine', root), 'mine')
})

test('preLock: creates and writes nothing; held/absent/busy; acquireLock says whether the lock stayed undisturbed since', async () => {
  const file = lockPath('pre', root)
  // no lock file: absent, and nothing made
  const p0 = preLock('pre', {hold: true}, root)
  assert.equal(p0, {state: 'absent'})
  assert.not.ok(existsSync(dirname(file)), 'no run dir made')
  const l0 = await acquireLock('pre', 1, root, p0)
  assert.is(l0.undisturbed, true, 'the lock file made by this acquisition: nobody held it meanwhile')
  l0.release()
  // absent, but another holder came and went meanwhile: its lock file exists now → disturbed
  rmSync(dirname(file), {recursive: true, force: true})
  const p1 = preLock('pre', {hold: true}, root)
  assert.is(p1.state, 'absent')
  await withLock('pre', 1, async () => {}, root)
  const l1 = await acquireLock('pre', 1, root, p1)
  assert.is(l1.undisturbed, false)
  l1.release()
  // the file exists and is free: held now, nothing written until acquireLock
  writeFileSync(file, '4242\n')
  const mtime = statSync(file).mtimeMs
  const p2 = preLock('pre', {hold: true}, root)
  assert.is(p2.state, 'held')
  assert.is(await lockHeld('pre', root), true, 'held from the preLock on')
  assert.is(readFileSync(file, 'utf8'), '4242\n')
  assert.is(statSync(file).mtimeMs, mtime)
  const l2 = await acquireLock('pre', 1, root, p2)
  assert.is(l2.undisturbed, true)
  assert.is(readFileSync(file, 'utf8'), `${process.pid}\n`)
  // held by another: busy; without hold, an existing file is busy too (nothing held)
  assert.is(preLock('pre', {hold: true}, root).state, 'busy')
  l2.release()
  assert.is(preLock('pre', {hold: false}, root).state, 'busy')
  assert.is(await lockHeld('pre', root), false)
  // a preLock dropped (bad input): free again, file untouched
  const p3 = preLock('pre', {hold: true}, root)
  assert.is(p3.state, 'held')
  dropPreLock(p3)
  assert.is(await lockHeld('pre', root), false)
  assert.is(readFileSync(file, 'utf8'), `${process.pid}\n`)
  // held, but the lock file was replaced meanwhile (another inode at its path): given back, taken the ordinary way
  const p4 = preLock('pre', {hold: true}, root)
  assert.is(p4.state, 'held')
  rmSync(file)
  writeFileSync(file, '')
  const l4 = await acquireLock('pre', 1, root, p4)
  assert.is(l4.undisturbed, false)
  assert.is(readFileSync(file, 'utf8'), `${process.pid}\n`, 'the file at the path is the one locked')
  l4.release()
  // no preLock: never undisturbed
  const l3 = await acquireLock('pre', 1, root)
  assert.is(l3.undisturbed, false)
  l3.release()
})

test('flock(1) fallback: same semantics (TUNCTL_LOCK_FLOCK1=1)', () => {
  if (spawnSync('sh', ['-c', 'command -v flock']).status !== 0) return
  const script = `import {acquireLock, flockAddon, withLock} from ${JSON.stringify(join(repo, 'src/lib/lock.ts'))}
if (flockAddon()) throw new Error('addon used')
const root = ${JSON.stringify(root)}
const a = await acquireLock('fb', 1, root)
let busy = false
try { await acquireLock('fb', 0.2, root) } catch (e) { busy = e.exitCode === 75 }
a.release()
const v = await withLock('fb', 1, async () => 5, root)
process.stdout.write(JSON.stringify({busy, v}))`
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {encoding: 'utf8', env: {...process.env, TUNCTL_LOCK_FLOCK1: '1'}})
  assert.is(r.status, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout), {busy: true, v: 5})
})

test.run()
