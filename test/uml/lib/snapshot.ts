// Whole-namespace snapshots (links with details, addresses, all routing tables) for "nothing changed" checks.
//
// What "exactly as before" means here: the same set of links (by name) with the same kind, tunnel
// parameters (linkinfo), alias, flags, MTU and operstate; the same addresses on each; the same routes in
// every table. We drop only what cannot be the same or is not state: packet statistics, address
// lifetimes, route cache expiry, and ifindex numbers (a link that a rollback had to recreate — after a
// failed replace or delete — necessarily gets a new ifindex; links the plan only updated in place must
// keep theirs, which the tests check separately with `ifindexes`). ifindex references (`link`,
// `link_index`) are kept: they name the underlay/peer, which is not recreated.
import {ipnJson} from './sh.js'

export interface Snapshot {
  links: any[]
  addrs: any[]
  routes: any[]
}

const VOLATILE_LINK = ['ifindex', 'stats', 'stats64']

function sortKeys(v: any): any {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') {
    const o: any = {}
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k])
    return o
  }
  return v
}

const byJson = (x: any, y: any) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : JSON.stringify(x) > JSON.stringify(y) ? 1 : 0)

export function normaliseLinks(links: any[]): any[] {
  return links
    .map((l) => {
      const o = {...l}
      for (const k of VOLATILE_LINK) delete o[k]
      return sortKeys(o)
    })
    .sort((x, y) => String(x.ifname).localeCompare(String(y.ifname)))
}

export function normaliseAddrs(addrs: any[]): any[] {
  return addrs
    .map((l) => ({
      ifname: l.ifname,
      addr_info: (l.addr_info ?? [])
        .map((a: any) => {
          const o = {...a}
          delete o.valid_life_time
          delete o.preferred_life_time
          return sortKeys(o)
        })
        .sort(byJson),
    }))
    .sort((x, y) => String(x.ifname).localeCompare(String(y.ifname)))
}

export function normaliseRoutes(routes: any[]): any[] {
  return routes
    .map((r) => {
      const o = {...r}
      delete o.expires
      delete o.cache
      return sortKeys(o)
    })
    .sort(byJson)
}

export function snapshot(ns: string): Snapshot {
  return {
    links: normaliseLinks(ipnJson(ns, '-d', 'link', 'show')),
    addrs: normaliseAddrs(ipnJson(ns, 'addr', 'show')),
    routes: normaliseRoutes(ipnJson(ns, 'route', 'show', 'table', 'all')),
  }
}

/** name → ifindex for every link */
export function ifindexes(ns: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const l of ipnJson(ns, 'link', 'show')) out[l.ifname] = l.ifindex
  return out
}

/** Human-readable first difference between two snapshots (for assertion messages), or '' if equal. */
export function snapshotDiff(before: Snapshot, after: Snapshot): string {
  const out: string[] = []
  for (const part of ['links', 'addrs', 'routes'] as const) {
    const b = before[part].map((x) => JSON.stringify(x))
    const a = after[part].map((x) => JSON.stringify(x))
    for (const x of b) if (!a.includes(x)) out.push(`${part} lost:   ${x}`)
    for (const x of a) if (!b.includes(x)) out.push(`${part} gained: ${x}`)
  }
  return out.join('\n')
}
