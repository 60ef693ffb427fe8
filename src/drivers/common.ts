// Pieces shared by every mode driver: ttl/tos words, common validation, JSON decoding, replace reasons, update lines.
// Addresses, endpoints and keys are src/net/'s.
import type {Mode, TunnelParams} from '../model/types.js'
import {COMMON_PARAM_KEYS, LINK_FIELDS} from '../model/fields.js'
import {isEndpoint} from '../net/endpoint.js'
import {parseKey} from '../net/key.js'
import type {DriverDiagnostic, IpLink, RawTunnelSpec} from './contract.js'

export {keysOf} from '../net/key.js' // src/ipsec/spec.ts reads vti keys through here

/** Spec keys every mode accepts (the contract's name-independent keys). ttl/tos/pmtudisc are per mode (not vti). */
export const COMMON_KEYS: readonly string[] = ['mode', 'state', ...COMMON_PARAM_KEYS, 'addresses', 'routes', 'driver']


export const TTL_INHERIT = 0
export const TOS_INHERIT = 1

/**
 * What the kernel tells tunnels of a namespace apart by (ip_tunnel_lookup / ip_tunnel_find), measured in UML
 * 6.1: the device kind (isatap is a sit device), local, remote and underlay dev, and for gre the input key
 * (key 0 differs from no key); a vti key is only a mark. Two tunnels with the same identity cannot coexist.
 * local/remote: 'any' or a dotted quad.
 */
export function tunnelIdentity(mode: Mode, local: string, remote: string, dev: string | undefined, ikey: number | undefined): string {
  const kind = mode === 'isatap' ? 'sit' : mode
  return `${kind}|${local}|${remote}|${dev ?? ''}|${mode === 'gre' ? (ikey ?? 'nokey') : 'nokey'}`
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

// ---------- validation ----------

export function diag(pointer: string, message: string): DriverDiagnostic {
  return {pointer, message}
}

/**
 * IPv6's least link MTU (IPV6_MIN_MTU): the kernel keeps no IPv6 state on a device below it (addrconf), so it
 * refuses IPv6 addresses ("Invalid argument") and routes ("No such device") there, and a sit device's min_mtu is it.
 */
export const IPV6_MIN_MTU = 1280

/**
 * Minimum mtu per mode (sit/isatap: IPV6_MIN_MTU, the kernel's min_mtu of a sit device; the others 68); with
 * `ipv6` (the tunnel has IPv6 addresses or routes) at least IPV6_MIN_MTU in every mode.
 */
export function minMtu(mode: Mode, ipv6 = false): number {
  return mode === 'sit' || mode === 'isatap' || ipv6 ? IPV6_MIN_MTU : 68
}

/** Maximum mtu: IP_MAX_MTU minus the outer IPv4 header (sit: IP6_MAX_MTU − 20 = 65555; gre also minus its header). */
export function maxMtu(mode: Mode, greHeader = 4): number {
  // the kernel takes up to 65555 here (IP6_MAX_MTU - 20), but the schema caps every mtu at 65535
  if (mode === 'sit' || mode === 'isatap') return 65535
  if (mode === 'gre') return 65535 - 20 - greHeader
  return 65515
}

/** the keys a mode accepts, per CommonRules.keys (one set per mode, not one per tunnel checked) */
const allowedKeys = new WeakMap<readonly string[], Set<string>>()

export interface CommonRules {
  mode: Mode
  /** keys accepted beyond COMMON_KEYS */
  keys: readonly string[]
  /** largest mtu the kernel keeps (it silently clamps larger values at creation); default maxMtu(mode) */
  maxMtu?: number
}

/**
 * Checks of the common keys: keys allowed, endpoints, ttl/tos/pmtudisc, fwmark, mtu. dev (an interface name),
 * addresses and routes (CIDRs, the families the mode carries: innerFamilies) are checked once, by src/spec/semantic.ts.
 */
export function validateCommon(spec: RawTunnelSpec, r: CommonRules): DriverDiagnostic[] {
  const out: DriverDiagnostic[] = []
  let allowed = allowedKeys.get(r.keys)
  if (!allowed) allowedKeys.set(r.keys, (allowed = new Set<string>([...COMMON_KEYS, ...r.keys])))
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
      out.push(diag('/mtu', `mtu must be ${min}..${max} for mode ${r.mode}${min === IPV6_MIN_MTU ? ' (it carries IPv6)' : ''}`))
    }
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


/**
 * The object without its undefined-valued keys (the others in their order), so canonical params compare with deep
 * equality. A copy: an object that loses properties by `delete` becomes a slow dictionary-mode object in V8.
 */
export function clean<T extends object>(o: T): T {
  const out = {} as T
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k]
  return out
}

/** Replace reasons every ip_tunnel-based mode shares (ipip, sit, isatap, gre, vti). */
export function commonReplaceReason(from: TunnelParams, to: TunnelParams): string | undefined {
  if (from.mode !== to.mode) return `mode ${from.mode} → ${to.mode} cannot change in place`
  if ((from.remote === 'any') !== (to.remote === 'any')) {
    return `remote ${from.remote} → ${to.remote}: remote any ↔ address changes the device type (NOARP vs POINTOPOINT); the kernel refuses it in place`
  }
  if (from.dev !== undefined && to.dev === undefined) {
    return `dev ${from.dev} → none: iproute2 cannot unset the underlay device in place (ip link set keeps the existing one)`
  }
  return undefined
}

export function linkFieldsDiffer(a: TunnelParams, b: TunnelParams): boolean {
  return LINK_FIELDS.some((k) => a[k] !== b[k])
}

/**
 * Update lines: one `link set dev NAME [mtu N] type KIND <all params of to>` when any link field differs
 * (mtu goes in the same request so the kernel does not recompute it when dev/fwmark/header size change),
 * else just `link set dev NAME mtu N` when only the mtu differs; then `extra` lines.
 */
export function encodeUpdateLines(
  name: string,
  kind: string,
  from: TunnelParams,
  to: TunnelParams,
  params: () => string[],
  extra: string[][],
): string[][] {
  const lines: string[][] = []
  if (linkFieldsDiffer(from, to)) {
    const head = ['link', 'set', 'dev', name]
    if (to.mtu !== undefined) head.push('mtu', String(to.mtu))
    lines.push([...head, 'type', kind, ...params()])
  } else if (to.mtu !== undefined && to.mtu !== from.mtu) {
    lines.push(['link', 'set', 'dev', name, 'mtu', String(to.mtu)])
  }
  return [...lines, ...extra]
}
