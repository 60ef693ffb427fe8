// Key material's only home: a side table keyed by the (key-free) IpsecParams object it belongs to. Nothing that
// serialises, renders or logs an IpsecParams can reach the keys; only xfrm.ts's stdin batch writes them out.
import {createHash} from 'node:crypto'

/** Key-file name (out, in, out-enc, out-auth, in-enc, in-auth) → key bytes. */
export type KeyMaterial = Record<string, Buffer>

const TABLE = new WeakMap<object, KeyMaterial>()
/** an observed block whose keys are not readable (a userspace vti: its daemon holds them) → their fingerprint */
const FINGERPRINTS = new WeakMap<object, string>()
/** a desired block → the absolute path of the key file it was read from (the userspace daemon reads it again) */
const PATHS = new WeakMap<object, string>()

export function setKeys(owner: object, keys: KeyMaterial): void {
  TABLE.set(owner, keys)
}

export function getKeys(owner: object | undefined): KeyMaterial | undefined {
  return owner ? TABLE.get(owner) : undefined
}

/** Copies the keys of `from` to `to` (a copy of an IpsecParams keeps its keys). */
export function copyKeys(from: object | undefined, to: object): void {
  const k = getKeys(from)
  if (k) TABLE.set(to, k)
  const p = getKeyPath(from)
  if (p) PATHS.set(to, p)
  const f = from ? FINGERPRINTS.get(from) : undefined
  if (f) FINGERPRINTS.set(to, f)
}

/** Whether two blocks hold the same keys (compared here, never shown); undefined when either side's are unknown.
 * A block known only by its fingerprint (a userspace vti, observed from its state file) compares by fingerprint. */
export function sameKeys(a: object | undefined, b: object | undefined): boolean | undefined {
  const ka = getKeys(a)
  const kb = getKeys(b)
  if (ka && kb) return digest(ka) === digest(kb)
  const fa = ka ? keyFingerprint(ka) : a ? FINGERPRINTS.get(a) : undefined
  const fb = kb ? keyFingerprint(kb) : b ? FINGERPRINTS.get(b) : undefined
  return fa && fb ? fa === fb : undefined
}

/**
 * The userspace vti's key fingerprint: what its state file records instead of the keys, so that `plan` sees a
 * changed key file without the keys ever leaving the daemon. SHA-256 over a fixed label and the keys (names and
 * bytes, sorted), first 128 bits in hex: the keys are random and at least 128 bits, so it cannot be inverted or
 * guessed, and it is computed the same way by the CLI (from the key file it read) and the daemon.
 */
export function keyFingerprint(k: KeyMaterial): string {
  return 'sha256:' + createHash('sha256').update('tunctl esp key fingerprint v1\0').update(digest(k)).digest('hex').slice(0, 32)
}

export function setFingerprint(owner: object, fp: string): void {
  FINGERPRINTS.set(owner, fp)
}

export function getFingerprint(owner: object | undefined): string | undefined {
  return owner ? FINGERPRINTS.get(owner) : undefined
}

export function setKeyPath(owner: object, path: string): void {
  PATHS.set(owner, path)
}

/** the absolute key-file path a desired block's keys were read from */
export function getKeyPath(owner: object | undefined): string | undefined {
  return owner ? PATHS.get(owner) : undefined
}

function digest(k: KeyMaterial): string {
  const h = createHash('sha256')
  for (const n of Object.keys(k).sort()) h.update(n).update('\0').update(k[n]!).update('\0')
  return h.digest('hex')
}

/** Every hex rendering of the keys (for redaction: a text that contains none of them is safe to print). */
export function keyHexes(k: KeyMaterial | undefined): string[] {
  return k ? Object.values(k).map((b) => b.toString('hex')) : []
}
