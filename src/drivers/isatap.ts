// isatap: a sit device with the ISATAP flag (kind 'sit', proto ip6ip, remote any) plus a potential router list (PRL).
import type {Router, TunnelParams} from '../model/types.js'
import type {DriverDiagnostic, RawTunnelSpec} from './contract.js'
import {isIPv4} from '../net/addr.js'
import {diag} from './common.js'
import {makeIptunDriver} from './iptun.js'
import {sitVariant} from './sit.js'

function ipNum(a: string): number {
  return a.split('.').reduce((n, o) => n * 256 + Number(o), 0)
}

export function sortRouters(rs: Router[]): Router[] {
  return [...rs].sort((a, b) => ipNum(a.address) - ipNum(b.address))
}

/** `routers:` entries: 'a.b.c.d' or {address, default}; default defaults to true (prl-default). */
export function routersOf(v: unknown): Router[] {
  if (!Array.isArray(v)) return []
  return sortRouters(
    v.map((r) => (typeof r === 'string' ? {address: r, default: true} : {address: String(r.address), default: r.default ?? true})),
  )
}

function prlLine(name: string, r: Router): string[] {
  return ['tunnel', 'prl', r.default ? 'prl-default' : 'prl-nodefault', r.address, 'dev', name]
}

function validateIsatap(spec: RawTunnelSpec): DriverDiagnostic[] {
  const out: DriverDiagnostic[] = []
  if (spec.remote !== undefined && spec.remote !== 'any' && spec.remote !== '0.0.0.0') {
    out.push(diag('/remote', 'isatap tunnels have no fixed remote: remote must be any (use routers for the potential router list)'))
  }
  if (spec.routers !== undefined) {
    if (!Array.isArray(spec.routers)) out.push(diag('/routers', 'routers must be a list'))
    else {
      const seen = new Set<string>()
      spec.routers.forEach((r: any, i: number) => {
        const a = typeof r === 'string' ? r : r?.address
        const ptr = typeof r === 'string' ? `/routers/${i}` : `/routers/${i}/address`
        if (!isIPv4(a) || a === '0.0.0.0') out.push(diag(ptr, `router ${String(a)} must be a unicast IPv4 address`))
        else if (seen.has(a)) out.push(diag(ptr, `router ${a} is listed twice`))
        else seen.add(a)
        if (typeof r === 'object' && r && r.default !== undefined && typeof r.default !== 'boolean') {
          out.push(diag(`/routers/${i}/default`, 'default must be true or false'))
        }
      })
    }
  }
  return out
}

export const isatap = makeIptunDriver({
  ...sitVariant,
  mode: 'isatap',
  protos: [], // always ip6ip; `encapsulated:` is not accepted
  defaultProto: 'ip6ip',
  isatap: true,
  validateExtra: validateIsatap,
  normalizeExtra(spec: RawTunnelSpec, p: TunnelParams) {
    p.routers = routersOf(spec.routers)
  },
  encodeExtra: () => [],
  createLines: (name, p) => (p.routers ?? []).map((r) => prlLine(name, r)),
  updateLines(name, from, to) {
    const lines: string[][] = []
    const want = new Map((to.routers ?? []).map((r) => [r.address, r]))
    const have = new Map((from.routers ?? []).map((r) => [r.address, r]))
    for (const [a, r] of have) {
      const w = want.get(a)
      if (!w || w.default !== r.default) lines.push(['tunnel', 'prl', 'prl-delete', a, 'dev', name])
    }
    for (const [a, r] of want) {
      const h = have.get(a)
      if (!h || h.default !== r.default) lines.push(prlLine(name, r))
    }
    return lines
  },
  decodeExtra(link, _d, p, ctx) {
    p.routers = sortRouters(ctx?.prl?.get(link.ifname) ?? [])
  },
})
