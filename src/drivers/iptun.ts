// The kernel's ip_tunnel netlink family (IFLA_IPTUN_*) shared by ipip and sit (and isatap, a sit variant).
import type {InnerProto, Mode, TunnelParams} from '../model/types.js'
import {modeParamKeys} from '../model/fields.js'
import {endpoint} from '../net/endpoint.js'
import type {DecodeContext, DriverDiagnostic, IpLink, ModeDriver, RawTunnelSpec} from './contract.js'
import {
  clean,
  commonReplaceReason,
  encodeUpdateLines,
  decodeDev,
  diag,
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

export function makeIptunDriver(v: IptunVariant): ModeDriver {
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
      const out: DriverDiagnostic[] = []
      if (spec.encapsulated !== undefined && v.protos.length && !v.protos.includes(spec.encapsulated)) {
        out.push(diag('/encapsulated', `encapsulated must be one of ${v.protos.join(', ')} for mode ${v.mode}`))
      }
      out.push(...validateCommon(spec, {mode: v.mode, keys}))
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

    decode(link, ctx) {
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
