// Helpers shared by every mode driver: value parsing (ttl, tos, keys, CIDRs), common validation, JSON decoding.
import ipaddr from 'ipaddr.js'
import type {Mode, RouteSpec} from '../model/types.js'
import {COMMON_PARAM_KEYS} from '../model/fields.js'
import type {DriverDiagnostic, IpLink, RawTunnelSpec} from './contract.js'

/** Spec keys every mode accepts (the contract's name-independent keys). ttl/tos/pmtudisc are per mode (not vti). */
export const COMMON_KEYS: readonly string[] = ['mode', 'state', ...COMMON_PARAM_KEYS, 'addresses', 'routes', 'driver']


export const TTL_INHERIT = 0
export const TOS_INHERIT = 1

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
export function parseIP(s: unknown): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (isIPv4(s)) return new ipaddr.IPv4(s.split('.').map(Number))
  if (isIPv6(s)) return ipaddr.IPv6.parse(v6Text(s))
  return undefined
}

/** 'any' or an IPv4 dotted quad; 0.0.0.0 is 'any' (the kernel cannot tell them apart). */
export function endpoint(v: unknown): string {
  if (v === undefined || v === null || v === 'any' || v === '0.0.0.0') return 'any'
  return ipaddr.IPv4.parse(String(v)).toString()
}

export function isEndpoint(v: unknown): boolean {
  return v === undefined || v === 'any' || isIPv4(v)
}

/** The IPv4-compatible ::a.b.c.d/96 the kernel adds to a sit device without a remote (addrconf's sit_add_v4_addrs). */
export function isSitV4Compat(a: ipaddr.IPv6, prefixlen: number): boolean {
  const p = a.parts
  return prefixlen === 96 && p.slice(0, 6).every((x) => x === 0) && (p[6]! !== 0 || p[7]! > 1)
}

/** Parse 'a.b.c.d/len' / 'x::/len'; undefined if invalid. Returns address family, address, prefix length. */
export function parseCidr(s: unknown): {family: 4 | 6; addr: ipaddr.IPv4 | ipaddr.IPv6; len: number} | undefined {
  if (typeof s !== 'string') return undefined
  try {
    if (s.includes(':')) {
      const [a, l] = ipaddr.IPv6.parseCIDR(v6Text(s))
      return {family: 6, addr: a, len: l}
    }
    if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s)) return undefined
    const [a, l] = ipaddr.IPv4.parseCIDR(s)
    return {family: 4, addr: a, len: l}
  } catch {
    return undefined
  }
}

/** Canonical text of a CIDR (compressed IPv6, host bits kept as written). */
export function canonicalCidr(s: string): string {
  const c = parseCidr(s)
  if (!c) throw new Error(`invalid CIDR ${s}`)
  return `${addrText(c.addr)}/${c.len}`
}

/** Canonical address text: dotted quad, or RFC 5952 compressed IPv6 (what inet_ntop / iproute2 print). */
export function addrText(a: ipaddr.IPv4 | ipaddr.IPv6): string {
  return a.kind() === 'ipv6' ? (a as ipaddr.IPv6).toRFC5952String() : a.toString()
}

/** True if the address has no bits set beyond the prefix length. */
export function hostBitsZero(s: string): boolean {
  const c = parseCidr(s)
  if (!c) return false
  const bytes = c.addr.toByteArray()
  for (let bit = c.len; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) return false
  }
  return true
}

/** A GRE/VTI key: number 0..2^32-1, a decimal string, or a dotted quad (→ u32 big-endian like iproute2's get_addr32). */
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

/**
 * What the kernel tells tunnels of a namespace apart by (ip_tunnel_lookup / ip_tunnel_find), measured in UML
 * 6.1: the device kind (isatap is a sit device), local, remote and underlay dev, and for gre the input key
 * (key 0 differs from no key); a vti key is only a mark. Two tunnels with the same identity cannot coexist.
 * local/remote: 'any' or a dotted quad.
 */
export function tunnelIdentity(mode: Mode, local: string, remote: string, dev: string | undefined, ikey: number | undefined): string {
  const kind = mode === 'isatap' ? 'sit' : mode
  return [kind, local, remote, dev ?? '', mode === 'gre' ? (ikey ?? 'nokey') : 'nokey'].join('|')
}

export function ttlOf(v: unknown): number {
  return v === undefined || v === 'inherit' ? TTL_INHERIT : Number(v)
}

export function tosOf(v: unknown): number {
  return v === undefined || v === 'inherit' ? TOS_INHERIT : Number(v)
}

/** A `bool | {input, output}` spec value (csum, seq) → both directions. */
export function pairOf(v: unknown): {input: boolean; output: boolean} {
  if (v === undefined || v === null) return {input: false, output: false}
  if (typeof v === 'boolean') return {input: v, output: v}
  if (typeof v !== 'object') return {input: false, output: false}
  const o = v as {input?: boolean; output?: boolean}
  return {input: !!o.input, output: !!o.output}
}

/** Numbers iproute2 prints as "0x2a" strings (tos, fwmark, vti keys); absent = 0. */
export function hexNum(v: unknown): number {
  if (v === undefined || v === null) return 0
  if (typeof v === 'number') return v
  const n = Number(v)
  // an unparsable value (older iproute2 printed vti's fwmark from the wrong buffer) decodes as 0: a visible
  // difference the plan shows, rather than a crash of every command that observes the namespace
  return Number.isFinite(n) ? n : 0
}

/** iproute2 keyword values */
export function ttlWord(ttl: number): string {
  return ttl === TTL_INHERIT ? 'inherit' : String(ttl)
}

/** tos is parsed by iproute2 as hex (rtnl_dsfield_a2n), so always write it with 0x. */
export function tosWord(tos: number): string {
  return tos === TOS_INHERIT ? 'inherit' : '0x' + tos.toString(16)
}

export function isUp(link: IpLink): boolean {
  return Array.isArray(link.flags) && link.flags.includes('UP')
}

export function infoKind(link: IpLink): string | undefined {
  return link?.linkinfo?.info_kind
}

export function infoData(link: IpLink): Record<string, any> {
  return link?.linkinfo?.info_data ?? {}
}

/** The underlay device name from info_data.link (a name, or link_index when iproute2 cannot resolve it). */
export function decodeDev(d: Record<string, any>, byIndex?: Map<number, string>): string | undefined {
  if (typeof d.link === 'string' && d.link !== '') return d.link
  if (typeof d.link_index === 'number' && d.link_index !== 0) return byIndex?.get(d.link_index) ?? `if${d.link_index}`
  return undefined
}

/** Extra context decode may use (observe fills it). */
export interface DecodeContext {
  /** ifindex → name, to resolve an underlay given as an index */
  byIndex?: Map<number, string>
  /** isatap potential router lists by tunnel name (from `ip tunnel show`) */
  prl?: Map<string, {address: string; default: boolean}[]>
}

// ---------- validation ----------

export type Family = 4 | 6

export function diag(pointer: string, message: string): DriverDiagnostic {
  return {pointer, message}
}

/** Minimum mtu per mode (sit/isatap carry IPv6: 1280). */
export function minMtu(mode: Mode): number {
  return mode === 'sit' || mode === 'isatap' ? 1280 : 68
}

/** Maximum mtu: IP_MAX_MTU minus the outer IPv4 header (sit: IP6_MAX_MTU − 20 = 65555; gre also minus its header). */
export function maxMtu(mode: Mode, greHeader = 4): number {
  // the kernel takes up to 65555 here (IP6_MAX_MTU - 20), but the schema caps every mtu at 65535
  if (mode === 'sit' || mode === 'isatap') return 65535
  if (mode === 'gre') return 65535 - 20 - greHeader
  return 65515
}

export interface CommonRules {
  mode: Mode
  /** keys accepted beyond COMMON_KEYS */
  keys: readonly string[]
  /** inner address families the tunnel can carry (for addresses/routes) */
  families: Family[]
  /** largest mtu the kernel keeps (it silently clamps larger values at creation); default maxMtu(mode) */
  maxMtu?: number
}

function familyName(f: Family): string {
  return f === 4 ? 'IPv4' : 'IPv6'
}

/** Checks shared by every mode: keys allowed, endpoints, ttl/pmtudisc, fwmark, mtu, inner address families. */
export function validateCommon(spec: RawTunnelSpec, r: CommonRules): DriverDiagnostic[] {
  const out: DriverDiagnostic[] = []
  const allowed = new Set<string>([...COMMON_KEYS, ...r.keys])
  for (const k of Object.keys(spec)) {
    if (!allowed.has(k)) out.push(diag('/' + escapePointer(k), `'${k}' is not valid for mode ${r.mode}`))
  }
  for (const k of ['local', 'remote'] as const) {
    if (spec[k] !== undefined && !isEndpoint(spec[k])) out.push(diag('/' + k, `${k} must be an IPv4 address or 'any'`))
  }
  if (allowed.has('ttl') && spec.ttl !== undefined) {
    const t = spec.ttl
    if (t !== 'inherit' && !(Number.isInteger(t) && t >= 1 && t <= 255)) out.push(diag('/ttl', `ttl must be 1..255 or 'inherit'`))
    else if (t !== 'inherit' && spec.pmtudisc === false) {
      out.push(diag('/ttl', `a fixed ttl needs pmtudisc: true (the kernel refuses ttl ${t} with nopmtudisc); use ttl: inherit or drop pmtudisc: false`))
    }
  }
  if (allowed.has('tos') && spec.tos !== undefined) {
    const t = spec.tos
    if (t !== 'inherit' && !(Number.isInteger(t) && t >= 0 && t <= 255)) out.push(diag('/tos', `tos must be 0..255 or 'inherit'`))
  }
  if (allowed.has('pmtudisc') && spec.pmtudisc !== undefined && typeof spec.pmtudisc !== 'boolean') {
    out.push(diag('/pmtudisc', 'pmtudisc must be true or false'))
  }
  if (spec.fwmark !== undefined && !(Number.isInteger(spec.fwmark) && spec.fwmark >= 0 && spec.fwmark <= 0xffffffff)) {
    out.push(diag('/fwmark', 'fwmark must be an integer 0..4294967295'))
  }
  if (spec.mtu !== undefined) {
    const min = minMtu(r.mode)
    const max = r.maxMtu ?? maxMtu(r.mode)
    if (!(Number.isInteger(spec.mtu) && spec.mtu >= min && spec.mtu <= max)) {
      out.push(diag('/mtu', `mtu must be ${min}..${max} for mode ${r.mode}${min === 1280 ? ' (it carries IPv6)' : ''}`))
    }
  }
  if (spec.dev !== undefined && (typeof spec.dev !== 'string' || !/^[^\s/:]{1,15}$/.test(spec.dev))) {
    out.push(diag('/dev', 'dev must be an interface name (1-15 chars, no whitespace, / or :)'))
  }
  const fams = r.families
  const famText = fams.map(familyName).join(' or ')
  if (Array.isArray(spec.addresses)) {
    spec.addresses.forEach((a: unknown, i: number) => {
      const c = parseCidr(a)
      if (!c) out.push(diag(`/addresses/${i}`, `${String(a)} is not an address with prefix length (CIDR)`))
      else if (!fams.includes(c.family)) out.push(diag(`/addresses/${i}`, `mode ${r.mode} carries ${famText} only; ${String(a)} is ${familyName(c.family)}`))
    })
  }
  if (Array.isArray(spec.routes)) {
    spec.routes.forEach((rt: any, i: number) => {
      if (!rt || typeof rt !== 'object') return
      let fam: Family | undefined
      if (rt.to === 'default') fam = rt.via && isIPv6(rt.via) ? 6 : rt.via && isIPv4(rt.via) ? 4 : undefined
      else {
        const c = parseCidr(rt.to)
        if (!c) out.push(diag(`/routes/${i}/to`, `${String(rt.to)} is not a CIDR or 'default'`))
        else fam = c.family
      }
      if (fam && !fams.includes(fam)) out.push(diag(`/routes/${i}/to`, `mode ${r.mode} carries ${famText} only; route to ${String(rt.to)} is ${familyName(fam)}`))
      if (rt.via !== undefined) {
        const vf: Family | undefined = isIPv4(rt.via) ? 4 : isIPv6(rt.via) ? 6 : undefined
        if (!vf) out.push(diag(`/routes/${i}/via`, `${String(rt.via)} is not an IP address`))
        else if (fam && vf !== fam) out.push(diag(`/routes/${i}/via`, `via ${String(rt.via)} is ${familyName(vf)} but the route is ${familyName(fam)}`))
        else if (!fams.includes(vf)) out.push(diag(`/routes/${i}/via`, `mode ${r.mode} carries ${famText} only; via ${String(rt.via)} is ${familyName(vf)}`))
      }
    })
  }
  return out
}

export function escapePointer(k: string): string {
  return k.replace(/~/g, '~0').replace(/\//g, '~1')
}

/** Keys (key / input-key / output-key) checks shared by gre and vti. Returns diagnostics. */
export function validateKeys(spec: RawTunnelSpec): DriverDiagnostic[] {
  const out: DriverDiagnostic[] = []
  if (spec.key !== undefined && (spec['input-key'] !== undefined || spec['output-key'] !== undefined)) {
    out.push(diag('/key', "use either key or input-key/output-key, not both"))
  }
  for (const k of ['key', 'input-key', 'output-key']) {
    if (spec[k] !== undefined && parseKey(spec[k]) === undefined) {
      out.push(diag('/' + k, `${k} must be a number 0..4294967295 or a dotted quad (e.g. 0.0.0.42)`))
    }
  }
  return out
}

/** Normalized keys: key → both; undefined = no key in that direction. */
export function keysOf(spec: RawTunnelSpec): {ikey?: number; okey?: number} {
  if (spec.key !== undefined) {
    const k = parseKey(spec.key)
    return {ikey: k, okey: k}
  }
  return {ikey: parseKey(spec['input-key']), okey: parseKey(spec['output-key'])}
}

/** Route spec equality helper for observe (kept here so drivers/observe agree on canonical forms). */
export function routeKey(r: RouteSpec): string {
  return `${r.table}|${r.to}|${r.via ?? ''}|${r.metric ?? ''}`
}

/** Push `[kw, value]` when value is defined. */
export function opt(out: string[], kw: string, v: string | undefined): void {
  if (v !== undefined) out.push(kw, v)
}
