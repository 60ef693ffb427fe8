// tunctl's run directory and the one way files are written there.
//
// Layout (man tunctl(8), FILES): /run/tunctl (0700)
//   host/          the root network namespace (the one without --netns)
//   ns/NAME/       the network namespace NAME (`ip netns` name), so a namespace literally named "default" or
//                  "host" never shares the root namespace's directory
// Every directory is 0700 and every file 0600, whatever the umask. Files are written to a fresh temporary file
// (O_CREAT|O_EXCL|O_NOFOLLOW: never through a symlink or into a file someone else made) and renamed over the
// target (atomic; rename replaces a symlink at the target instead of following it).
// Before this layout, state lived in /run/tunctl/<netns|default>/ (legacyRunDir); readers still look there.
import {randomBytes} from 'node:crypto'
import {chmodSync, closeSync, constants, existsSync, fchmodSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {PermissionError, TunctlError} from './errors.js'

/**
 * tunctl's own files in a run dir whose names end in `.json`, like a tunnel's files (src/userspace/paths.ts
 * tunnelFileOf: an older release's `<name>.json` state files and the counters `<name>.stats.json`): the apply
 * journal (src/lib/journal.ts), the outcome of an `apply --confirm` (src/execute/confirm.ts), vti ipsec's key-file
 * references (src/ipsec/record.ts). Every other file of tunctl's there is a dot file or has no `.json` suffix.
 */
export const RUN_DIR_FILES = {journal: 'journal.json', confirmResult: 'confirm-result.json', keyFileRecords: 'ipsec-keyfiles.json'} as const

/** /run/tunctl, or $TUNCTL_RUN_DIR (read at each call: tests point it elsewhere before they run). */
export function runRoot(): string {
  return process.env.TUNCTL_RUN_DIR ?? '/run/tunctl'
}

/** The directory of a network namespace's state (root namespace: `host`; others: `ns/NAME`). */
export function runDir(netns?: string, root = runRoot()): string {
  return netns ? join(root, 'ns', netns) : join(root, 'host')
}

/** Where releases before the `host` / `ns/NAME` layout kept a namespace's state (ambiguous for a netns "default"). */
export function legacyRunDir(netns?: string, root = runRoot()): string {
  return join(root, netns || 'default')
}

const DIR_MODE = 0o700
const FILE_MODE = 0o600

function permissionProblem(e: any, what: string): Error {
  if (e?.code === 'EACCES' || e?.code === 'EPERM' || e?.code === 'EROFS') return new PermissionError(`cannot create ${what}: ${e.message} (tunctl needs root)`)
  return e
}

/** One directory, created 0700 or checked: a real directory (not a symlink) of ours, made 0700 if it is not. */
function ensureDir(d: string): void {
  try {
    mkdirSync(d, {mode: DIR_MODE})
  } catch (e: any) {
    if (e?.code !== 'EEXIST') throw permissionProblem(e, d)
  }
  const st = lstatSync(d)
  if (!st.isDirectory()) throw new TunctlError(`${d} is not a directory (${st.isSymbolicLink() ? 'a symbolic link' : 'a file'}); tunctl refuses to keep its state there`)
  const uid = process.getuid?.()
  if (uid !== undefined && st.uid !== uid) throw new TunctlError(`${d} belongs to uid ${st.uid}, not to this user (uid ${uid}); tunctl refuses to keep its state there`)
  if ((st.mode & 0o7777) !== DIR_MODE) chmodSync(d, DIR_MODE)
}

/** runDir(netns), created with its parents (each 0700, none a symlink); returns it. */
export function ensureRunDir(netns?: string, root = runRoot()): string {
  const dir = runDir(netns, root)
  for (const d of netns ? [root, join(root, 'ns'), dir] : [root, dir]) ensureDir(d)
  return dir
}

/** Removes `path` if it is there (a file already gone, or never made, is no error). */
export function removeQuiet(path: string): void {
  try {
    unlinkSync(path)
  } catch {}
}

/**
 * Writes `data` to `path` atomically, 0600: a new temporary file beside it (O_EXCL|O_NOFOLLOW), fsync, rename.
 * Objects are written as JSON. A reader sees the old content or the new, never a part, and no symlink is followed.
 * `sync: false` leaves out the fsync: for files nothing relies on after a crash (the engine's counters).
 */
export function writeAtomic(path: string, data: unknown, mode = FILE_MODE, opts: {sync?: boolean} = {}): void {
  const bytes = typeof data === 'string' || data instanceof Uint8Array ? data : JSON.stringify(data, null, 2) + '\n'
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
  try {
    const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes
    let off = 0
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off)
    fchmodSync(fd, mode) // whatever the umask
    if (opts.sync !== false) fsyncSync(fd)
  } catch (e) {
    closeSync(fd)
    removeQuiet(tmp)
    throw e
  }
  closeSync(fd)
  try {
    renameSync(tmp, path)
  } catch (e) {
    removeQuiet(tmp)
    throw e
  }
}

/**
 * Removes writeAtomic's temporary files (`.FILE.PID.RAND.tmp`) in `dir` left by a writer that died between its write
 * and its rename: those whose writer process is gone, or, with `of`, every one of those files (their writer is known
 * to be done with them).
 */
export function removeTempFiles(dir: string, opts: {of?: string[]} = {}): void {
  let files: string[]
  try {
    files = readdirSync(dir)
  } catch {
    return
  }
  const of = opts.of ? new Set(opts.of) : undefined
  for (const f of files) {
    const m = /^\.(.+)\.(\d+)\.[0-9a-f]+\.tmp$/.exec(f)
    if (!m) continue
    if (of ? !of.has(m[1]!) : existsSync(`/proc/${m[2]}`)) continue
    removeQuiet(join(dir, f))
  }
}

/** Opens `path` for appending (a log), created 0600, never through a symlink. Returns the fd. */
export function openAppend(path: string, mode = FILE_MODE): number {
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, mode)
  try {
    fchmodSync(fd, mode)
  } catch {}
  return fd
}

const warned = new Set<string>()

/** A warning on stderr, once per key per process (e.g. a corrupt state file that is ignored). */
export function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return
  warned.add(key)
  process.stderr.write(`tunctl: warning: ${message}\n`)
}
