// The kernel's ip_tunnel netlink family (IFLA_IPTUN_*) shared by ipip and sit (and isatap, a sit variant).
import type {InnerProto, Mode, TunnelParams} from '../model/types.js'
import {LINK_FIELDS, modeParamKeys} from '../model/fields.js'
import type {DriverDiagnostic, IpLink, ModeDriver, RawTunnelSpec} from './contract.js'
import {
  DecodeContext,
  Family,
  decodeDev,
  diag,
  endpoint,
  hexNum,
  infoData,
  infoKind,
  isUp,
  tosOf,
  tosWord,
  ttlOf,
  ttlWord,
  validateCommon,
} from './common.js'

/** What distinguishes ipip, sit and isatap on top of the shared ip_tunnel code. */
export interface IptunVariant {
  mode: Mode
  kind: 'ipip' | 'sit'
  modules: string[]
  fallbackDevice: string
  /** allowed `encapsulated:` values; empty = the key is not accepted */
  protos: InnerProto[]
  defaultProto: InnerProto
  /** sit's ISATAP flag (IFLA_IPTUN_FLAGS & SIT_ISATAP) */
  isatap: boolean
  /** inner families for a given proto */
  families(proto: InnerProto): Family[]
  /** mode-specific checks */
  validateExtra?(spec: RawTunnelSpec): DriverDiagnostic[]
  /** mode-specific normalized fields */
  normalizeExtra?(spec: RawTunnelSpec, p: TunnelParams): void
  /** mode-specific words appended to `type KIND …` */
  encodeExtra?(p: TunnelParams, update: boolean): string[]
  /** extra lines after create (e.g. isatap prl) */
  createLines?(name: string, p: TunnelParams): string[][]
  /** extra lines after update */
  updateLines?(name: string, from: TunnelParams, to: TunnelParams): string[][]
  decodeExtra?(link: IpLink, d: Record<string, any>, p: TunnelParams, ctx?: DecodeContext): void
  replaceExtra?(from: TunnelParams, to: TunnelParams): string | undefined
}

/** Drop keys whose value is undefined, so canonical params compare with deep equality. */
export function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k]
  return o
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

export function makeIptunDriver(v: IptunVariant): ModeDriver & {decode(link: IpLink, ctx?: DecodeContext): TunnelParams | undefined} {
  const keys = modeParamKeys(v.mode) // the field table's keys for the mode

  function params(p: TunnelParams, update: boolean): string[] {
    const w = ['remote', p.remote, 'local', p.local]
    if (p.dev !== undefined) w.push('dev', p.dev)
    w.push('ttl', ttlWord(p.ttl ?? 0), 'tos', tosWord(p.tos ?? 1), p.pmtudisc === false ? 'nopmtudisc' : 'pmtudisc')
    w.push('mode', p.proto ?? v.defaultProto)
    w.push('fwmark', String(p.fwmark))
    if (v.isatap) w.push('isatap')
    if (v.encodeExtra) w.push(...v.encodeExtra(p, update))
    return w
  }

  return {
    mode: v.mode,
    kind: v.kind,
    modules: v.modules,
    fallbackDevice: v.fallbackDevice,
    keys,

    validate(spec) {
      const proto: InnerProto = (spec.encapsulated as InnerProto) ?? v.defaultProto
      const out: DriverDiagnostic[] = []
      if (spec.encapsulated !== undefined && v.protos.length && !v.protos.includes(spec.encapsulated)) {
        out.push(diag('/encapsulated', `encapsulated must be one of ${v.protos.join(', ')} for mode ${v.mode}`))
      }
      out.push(...validateCommon(spec, {mode: v.mode, keys, families: v.families(v.protos.includes(proto) ? proto : v.defaultProto)}))
      if (v.validateExtra) out.push(...v.validateExtra(spec))
      return out
    },

    normalize(spec) {
      const p: TunnelParams = {
        mode: v.mode,
        local: endpoint(spec.local),
        remote: endpoint(spec.remote),
        dev: spec.dev,
        ttl: ttlOf(spec.ttl),
        tos: tosOf(spec.tos),
        pmtudisc: spec.pmtudisc ?? true,
        fwmark: spec.fwmark ?? 0,
        proto: (spec.encapsulated as InnerProto) ?? v.defaultProto,
        mtu: spec.mtu,
        up: spec.up ?? true,
      }
      if (v.normalizeExtra) v.normalizeExtra(spec, p)
      return clean(p)
    },

    replaceReason(from, to) {
      const r = commonReplaceReason(from, to)
      if (r) return r
      if ((from.proto ?? v.defaultProto) !== (to.proto ?? v.defaultProto)) {
        return `inner protocol ${from.proto} → ${to.proto} cannot change in place (the kernel ignores it on changelink)`
      }
      return v.replaceExtra?.(from, to)
    },

    encodeCreate(name, p) {
      const head = ['link', 'add', 'name', name]
      if (p.mtu !== undefined) head.push('mtu', String(p.mtu))
      return [[...head, 'type', v.kind, ...params(p, false)], ...(v.createLines?.(name, p) ?? [])]
    },

    encodeUpdate(name, from, to) {
      return encodeUpdateLines(name, v.kind, from, to, () => params(to, true), v.updateLines?.(name, from, to) ?? [])
    },

    decode(link, ctx?: DecodeContext) {
      if (infoKind(link) !== v.kind) return undefined
      const d = infoData(link)
      if (d.external) return undefined // collect_md (flow-based) devices are not tunnels tunctl manages
      if (v.kind === 'sit' && !!d.isatap !== v.isatap) return undefined
      const p: TunnelParams = {
        mode: v.mode,
        local: endpoint(d.local),
        remote: endpoint(d.remote),
        dev: decodeDev(d, ctx?.byIndex),
        ttl: typeof d.ttl === 'number' ? d.ttl : 0,
        tos: hexNum(d.tos),
        pmtudisc: d.pmtudisc !== false,
        fwmark: hexNum(d.fwmark),
        proto: (d.proto as InnerProto) ?? v.defaultProto,
        mtu: link.mtu,
        up: isUp(link),
      }
      if (v.decodeExtra) v.decodeExtra(link, d, p, ctx)
      return clean(p)
    },
  }
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
