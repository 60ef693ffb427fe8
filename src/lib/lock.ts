// Serialises applies per network namespace: an O_EXCL lock file holding the owner's pid, stale pids taken over.
import {mkdirSync, openSync, closeSync, writeSync, readFileSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {LockError, PermissionError} from './errors.js'

export const LOCK_ROOT = process.env.TUNCTL_RUN_DIR ?? '/run/tunctl'

export function lockPath(netns: string | undefined, root = LOCK_ROOT): string {
  return join(root, netns || 'default', 'lock')
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (e: any) {
    return e.code === 'EPERM'
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim())
    return Number.isFinite(n) ? n : undefined
  } catch {
    return undefined
  }
}

/** Try once: true if the lock is now ours. Removes a lock whose pid no longer runs. */
export function tryLock(file: string): boolean {
  try {
    const fd = openSync(file, 'wx', 0o644)
    writeSync(fd, `${process.pid}\n`)
    closeSync(fd)
    return true
  } catch (e: any) {
    if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS') throw new PermissionError(`cannot create lock ${file}: ${e.message}`)
    if (e.code !== 'EEXIST') throw e
  }
  const pid = readPid(file)
  // a lock file being written right now may be empty: only a readable, dead pid is stale
  if (pid !== undefined && pid !== 0 && !alive(pid)) {
    try {
      unlinkSync(file)
    } catch {}
    return tryLock(file)
  }
  return false
}

/** Runs fn while holding the namespace lock; polls until timeoutSec, then LockError (exit 75). */
export async function withLock<T>(netns: string | undefined, timeoutSec: number, fn: () => Promise<T>, root = LOCK_ROOT): Promise<T> {
  const file = lockPath(netns, root)
  try {
    mkdirSync(join(file, '..'), {recursive: true})
  } catch (e: any) {
    if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS') throw new PermissionError(`cannot create ${join(file, '..')}: ${e.message} (tunctl needs root)`)
    throw e
  }
  const deadline = Date.now() + timeoutSec * 1000
  while (!tryLock(file)) {
    if (Date.now() >= deadline) {
      const pid = readPid(file)
      throw new LockError(`another tunctl (pid ${pid ?? '?'}) holds ${file}; gave up after ${timeoutSec}s (--lock-timeout)`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  const release = () => {
    if (readPid(file) === process.pid) {
      try {
        unlinkSync(file)
      } catch {}
    }
  }
  process.once('exit', release)
  try {
    return await fn()
  } finally {
    release()
    process.removeListener('exit', release)
  }
}
