// Routes: their order, the kernel's default metric, and the (table, prefix, metric) key the kernel stores them by.
// Table names ↔ numbers: src/lib/rttables.ts (the one reader of rt_tables for spec and observe).
import type {RouteSpec} from '../model/types.js'
import type {Family} from './addr.js'

/** The metric the kernel gives an IPv6 route without one (IP6_RT_PRIO_USER). */
export const IP6_DEFAULT_METRIC = 1024

/**
 * The metric the kernel stores a route with: without one, 0 (IPv4) or 1024 (IPv6); an IPv6 route asked for with
 * metric 0 is stored with 1024 too (ip6_route_info_create: `if (!cfg->fc_metric) cfg->fc_metric = IP6_RT_PRIO_USER`),
 * an IPv4 one keeps 0.
 */
export function effectiveMetric(r: {to: string; metric?: number}): number {
  return r.to.includes(':') ? r.metric || IP6_DEFAULT_METRIC : (r.metric ?? 0)
}

/**
 * The family a spec's `to: default` means: its via's; else the only inner family the mode carries (`carried`:
 * innerFamilies); else the only family of the tunnel's addresses. Undefined when none of them tells (both families,
 * or no address): the spec refuses `default` there, and export writes the prefix instead.
 */
export function defaultRouteFamily(via: Family | undefined, carried: readonly Family[], addresses: readonly string[]): Family | undefined {
  if (via) return via
  if (carried.length === 1) return carried[0]
  const fams = new Set(addresses.map((a): Family => (a.includes(':') ? 6 : 4)))
  return fams.size === 1 ? [...fams][0] : undefined
}

/** The (table, prefix, metric) the kernel keys a route on: two routes with the same key cannot coexist. */
export function routeKey(r: {table: number; to: string; metric?: number}): string {
  return `${r.table}|${r.to}|${effectiveMetric(r)}`
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The order routes are listed in (desired and observed alike): table, destination, metric, via. */
export function compareRoutes(a: RouteSpec, b: RouteSpec): number {
  return a.table - b.table || cmp(a.to, b.to) || (a.metric ?? -1) - (b.metric ?? -1) || cmp(a.via ?? '', b.via ?? '')
}

/** A table number as plan prints it. */
export function tableText(t: number): string {
  return t === 254 ? 'main' : t === 255 ? 'local' : t === 253 ? 'default' : String(t)
}
