// Serialises mutating commands per network namespace with flock(2) on runDir(netns)/lock (/run/tunctl/host/lock,
// /run/tunctl/ns/NAME/lock).
//
// The lock is an flock on an open file description of this process: the kernel drops it when the last fd to it
// closes, i.e. when the holder exits or dies in any way (SIGKILL included), so there is no stale lock to take
// over and nothing to race. The file itself is never removed (removing a locked file would let a second holder
// lock a new inode); it only carries the holder's pid for messages. flock comes from build/Release/tunctl_lock.node
// (native/lock.c); when that addon is not built (kernel-only installs), flock(1) from util-linux is run on an fd
// this process passes down: it locks our open file description and exits, so the lock is still ours alone.
import {closeSync, constants, existsSync, fchmodSync, fstatSync, ftruncateSync, lstatSync, openSync, readFileSync, writeSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {LockError, PermissionError, UnavailableError} from './errors.js'
import {runWithFds} from './exec.js'
import {processAlive} from './proc.js'
import {ensureRunDir, runDir, runRoot} from './rundir.js'

export function lockPath(netns: string | undefined, root = runRoot()): string {
  return join(runDir(netns, root), 'lock')
}

interface FlockAddon {
  flock(fd: number, op: number): number
  LOCK_EX: number
  LOCK_NB: number
  LOCK_UN: number
  EWOULDBLOCK: number
}

let native: FlockAddon | null | undefined

/** The flock addon, or null when it is not built (TUNCTL_LOCK_FLOCK1=1 forces the flock(1) fallback, for tests). */
export function flockAddon(): FlockAddon | null {
  if (native !== undefined) return native
  native = null
  if (process.env.TUNCTL_LOCK_FLOCK1 === '1') return native
  const here = dirname(fileURLToPath(import.meta.url))
  // dist/lib/lock.js, dist/bundle/tunctl.cjs and src/lib/lock.ts all sit two levels below the repository
  const file = join(here, '..', '..', 'build', 'Release', 'tunctl_lock.node')
  try {
    if (existsSync(file)) native = createRequire(import.meta.url)(file) as FlockAddon
  } catch {
    native = null
  }
  return native
}

/** flock(1) -x [-n | -w SECONDS] on fd `fd` of ours: 0 locked, 1 busy/timed out. */
async function flock1(fd: number, waitSec: number | undefined): Promise<number> {
  const args = waitSec === undefined ? ['-x', '-n', '3'] : ['-x', '-w', String(waitSec), '3']
  let r: {exitCode: number; stderr: string}
  try {
    r = await runWithFds('flock', args, [fd])
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UnavailableError('no way to lock: the tunctl_lock addon is not built (node scripts/build-native.mjs) and flock(1) (util-linux) is missing')
    throw e
  }
  if (r.exitCode === 0 || r.exitCode === 1) return r.exitCode
  throw new Error(`flock(1) exited ${r.exitCode}: ${r.stderr.trim()}`)
}

/** Explains a held lock (set by the journal module: an apply awaiting confirmation holds it). */
let lockHint: ((netns: string | undefined) => string | undefined) | undefined
export function setLockHint(f: (netns: string | undefined) => string | undefined): void {
  lockHint = f
}

/** A held namespace lock. */
export interface Lock {
  path: string
  /** the fd holding the flock (pass it to a child to share the lock, see apply --confirm) */
  fd: number
  release(): void
  /** taken with a PreLock: no other process can have held the lock since that PreLock was taken */
  undisturbed?: boolean
}

/**
 * The namespace lock as it is before a command knows whether it will change anything (apply, before its file is
 * parsed), taken without creating or writing anything, so that bad input leaves no file: `held` (with hold: the
 * lock file exists and is now held by this process, its pid not written yet), `absent` (no lock file: nobody
 * holds the lock or can have held it until a lock file appears), or `busy` (held by another process, or not
 * checkable: the flock addon is not built). Given to acquireLock, which reports whether the lock stayed
 * undisturbed since (what a command read meanwhile is then what it would read holding the lock).
 */
export type PreLock = {state: 'held'; fd: number} | {state: 'absent'} | {state: 'busy'}

export function preLock(netns: string | undefined, opts: {hold: boolean}, root = runRoot()): PreLock {
  const file = lockPath(netns, root)
  const addon = flockAddon()
  let fd: number
  try {
    fd = openSync(file, (opts.hold ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NOFOLLOW)
  } catch (e: any) {
    return e.code === 'ENOENT' ? {state: 'absent'} : {state: 'busy'}
  }
  if (!opts.hold || !addon || addon.flock(fd, addon.LOCK_EX | addon.LOCK_NB) !== 0) {
    closeSync(fd)
    return {state: 'busy'}
  }
  return {state: 'held', fd}
}

/** Gives back a PreLock that no acquireLock took (nothing was written). */
export function dropPreLock(pre: PreLock | undefined): void {
  if (pre?.state !== 'held') return
  try {
    closeSync(pre.fd)
  } catch {}
  ;(pre as {state: string}).state = 'busy'
}

function holding(file: string, fd: number, undisturbed: boolean): Lock {
  let held = true
  return {
    path: file,
    fd,
    undisturbed,
    release() {
      if (!held) return
      held = false
      try {
        closeSync(fd) // drops the flock (unless a child was handed this fd)
      } catch {}
    },
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim())
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

/** The lock's run dir, made if missing and checked (ensureRunDir: 0700, ours, no symlink). */
function runDirFor(netns: string | undefined, root: string): void {
  try {
    ensureRunDir(netns, root)
  } catch (e: any) {
    // not root: /run/tunctl is root's (ensureRunDir refuses a directory of another user) → exit 77, like EACCES
    const uid = process.getuid?.()
    if (uid !== undefined && uid !== 0 && !(e instanceof PermissionError) && /belongs to uid/.test(String(e?.message))) {
      throw new PermissionError(`${e.message} (tunctl needs root / CAP_NET_ADMIN)`)
    }
    throw e
  }
}

/** The lock file opened (created if missing: `created` says whether this call made it). */
function openLockFile(netns: string | undefined, root: string): {fd: number; created: boolean} {
  runDirFor(netns, root)
  const file = lockPath(netns, root)
  try {
    // not O_TRUNC: the pid in it belongs to the holder until we hold the lock ourselves; never through a symlink.
    // O_EXCL first, to know whether this call made it (PreLock: nobody can have held a lock whose file was missing)
    let fd: number
    let created = true
    try {
      fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    } catch (e: any) {
      if (e.code !== 'EEXIST') throw e
      fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
      created = false
    }
    try {
      fchmodSync(fd, 0o600)
    } catch {}
    return {fd, created}
  } catch (e: any) {
    if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS') throw new PermissionError(`cannot open lock ${file}: ${e.message}`)
    throw e
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Takes the namespace lock, waiting up to timeoutSec (then LockError, exit 75). The lock lasts until release()
 * or this process ends (however it ends).
 */
export async function acquireLock(netns: string | undefined, timeoutSec: number, root = runRoot(), pre?: PreLock): Promise<Lock> {
  const file = lockPath(netns, root)
  if (pre?.state === 'held') {
    const fd = pre.fd
    ;(pre as {state: string}).state = 'busy' // taken: dropPreLock leaves it alone
    // the run dir checked as openLockFile checks it (0700, ours, no symlink on the way), and the file held is the
    // lock file there now; otherwise given back and taken the ordinary way (not undisturbed)
    let same = false
    try {
      runDirFor(netns, root)
    } catch (e) {
      closeSync(fd)
      throw e
    }
    try {
      const a = fstatSync(fd)
      const b = lstatSync(file)
      same = b.isFile() && a.dev === b.dev && a.ino === b.ino
    } catch {}
    if (same) {
      try {
        ftruncateSync(fd, 0)
        writeSync(fd, `${process.pid}\n`, 0)
      } catch (e) {
        closeSync(fd)
        throw e
      }
      return holding(file, fd, true)
    }
    closeSync(fd)
    return acquireLock(netns, timeoutSec, root)
  }
  const {fd, created} = openLockFile(netns, root)
  let locked = false
  try {
    const addon = flockAddon()
    if (addon) {
      const deadline = Date.now() + timeoutSec * 1000
      for (let wait = 10; ; wait = Math.min(wait * 2, 100)) {
        const r = addon.flock(fd, addon.LOCK_EX | addon.LOCK_NB)
        if (r === 0) {
          locked = true
          break
        }
        if (r !== addon.EWOULDBLOCK) throw new Error(`flock ${file}: errno ${r}`)
        if (Date.now() >= deadline) break
        await sleep(Math.min(wait, Math.max(1, deadline - Date.now())))
      }
    } else {
      locked = (await flock1(fd, timeoutSec)) === 0
    }
    if (!locked) {
      // the pid in the file is the holder's once it has written it: an apply holding the lock while its file
      // parses (preLock) has not yet, and the pid there may be a previous holder's, gone
      const pid = readPid(file)
      const holder = processAlive({pid}) ? `pid ${pid}` : 'pid not written yet: an apply reading its file'
      const e = new LockError(`another tunctl (${holder}) holds ${file}; gave up after ${timeoutSec}s (--lock-timeout)`)
      const why = lockHint?.(netns)
      if (why) e.message += `\n${why}`
      throw e
    }
    ftruncateSync(fd, 0)
    writeSync(fd, `${process.pid}\n`, 0)
  } catch (e) {
    closeSync(fd)
    throw e
  }
  // the lock file missing at the PreLock and made by this call: nobody has held it since
  return holding(file, fd, pre?.state === 'absent' && created)
}

/** Whether someone holds the namespace lock right now (a non-blocking attempt that is given back at once). */
export async function lockHeld(netns: string | undefined, root = runRoot()): Promise<boolean> {
  const file = lockPath(netns, root)
  if (!existsSync(file)) return false
  let fd: number
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch {
    return false
  }
  try {
    const addon = flockAddon()
    if (addon) return addon.flock(fd, addon.LOCK_EX | addon.LOCK_NB) !== 0
    return (await flock1(fd, undefined)) !== 0
  } finally {
    closeSync(fd)
  }
}

/** Runs fn while holding the namespace lock; waits until timeoutSec, then LockError (exit 75). */
export async function withLock<T>(netns: string | undefined, timeoutSec: number, fn: (lock: Lock) => Promise<T>, root = runRoot(), pre?: PreLock): Promise<T> {
  const lock = await acquireLock(netns, timeoutSec, root, pre)
  try {
    return await fn(lock)
  } finally {
    lock.release()
  }
}
