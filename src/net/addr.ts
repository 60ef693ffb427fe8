// Addresses, CIDR prefixes and address families: the one reader of IP text (ipaddr.js underneath) for the spec,
// the drivers, observe and plan, and the one rule for which inner families each mode carries.
import ipaddr from 'ipaddr.js'
import type {Mode} from '../model/types.js'

export type Family = 4 | 6
export type IP = ipaddr.IPv4 | ipaddr.IPv6

export function familyName(f: Family): string {
  return f === 4 ? 'IPv4' : 'IPv6'
}

/** A dotted quad without leading zeros (what ipaddr.js's isValidFourPartDecimal accepts), by one regex: that one
 * parses by throwing on failure, which costs milliseconds per thousand addresses. */
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

export function isIPv4(s: unknown): s is string {
  return typeof s === 'string' && DOTTED_QUAD.test(s)
}

/**
 * IPv6 text with a dotted-quad tail spelled as two hex groups (an optional /len kept): ipaddr.js 2.5 reads the
 * IPv4-compatible form ::a.b.c.d as the IPv4-mapped ::ffff:a.b.c.d, a different address (iproute2 prints the
 * kernel's own ::a.b.c.d/96 on sit devices in exactly that form).
 */
function v6Text(s: string): string {
  return s.replace(/:(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\/\d+)?$/, (m, a, b, c, d, len = '') => {
    const q = [a, b, c, d].map(Number)
    if (q.some((x) => x > 255)) return m
    return `:${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}${len}`
  })
}

export function isIPv6(s: unknown): s is string {
  return typeof s === 'string' && s.includes(':') && !s.includes('%') && ipaddr.IPv6.isValid(v6Text(s))
}

/** A strict IP address (dotted quad for IPv4, no zone for IPv6), or undefined. Every address tunctl reads goes through here. */
export function parseIP(s: unknown): IP | undefined {
  if (isIPv4(s)) return new ipaddr.IPv4(s.split('.').map(Number))
  if (isIPv6(s)) return ipaddr.IPv6.parse(v6Text(s))
  return undefined
}

export function familyOf(a: IP): Family {
  return a.kind() === 'ipv4' ? 4 : 6
}

/** An IP address with its family, or undefined. */
export function parseAddress(s: unknown): {family: Family; addr: IP} | undefined {
  const addr = parseIP(s)
  return addr && {family: familyOf(addr), addr}
}

/** Canonical address text: dotted quad, or RFC 5952 compressed IPv6 (what inet_ntop / iproute2 print). */
export function addrText(a: IP): string {
  return a.kind() === 'ipv6' ? (a as ipaddr.IPv6).toRFC5952String() : a.toString()
}

export interface ParsedCidr {
  family: Family
  addr: IP
  prefix: number
  /** canonical text (RFC 5952 for IPv6), host bits as written */
  text: string
  /** the address alone, canonical */
  address: string
}

/** 'a.b.c.d/len' or 'x::y/len'; a bare address means a host prefix (/32, /128) when allowBare. */
export function parseCidr(s: unknown, allowBare = true): ParsedCidr | undefined {
  if (typeof s !== 'string') return undefined
  const slash = s.indexOf('/')
  const addrPart = slash < 0 ? s : s.slice(0, slash)
  const lenPart = slash < 0 ? undefined : s.slice(slash + 1)
  if (lenPart === undefined && !allowBare) return undefined
  const a = parseAddress(addrPart)
  if (!a) return undefined
  const max = hostPrefix(a.family)
  let prefix = max
  if (lenPart !== undefined) {
    if (!/^\d{1,3}$/.test(lenPart)) return undefined
    prefix = Number(lenPart)
    if (prefix > max) return undefined
  }
  const address = addrText(a.addr)
  return {family: a.family, addr: a.addr, prefix, address, text: `${address}/${prefix}`}
}

/** 32 or 128: the prefix length of a single address. */
export function hostPrefix(f: Family): number {
  return f === 4 ? 32 : 128
}

/** Canonical text of a CIDR with an explicit length (compressed IPv6, host bits kept as written). */
export function canonicalCidr(s: string): string {
  const c = parseCidr(s, false)
  if (!c) throw new Error(`invalid CIDR ${s}`)
  return c.text
}

/** The prefix with its host bits cleared, canonical. */
export function networkOf(c: ParsedCidr): string {
  const bytes = c.addr.toByteArray()
  for (let bit = c.prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7))
  return `${addrText(ipaddr.fromByteArray(bytes))}/${c.prefix}`
}

/** True if the prefix has no bits set beyond its length. */
export function hostBitsZero(c: ParsedCidr): boolean {
  return networkOf(c) === c.text
}

/** The IPv4-compatible ::a.b.c.d/96 the kernel adds to a sit device without a remote (addrconf's sit_add_v4_addrs). */
export function isSitV4Compat(a: ipaddr.IPv6, prefixlen: number): boolean {
  const p = a.parts
  return prefixlen === 96 && p.slice(0, 6).every((x) => x === 0) && (p[6]! !== 0 || p[7]! > 1)
}

/**
 * Inner address families a mode can carry, following the kernel's xmit paths:
 * ipip (ipip.c) sends IPv4 and, with mplsip/any, MPLS — never IPv6; gre any ethertype; vti IPv4 and IPv6
 * (vti_tunnel_xmit handles both); sit IPv6, plus IPv4 with `encapsulated: ipip|any` (ipip alone: IPv4 only);
 * isatap IPv6 only. `why` completes "… cannot be used: " when a family is not carried.
 * The userspace encapsulator applies the same rule (native/inner.h is generated from it, see scripts/gen-inner.mjs).
 */
export function innerFamilies(mode: Mode, encapsulated: unknown): {families: Family[]; why: string} {
  const enc = typeof encapsulated === 'string' ? encapsulated : undefined
  switch (mode) {
    case 'ipip':
      return {families: [4], why: 'an ipip tunnel carries IPv4 (and MPLS) only; use sit or gre for IPv6'}
    case 'gre':
    case 'vti':
      return {families: [4, 6], why: ''}
    case 'isatap':
      return {families: [6], why: 'an isatap tunnel carries IPv6 only'}
    case 'sit':
      if (enc === 'ipip') return {families: [4], why: 'a sit tunnel with "encapsulated: ipip" carries IPv4 only'}
      if (enc === 'any') return {families: [4, 6], why: ''}
      if (enc === 'mplsip') return {families: [4, 6], why: ''}
      return {families: [6], why: 'a sit tunnel carries IPv6 only unless "encapsulated: ipip" or "encapsulated: any"'}
  }
}
