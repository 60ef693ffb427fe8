// Key material's only home: a side table keyed by the (key-free) IpsecParams object it belongs to. Nothing that
// serialises, renders or logs an IpsecParams can reach the keys; only xfrm.ts's stdin batch writes them out.
import {createHash} from 'node:crypto'

/** Key-file name (out, in, out-enc, out-auth, in-enc, in-auth) → key bytes. */
export type KeyMaterial = Record<string, Buffer>

const TABLE = new WeakMap<object, KeyMaterial>()

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
}

/** Whether two blocks hold the same keys (compared here, never shown); undefined when either side's are unknown. */
export function sameKeys(a: object | undefined, b: object | undefined): boolean | undefined {
  const ka = getKeys(a)
  const kb = getKeys(b)
  if (!ka || !kb) return undefined
  return digest(ka) === digest(kb)
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
