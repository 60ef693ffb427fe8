// Checks that need more than the schema: interface names, CIDRs, address families per mode, routes and tables,
// uniqueness across the file; then per-mode driver checks and normalisation into DesiredTunnel.
import ipaddr from 'ipaddr.js'
import {addrText, isSitV4Compat, parseIP, tunnelIdentity} from '../drivers/common.js'
import type {ModeDriver, RawTunnelSpec} from '../drivers/contract.js'
import {MODES, type DesiredTunnel, type DriverChoice, type Mode, type RouteSpec} from '../model/types.js'
import {interfaceNameProblem} from '../lib/names.js'
import {visible} from '../lib/text.js'
import {BUILTIN_TABLES, hostRtTables, readRtTables} from '../lib/rttables.js'
import {joinPointer, splitPointer} from './pointer.js'
import type {RawDiagnostic} from './schema.js'
import {hex32, normalizeIpsec, saIdentities} from '../ipsec/spec.js'

export type Family = 4 | 6

export interface SemanticOptions {
  drivers: Record<Mode, ModeDriver>
  /** routing table names → numbers; default: main/local/default plus /etc/iproute2/rt_tables (+ rt_tables.d) */
  rtTables?: Map<string, number>
}

/** Names the kernel gives its per-namespace fallback devices; `ip link add` with one of them fails. */
export const RESERVED_NAMES: Record<string, string> = {
  tunl0: 'ipip',
  gre0: 'ip_gre',
  gretap0: 'ip_gre',
  erspan0: 'ip_gre',
  sit0: 'sit',
  ip_vti0: 'ip_vti',
  ip6tnl0: 'ip6_tunnel',
  ip6gre0: 'ip6_gre',
  ip6_vti0: 'ip6_vti',
}

const FALLBACK_BY_KIND: Record<string, string> = {ipip: 'tunl0', gre: 'gre0', sit: 'sit0', vti: 'ip_vti0'}

export {IFNAMSIZ_MAX, interfaceNameProblem} from '../lib/names.js'

// ---------- addresses ----------

export interface ParsedCidr {
  family: Family
  addr: ipaddr.IPv4 | ipaddr.IPv6
  prefix: number
  /** canonical text (RFC 5952 for IPv6), host bits as written */
  text: string
  /** the address alone, canonical */
  address: string
}

/** An IP address (strict: dotted quad for IPv4, no zone for IPv6), or undefined. */
export function parseAddress(s: unknown): {family: Family; addr: ipaddr.IPv4 | ipaddr.IPv6} | undefined {
  const addr = parseIP(s)
  return addr && {family: addr.kind() === 'ipv4' ? 4 : 6, addr}
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
  const max = a.family === 4 ? 32 : 128
  let prefix = max
  if (lenPart !== undefined) {
    if (!/^\d{1,3}$/.test(lenPart)) return undefined
    prefix = Number(lenPart)
    if (prefix > max) return undefined
  }
  const address = addrText(a.addr)
  return {family: a.family, addr: a.addr, prefix, address, text: `${address}/${prefix}`}
}

export function networkOf(c: ParsedCidr): string {
  const bytes = c.addr.toByteArray()
  for (let bit = c.prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7))
  return `${addrText(ipaddr.fromByteArray(bytes))}/${c.prefix}`
}

const famName = (f: Family) => (f === 4 ? 'IPv4' : 'IPv6')

/**
 * Inner address families a mode can carry, following the kernel's xmit paths:
 * ipip (ipip.c) sends IPv4 and, with mplsip/any, MPLS — never IPv6; gre any ethertype; vti IPv4 and IPv6
 * (vti_tunnel_xmit handles both); sit IPv6, plus IPv4 with `encapsulated: ipip|any` (ipip alone: IPv4 only);
 * isatap IPv6 only.
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

// ---------- routing tables ----------

export {BUILTIN_TABLES, RT_TABLES_FILES, parseRtTables} from '../lib/rttables.js'
/** main/local/default plus the names in the host's rt_tables files (the same reading observe uses). */
export const defaultRtTables = (files?: string[]): Map<string, number> => (files ? readRtTables(files) : hostRtTables())

// ---------- the checks ----------

const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v)

interface RouteCheck {
  route: RouteSpec
  index: number
}

/**
 * Common semantic checks over the whole (parsed) document. A tunnel with schema errors is still checked
 * (by its driver too) without the keys the schema rejected, so all errors are reported at once; it is never
 * normalised.
 */
export function checkTunnels(
  data: unknown,
  schemaDiags: RawDiagnostic[],
  opts: SemanticOptions,
): {diagnostics: RawDiagnostic[]; tunnels: DesiredTunnel[]} {
  const diags: RawDiagnostic[] = []
  const tunnels: DesiredTunnel[] = []
  if (!isObject(data) || !isObject(data.tunnels)) return {diagnostics: diags, tunnels}
  const rtTables = new Map([...(opts.rtTables ?? defaultRtTables()), ...BUILTIN_TABLES])

  const identities = new Map<string, {name: string; mode: Mode}>() // identity → first tunnel
  const addressOwner = new Map<string, {tunnel: string; text: string}>() // address → first tunnel
  const routeOwner = new Map<string, string>() // table|to|metric → first tunnel
  const saOwner = new Map<string, string>() // dst|spi of an ipsec SA → first tunnel

  for (const name of Object.keys(data.tunnels)) {
    const ptr = joinPointer('tunnels', name)
    const entry = data.tunnels[name]
    const before = diags.length
    const push = (rel: string, message: string, target: RawDiagnostic['target'] = 'value') =>
      diags.push({pointer: ptr + rel, message: `tunnel "${visible(name)}": ${message}`, target})

    const nameProblem = interfaceNameProblem(name, 'tunnel name')
    if (nameProblem) diags.push({pointer: ptr, target: 'key', message: nameProblem})
    else if (Object.hasOwn(RESERVED_NAMES, name)) {
      diags.push({pointer: ptr, target: 'key', message: `tunnel name "${name}" is reserved: the kernel's ${RESERVED_NAMES[name]} module creates it as its fallback device`})
    }
    if (!isObject(entry)) continue
    // the entry's keys the schema rejected (the tunnel schema has no combinators: each error names a key or deeper)
    const badKeys = new Set(
      schemaDiags.filter((d) => d.pointer === ptr || d.pointer.startsWith(ptr + '/')).map((d) => splitPointer(d.pointer)[2] ?? ''),
    )
    const schemaBad = badKeys.size > 0
    // what the driver and identity checks see: the entry without those keys, so every other error is still reported
    const valid: Record<string, any> = Object.fromEntries(Object.entries(entry).filter(([k]) => !badKeys.has(k)))
    const mode: Mode | undefined = (MODES as readonly string[]).includes(valid.mode) ? valid.mode : undefined
    const present = entry.state !== 'absent'

    if (typeof entry.dev === 'string' && entry.dev !== '') {
      const p = interfaceNameProblem(entry.dev, 'dev')
      if (p) push('/dev', p)
      else if (entry.dev === name) push('/dev', `dev "${entry.dev}" is the tunnel itself; dev names the underlay device`)
    }

    const fam = mode ? innerFamilies(mode, entry.encapsulated) : undefined

    // addresses
    const addresses: string[] = []
    const prefixRoutes = new Map<string, string>() // key of the route the kernel makes for an address → the address
    const seenHere = new Map<string, number>()
    if (Array.isArray(entry.addresses)) {
      entry.addresses.forEach((a: unknown, i: number) => {
        if (typeof a !== 'string') return // schema reported it
        const c = parseCidr(a, false)
        const rel = `/addresses/${i}`
        if (!c) {
          const bare = parseCidr(a, true)
          if (bare) return push(rel, `address "${a}" needs a prefix length (e.g. ${bare.text})`)
          return push(rel, `address "${a}" is not a valid IPv4 or IPv6 address with prefix length (CIDR)`)
        }
        if (fam && !fam.families.includes(c.family)) return push(rel, `${famName(c.family)} address ${c.text} cannot be used: ${fam.why}`)
        if ((mode === 'sit' || mode === 'isatap') && c.family === 6 && isSitV4Compat(c.addr as ipaddr.IPv6, c.prefix)) {
          return push(rel, `${c.text} is an IPv4-compatible address: the kernel adds those to sit devices itself (for remote any), so tunctl does not manage them`)
        }
        if (seenHere.has(c.address)) return push(rel, `address ${c.address} is listed twice`)
        seenHere.set(c.address, i)
        addresses.push(c.text)
        // the kernel adds a prefix route for it (not for a host address): main table, metric 0 (IPv4) / 256 (IPv6)
        if (c.prefix < (c.family === 4 ? 32 : 128)) prefixRoutes.set(`254|${networkOf(c)}|${c.family === 4 ? 0 : 256}`, c.text)
        if (present) {
          const other = addressOwner.get(c.address)
          if (other) push(rel, `address ${c.address} is also assigned to tunnel "${other.tunnel}"`)
          else addressOwner.set(c.address, {tunnel: name, text: c.text})
        }
      })
    }

    // routes
    const routes: RouteCheck[] = []
    if (Array.isArray(entry.routes)) {
      entry.routes.forEach((r: unknown, i: number) => {
        if (!isObject(r)) return
        const rel = `/routes/${i}`
        let ok = true
        let family: Family | undefined
        let to: string | undefined
        const via = r.via === undefined ? undefined : parseAddress(r.via)
        if (r.via !== undefined && typeof r.via === 'string' && !via) {
          push(rel + '/via', `via "${r.via}" is not an IP address`)
          ok = false
        }
        if (r.to === 'default') {
          family = via?.family ?? (fam && fam.families.length === 1 ? fam.families[0] : undefined)
          if (!family) {
            const fams = new Set(addresses.map((a) => (a.includes(':') ? 6 : 4) as Family))
            if (fams.size === 1) family = [...fams][0]
          }
          if (!family) {
            push(rel + '/to', 'cannot tell whether "default" means 0.0.0.0/0 or ::/0; add "via" or write the prefix')
            ok = false
          } else to = family === 4 ? '0.0.0.0/0' : '::/0'
        } else if (typeof r.to === 'string') {
          const c = parseCidr(r.to, false)
          const bare = c ? undefined : parseCidr(r.to, true)
          if (bare) {
            push(rel + '/to', `route destination "${r.to}" needs a prefix length (e.g. ${bare.text})`)
            ok = false
          } else if (!c) {
            push(rel + '/to', `route destination "${r.to}" is not a CIDR prefix or "default"`)
            ok = false
          } else {
            family = c.family
            const net = networkOf(c)
            if (net !== c.text) {
              push(rel + '/to', `route destination ${c.text} has host bits set (did you mean ${net}?)`)
              ok = false
            }
            to = net
          }
        } else ok = false
        if (family && fam && !fam.families.includes(family)) {
          push(rel + '/to', `${famName(family)} route to ${to ?? r.to} cannot be used: ${fam.why}`)
          ok = false
        } else if (family && via && via.family !== family) {
          push(rel + '/via', `via ${addrText(via.addr)} is ${famName(via.family)} but the route to ${to} is ${famName(family)}`)
          ok = false
        }
        let table = 254
        if (typeof r.table === 'number') table = r.table
        else if (typeof r.table === 'string') {
          const t = /^\d+$/.test(r.table) ? Number(r.table) : rtTables.get(r.table)
          if (t === undefined) {
            const builtin = BUILTIN_TABLES.map(([k]) => k)
            const others = [...rtTables].filter(([k, v]) => v > 0 && !builtin.includes(k)).map(([k]) => k).sort()
            const known = [...builtin, ...others]
            push(rel + '/table', `unknown routing table "${r.table}" (known: ${known.join(', ')}; or use a number 1..4294967295)`)
            ok = false
          } else if (t < 1 || t > 0xffffffff) {
            push(rel + '/table', `table must be 1..4294967295`)
            ok = false
          } else table = t
        }
        if (!ok || !to) return
        const route: RouteSpec = {to, table}
        if (via) route.via = addrText(via.addr)
        if (typeof r.metric === 'number') route.metric = r.metric
        const metric = route.metric ?? (family === 6 ? 1024 : 0)
        const rkey = `${table}|${to}|${metric}`
        const dup = routes.find((x) => `${x.route.table}|${x.route.to}|${x.route.metric ?? (x.route.to.includes(':') ? 1024 : 0)}` === rkey)
        if (dup) return push(rel, `route to ${to} (table ${table}, metric ${metric}) is listed twice`)
        const connected = prefixRoutes.get(rkey)
        if (connected) {
          // `route add` would find the kernel's own route there (tunctl never replaces a route it did not make)
          return push(rel, `route to ${to} (table main, metric ${metric}) is the prefix route the kernel adds for address ${connected}; leave it out, or give it another metric`)
        }
        if (present) {
          const other = routeOwner.get(rkey)
          if (other) push(rel, `route to ${to} (table ${table}, metric ${metric}) is also defined in tunnel "${other}"; the kernel keeps one`)
          else routeOwner.set(rkey, name)
        }
        routes.push({route, index: i})
      })
    }

    // per-mode rules: the driver, pointers relative to the entry
    const common = new Set(diags.slice(before).map((d) => d.pointer))
    if (mode) {
      const driver = opts.drivers[mode]
      for (const d of driver.validate(valid as RawTunnelSpec)) {
        const p = ptr + (d.pointer === '' || d.pointer.startsWith('/') ? d.pointer : '/' + d.pointer)
        if (common.has(p)) continue // already reported by the common checks, in their words
        diags.push({pointer: p, message: withTunnel(d.message, name), target: targetFor(d.pointer)})
      }
    }

    // identity: (kind, local, remote, dev, key) must be unique; any/any/no dev/no key is the fallback device's.
    // Measured in UML (6.1): `ip link add` answers "File exists" for ipip/gre/sit/vti with local and remote
    // any and no dev (gre: and no key), for isatap with local any (sit0), for a sit after an isatap with the
    // same local, and for two vti with the same endpoints whatever their keys; gre key 0 ≠ no key, and gre
    // matches on the input key only.
    const identityValid = !['local', 'remote', 'dev', 'key', 'input-key', 'driver', ''].some((k) => badKeys.has(k))
    if (mode && present && identityValid && !nameProblem && !Object.hasOwn(RESERVED_NAMES, name)) {
      const kind = mode === 'isatap' ? 'sit' : mode
      const local = entry.local ?? 'any'
      const remote = entry.remote ?? 'any'
      const dev = entry.dev ?? ''
      const ikey = mode === 'gre' ? keyNumber(entry['input-key'] ?? entry.key) : undefined
      const id = tunnelIdentity(mode, normEndpoint(local), normEndpoint(remote), dev, ikey)
      const first = identities.get(id)
      const other = first?.name
      if (first) {
        // say what the kernel compares: gre adds the input key; a vti key is a mark; isatap is a sit device
        const fields = mode === 'gre' ? 'local, remote, dev and input key' : 'local, remote and dev'
        const same = first.mode === mode ? `the same mode (${mode}), ${fields}` : `the same ${fields}`
        const note =
          mode === 'vti' ? ' (a vti key only marks packets; it does not tell tunnels apart)'
          : first.mode !== mode ? ` (${first.mode} and ${mode} are both sit devices)`
          : ''
        diags.push({
          pointer: ptr,
          target: 'key',
          message: `tunnel "${name}" has ${same} as tunnel "${other}"${note}; the kernel cannot tell them apart`,
        })
      } else identities.set(id, {name, mode})
      const fb = FALLBACK_BY_KIND[kind]
      if (!other && entry.driver !== 'userspace' && normEndpoint(local) === 'any' && normEndpoint(remote) === 'any' && !dev && ikey === undefined) {
        diags.push({
          pointer: ptr,
          target: 'key',
          message: `tunnel "${name}" has local any, remote any, no dev and no key: that is the kernel's fallback device ${fb}, so it cannot be created; set ${mode === 'gre' ? 'local, remote, key or dev' : mode === 'isatap' ? 'local or dev' : 'local, remote or dev'}`,
        })
      }
    }

    // ipsec SAs: the kernel keys an SA on (destination, SPI); the inbound SA's destination is local, the outbound's remote
    if (mode === 'vti' && present && !badKeys.has('ipsec')) {
      for (const sa of saIdentities(entry)) {
        const k = `${sa.dst}|${sa.spi}`
        const other = saOwner.get(k)
        if (other) push(sa.pointer, `SPI ${hex32(sa.spi)} towards ${sa.dst} is also used by an SA of tunnel "${visible(other)}"; the kernel keys SAs on (destination, SPI)`)
        else saOwner.set(k, name)
      }
    }

    if (mode && !schemaBad && diags.length === before) {
      const driver = opts.drivers[mode]
      const params = driver.normalize(entry as RawTunnelSpec)
      routes.sort((a, b) => compareRoutes(a.route, b.route))
      tunnels.push({
        name,
        state: present ? 'present' : 'absent',
        params,
        addresses: [...addresses].sort(),
        routes: routes.map((r) => r.route),
        routePointers: routes.map((r) => `${ptr}/routes/${r.index}`),
        driver: (entry.driver ?? 'auto') as DriverChoice,
        pointer: ptr,
        ...(mode === 'vti' && isObject(entry.ipsec) ? {ipsec: normalizeIpsec(entry.ipsec)} : {}),
      })
    }
  }
  return {diagnostics: diags, tunnels}
}

function withTunnel(message: string, name: string): string {
  return message.startsWith(`tunnel "${name}"`) ? message : `tunnel "${visible(name)}": ${message}`
}

/** A driver diagnostic on the entry itself names the tunnel's key; anything deeper names the value. */
function targetFor(rel: string): RawDiagnostic['target'] {
  // a problem of the whole ipsec block (or the block on a mode without one) is shown at its key, not at its first line
  return rel === '' || rel === '/ipsec' ? 'key' : 'value'
}

function normEndpoint(v: unknown): string {
  return v === undefined || v === 'any' || v === '0.0.0.0' ? 'any' : String(v)
}

/** key as a u32 (number, decimal string or dotted quad), or undefined */
export function keyNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v
  if (typeof v !== 'string') return undefined
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(v)
  if (m) return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0
  return /^\d+$/.test(v) ? Number(v) : undefined
}

export function compareRoutes(a: RouteSpec, b: RouteSpec): number {
  return a.table - b.table || cmp(a.to, b.to) || (a.metric ?? -1) - (b.metric ?? -1) || cmp(a.via ?? '', b.via ?? '')
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
