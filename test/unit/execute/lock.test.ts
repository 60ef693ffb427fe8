// The per-namespace lock: exclusive, released after fn (also on throw), stale pids taken over, timeout → LockError 75.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {mkdtempSync, existsSync, mkdirSync, writeFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {withLock, lockPath} from '../../../src/lib/lock.js'
import {LockError} from '../../../src/lib/errors.js'

const root = mkdtempSync(join(tmpdir(), 'tunctl-lock-'))
test.after(() => rmSync(root, {recursive: true, force: true}))

test('lock path per namespace', () => {
  assert.is(lockPath(undefined, '/run/tunctl'), '/run/tunctl/default/lock')
  assert.is(lockPath('ns1', '/run/tunctl'), '/run/tunctl/ns1/lock')
})

test('second holder waits for the first; file removed afterwards', async () => {
  const order: string[] = []
  const a = withLock('a', 5, async () => {
    order.push('a-in')
    await new Promise((r) => setTimeout(r, 300))
    order.push('a-out')
  }, root)
  await new Promise((r) => setTimeout(r, 20))
  const b = withLock('a', 5, async () => {
    order.push('b-in')
  }, root)
  await Promise.all([a, b])
  assert.equal(order, ['a-in', 'a-out', 'b-in'])
  assert.not.ok(existsSync(lockPath('a', root)))
})

test('released when fn throws', async () => {
  try {
    await withLock('t', 1, async () => {
      throw new Error('boom')
    }, root)
  } catch {}
  assert.not.ok(existsSync(lockPath('t', root)))
})

test('held by a live pid past the timeout → LockError exit 75', async () => {
  mkdirSync(join(root, 'busy'), {recursive: true})
  writeFileSync(lockPath('busy', root), `${process.ppid}\n`)
  const t0 = Date.now()
  try {
    await withLock('busy', 0.3, async () => 1, root)
    assert.unreachable()
  } catch (e: any) {
    assert.instance(e, LockError)
    assert.is(e.exitCode, 75)
    assert.ok(Date.now() - t0 >= 300)
  }
})

test('stale pid is taken over', async () => {
  mkdirSync(join(root, 'stale'), {recursive: true})
  writeFileSync(lockPath('stale', root), '999999999\n')
  assert.is(await withLock('stale', 1, async () => 42, root), 42)
})

test.run()
