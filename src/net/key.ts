// GRE/VTI keys: what the spec accepts, what iproute2 prints, and key / input-key / output-key → ikey/okey.

/** A GRE/VTI key: number 0..2^32-1, a decimal or 0x string, or a dotted quad (→ u32 big-endian like iproute2's get_addr32). */
export function parseKey(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : undefined
  if (typeof v !== 'string') return undefined
  const s = v.trim()
  if (/^\d+\.\d+\.\d+\.\d+$/.test(s)) {
    const parts = s.split('.').map(Number)
    if (parts.some((p) => p > 255)) return undefined
    return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0
  }
  if (/^(0x[0-9a-f]+|\d+)$/i.test(s)) {
    const n = Number(s)
    return n <= 0xffffffff ? n : undefined
  }
  return undefined
}

/** Key as iproute2 prints it (gre, and vti in 6.1: dotted quad of the big-endian u32; older vti: "0x2a") → number. */
export function keyFromDottedQuad(s: string): number {
  const n = parseKey(s)
  if (n === undefined) throw new Error(`bad key ${s}`)
  return n
}

/** A printed key or absent → number | undefined. */
export function printedKey(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'number') return v
  return keyFromDottedQuad(String(v))
}

/** Normalized keys of a spec entry: key → both; undefined = no key in that direction. */
export function keysOf(spec: Record<string, unknown>): {ikey?: number; okey?: number} {
  if (spec.key !== undefined) {
    const k = parseKey(spec.key)
    return {ikey: k, okey: k}
  }
  return {ikey: parseKey(spec['input-key']), okey: parseKey(spec['output-key'])}
}
