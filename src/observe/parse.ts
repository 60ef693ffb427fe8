// Pure part of observe: raw `ip -j` JSON (+ encapsulator states) → ObservedState. No system access (unit-testable).
import ipaddr from 'ipaddr.js'
import type {Counters, ObservedState, ObservedTunnel, RouteHolder, RouteSpec, Router, TunnelParams} from '../model/types.js'
import type {DecodeContext} from '../drivers/contract.js'
import {DRIVERS} from '../drivers/index.js'
import type {IpsecParams} from '../ipsec/spec.js'
import {type ParsedCidr, addrText, isSitV4Compat, parseCidr, parseIP} from '../net/addr.js'
import {isFallbackDevice} from '../net/fallback.js'
import {compareRoutes} from '../net/route.js'
import {manageableName} from '../lib/names.js'
import {tableNumber} from '../lib/rttables.js'

export interface ObserveOptions {
  netns?: string
  /** false: no counters (link statistics, userspace counters files); default true */
  counters?: boolean
}

/** What observe needs from the userspace encapsulator control (src/userspace/control.ts observeEncaps). */
export interface EncapInfo {
  params: TunnelParams
  pid?: number
  alive: boolean
  counters?: Counters
  /** vti: the ipsec block its daemon runs (key-free) and the ESP counters */
  ipsec?: IpsecParams
  esp?: {txPackets: number; txBytes: number; rxPackets: number; rxBytes: number; exhausted?: boolean}
}

export interface RawState {
  links: any[] // ip -j -d link show (-s with counters)
  addrs: any[] // ip -j addr show
  routes: any[] // ip -j route show table all
  /** false: the route dump was skipped (routes is empty, not the namespace's routes) */
  routesObserved?: boolean
  /** `ip tunnel show` text (only needed when an isatap tunnel exists) */
  tunnelShow?: string
  encaps?: Map<string, EncapInfo>
}

/** a userspace vti's ESP counters (native/vti.c), in the kernel driver's shape: replay = replayed or too old, failed = every other drop of an ESP packet for this SA;
 * out.exhausted: the outbound SA sent 2^32 - 1 packets and stopped (the engine's stats, paths.ts EspStats) */
function userspaceEsp(e: NonNullable<EncapInfo['esp']>, drops: Record<string, number> = {}): NonNullable<ObservedTunnel['esp']> {
  const replay = (drops.replay ?? 0) + (drops.too_old ?? 0)
  const failed = ['bad_icv', 'bad_pad', 'bad_next_header', 'inner_malformed', 'truncated', 'crypto'].reduce((n, k) => n + (drops[k] ?? 0), 0)
  return {out: {packets: e.txPackets, bytes: e.txBytes, exhausted: e.exhausted === true}, in: {packets: e.rxPackets, bytes: e.rxBytes, replay, failed}}
}

export {tableNumber} from '../lib/rttables.js'

/** Parses `ip tunnel show` text: the ISATAP potential router list per tunnel ("pdr A" = default, "pr A"). */
export function parsePrl(text: string): Map<string, Router[]> {
  const m = new Map<string, Router[]>()
  for (const line of text.split('\n')) {
    const h = /^(\S+?):\s/.exec(line)
    if (!h) continue
    const rs: Router[] = []
    const re = /\b(pdr|pr) (\d+\.\d+\.\d+\.\d+)/g
    let x
    while ((x = re.exec(line))) rs.push({address: x[2]!, default: x[1] === 'pdr'})
    m.set(h[1]!, rs)
  }
  return m
}

function isLinkLocal6(a: ipaddr.IPv6): boolean {
  return a.range() === 'linkLocal'
}

/** The first group of an IPv6 address in fe80::/10 (fe80 … febf), as iproute2 prints it or in capitals. */
const LINK_LOCAL6_TEXT = /^fe[89ab][0-9a-f]:/i

/**
 * Addresses of one interface from `ip -j addr show`: canonical CIDRs, sorted, without the ones the kernel makes
 * itself (IPv6 link-local; on sit devices the IPv4-compatible ::a.b.c.d/96).
 */
export function addressesOf(addrs: any[], ifname: string, opts: {sit?: boolean} = {}): string[] {
  const e = addrs.find((a) => a.ifname === ifname)
  const out: string[] = []
  for (const ai of e?.addr_info ?? []) {
    if (ai.family !== 'inet' && ai.family !== 'inet6') continue
    // IPv6 link-local (fe80::/10) by its text before parsing: every engine TUN device has one, and parsing IPv6
    // is most of this function's time with thousands of tunnels (text that does not parse is skipped either way)
    if (ai.family === 'inet6' && typeof ai.local === 'string' && LINK_LOCAL6_TEXT.test(ai.local)) continue
    const a = parseIP(ai.local)
    if (!a) continue
    if (a.kind() === 'ipv6') {
      if (isLinkLocal6(a as ipaddr.IPv6)) continue
      if (opts.sit && isSitV4Compat(a as ipaddr.IPv6, ai.prefixlen)) continue
    }
    out.push(`${addrText(a)}/${ai.prefixlen}`)
  }
  return [...new Set(out)].sort()
}

function routeFamily(r: any): 4 | 6 {
  if (typeof r.dst === 'string' && r.dst.includes(':')) return 6
  if (typeof r.gateway === 'string' && r.gateway.includes(':')) return 6
  if (typeof r.via === 'object' && r.via?.family === 'inet6') return 6
  if ('pref' in r) return 6 // only IPv6 routes carry a router preference
  return 4
}

/** Parsed route destinations of one observation, by family and text (see canonicalDst). */
export type DstMemo = Map<string, ParsedCidr | undefined>

/**
 * `ip -j route`'s dst as a prefix (a bare address is a host prefix), or undefined for one this reader does not know.
 * With a memo, each text is parsed once: a namespace of 1000 tunnel devices lists fe80::/64, ff00::/8 and its
 * link-local address once per device (3000 of its 6000 routes), and parsing IPv6 text is the slow part.
 */
function canonicalDst(dst: string, fam: 4 | 6, memo?: DstMemo): ParsedCidr | undefined {
  const key = `${fam}${dst}`
  if (memo?.has(key)) return memo.get(key)
  const c = parseCidr(dst === 'default' ? (fam === 6 ? '::/0' : '0.0.0.0/0') : dst)
  memo?.set(key, c)
  return c
}

/**
 * Routes through one interface that a user could have configured: not proto kernel, not local/broadcast/multicast
 * types, not the local table, not IPv6 link-local or multicast destinations. metric is always set (IPv4 default 0).
 */
export function routesOf(routes: any[], ifname: string, tableNames?: Map<string, number>, memo?: DstMemo): RouteSpec[] {
  const out: RouteSpec[] = []
  for (const r of routes) {
    if (r.dev !== ifname) continue
    if (r.protocol === 'kernel') continue
    if (r.type && r.type !== 'unicast') continue
    const table = tableNumber(r.table, tableNames)
    if (table === 255) continue
    const fam = routeFamily(r)
    if (typeof r.dst !== 'string') continue
    const dst = canonicalDst(r.dst, fam, memo)
    if (!dst) continue
    const to = dst.text
    if (fam === 6) {
      const range = dst.addr.range()
      if (range === 'linkLocal' || range === 'multicast') continue
    }
    const rt: RouteSpec = {to, table, metric: typeof r.metric === 'number' ? r.metric : 0}
    if (typeof r.gateway === 'string') {
      rt.via = addrText(parseIP(r.gateway)!)
    }
    out.push(rt)
  }
  return out.sort(compareRoutes)
}

/** Every route of the dump as (table, prefix, metric) with its device (see ObservedState.routeKeys). */
export function routeKeysOf(routes: any[], tableNames?: Map<string, number>, memo?: DstMemo): RouteHolder[] {
  const out: RouteHolder[] = []
  for (const r of routes) {
    if (typeof r?.dst !== 'string') continue
    const fam = routeFamily(r)
    const to = canonicalDst(r.dst, fam, memo)?.text
    if (to === undefined) continue // a destination this reader does not know (e.g. another family's syntax)
    const h: RouteHolder = {table: tableNumber(r.table, tableNames), to, metric: typeof r.metric === 'number' ? r.metric : 0}
    if (typeof r.dev === 'string') h.dev = r.dev
    if (r.type && r.type !== 'unicast') h.type = String(r.type)
    out.push(h)
  }
  return out
}

export function countersOf(link: any): Counters | undefined {
  const s = link.stats64
  if (!s?.rx || !s?.tx) return undefined
  return {
    rxPackets: s.rx.packets ?? 0,
    rxBytes: s.rx.bytes ?? 0,
    txPackets: s.tx.packets ?? 0,
    txBytes: s.tx.bytes ?? 0,
    rxErrors: s.rx.errors ?? 0,
    txErrors: s.tx.errors ?? 0,
    rxDropped: s.rx.dropped ?? 0,
    txDropped: s.tx.dropped ?? 0,
  }
}

/** tunctl's exact mark (alias `tunctl`) on a link whose name tunctl can manage (see manageableName). */
export function isOwned(link: any): boolean {
  return link?.ifalias === 'tunctl' && manageableName(link.ifname)
}

export function hasIsatap(links: any[]): boolean {
  return links.some((l) => l?.linkinfo?.info_kind === 'sit' && l.linkinfo.info_data?.isatap && !isFallbackDevice(l.ifname))
}

/** Pure: raw `ip` JSON (+ encapsulator states) → ObservedState. */
export function buildObserved(raw: RawState, opts: ObserveOptions & {tableNames?: Map<string, number>} = {}): ObservedState {
  const byIndex = new Map<number, string>(raw.links.map((l) => [l.ifindex, l.ifname]))
  const ctx: DecodeContext = {byIndex, prl: raw.tunnelShow !== undefined ? parsePrl(raw.tunnelShow) : undefined}
  const tunnels: ObservedTunnel[] = []
  const kinds: Record<string, string> = {}
  // each link's addresses and routes, grouped once (not a scan of every route per link: thousands of tunnels)
  const addrsOf = new Map<string, any[]>()
  for (const a of raw.addrs) if (!addrsOf.has(a.ifname)) addrsOf.set(a.ifname, [a])
  const dsts: DstMemo = new Map()
  const routesByDev = new Map<string, any[]>()
  for (const r of raw.routes) {
    const list = routesByDev.get(r.dev)
    if (list) list.push(r)
    else routesByDev.set(r.dev, [r])
  }
  for (const link of raw.links) {
    const name: string = link.ifname
    kinds[name] = link?.linkinfo?.info_kind ?? link.link_type ?? 'unknown'
    if (isFallbackDevice(name)) continue
    const owned = isOwned(link)
    const common = {
      name,
      ifindex: link.ifindex,
      addresses: addressesOf(addrsOf.get(name) ?? [], name, {sit: link?.linkinfo?.info_kind === 'sit'}),
      routes: routesOf(routesByDev.get(name) ?? [], name, opts.tableNames, dsts),
      owned,
      operstate: link.operstate ?? 'UNKNOWN',
    }
    let params: TunnelParams | undefined
    for (const d of Object.values(DRIVERS)) {
      try {
        params = d.decode(link, ctx)
      } catch {
        params = undefined // output this iproute2 prints differently: not reported as a tunnel (kinds still has it)
      }
      if (params) break
    }
    if (params) {
      const counters = countersOf(link)
      tunnels.push({...common, driver: 'kernel', params, ...(counters ? {counters} : {})})
      continue
    }
    // a userspace tunnel: tunctl's TUN device plus its encapsulator state
    if (link?.linkinfo?.info_kind === 'tun' && owned) {
      // tunctl's mark without a readable record (state and stats files lost): still ours, parameters unknown
      // (mode 'unknown'), its encapsulator not running — plan replaces it, del and prune delete it
      const e: EncapInfo = raw.encaps?.get(name) ?? {params: {mode: 'unknown'} as unknown as TunnelParams, alive: false}
      const params: TunnelParams = {...e.params, up: Array.isArray(link.flags) && link.flags.includes('UP')}
      if (typeof link.mtu === 'number') params.mtu = link.mtu
      const counters = e.counters ?? countersOf(link)
      tunnels.push({
        ...common,
        driver: 'userspace',
        params,
        ...(counters ? {counters} : {}),
        ...(e.pid !== undefined ? {pid: e.pid} : {}),
        alive: e.alive,
        ...(e.ipsec ? {ipsec: e.ipsec} : {}),
        ...(e.esp ? {esp: userspaceEsp(e.esp, counters?.drops)} : {}),
      })
    }
  }
  tunnels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const state: ObservedState = {tunnels, links: raw.links.map((l) => l.ifname as string), kinds}
  if (raw.routesObserved !== false) state.routeKeys = routeKeysOf(raw.routes, opts.tableNames, dsts)
  if (opts.netns) state.netns = opts.netns
  return state
}

