// The kernel's ip_tunnel netlink family (IFLA_IPTUN_*) shared by ipip and sit (and isatap, a sit variant): the
// inner protocol (`encapsulated:` → mode ipip|ip6ip|mplsip|any) on top of the shared tunnel driver (tunnel.ts).
import type {InnerProto, Mode, TunnelParams} from '../model/types.js'
import {modeParamKeys} from '../model/fields.js'
import type {DecodeContext, DriverDiagnostic, IpLink, ModeDriver, RawTunnelSpec} from './contract.js'
import {diag} from './common.js'
import {makeTunnelDriver} from './tunnel.js'

/** What distinguishes ipip, sit and isatap on top of the shared ip_tunnel code. */
export interface IptunVariant {
  mode: Mode
  kind: 'ipip' | 'sit'
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
  return makeTunnelDriver({
    mode: v.mode,
    kind: v.kind,
    keys: modeParamKeys(v.mode), // the field table's keys for the mode
    outer: true,
    validate(spec, common) {
      const out: DriverDiagnostic[] = []
      if (spec.encapsulated !== undefined && v.protos.length && !v.protos.includes(spec.encapsulated)) {
        out.push(diag('/encapsulated', `encapsulated must be one of ${v.protos.join(', ')} for mode ${v.mode}`))
      }
      return [...out, ...common, ...(v.validateExtra?.(spec) ?? [])]
    },
    after: (spec) => ({proto: (spec.encapsulated as InnerProto) ?? v.defaultProto}),
    extra: v.normalizeExtra,
    foreign: (d) => v.kind === 'sit' && !!d.isatap !== v.isatap,
    decodeAfter: (d) => ({proto: (d.proto as InnerProto) ?? v.defaultProto}),
    decodeExtra: v.decodeExtra,
    words: (p) => ['mode', p.proto ?? v.defaultProto],
    tailWords: (p, update) => [...(v.isatap ? ['isatap'] : []), ...(v.encodeExtra?.(p, update) ?? [])],
    replaceReason(from, to) {
      if ((from.proto ?? v.defaultProto) !== (to.proto ?? v.defaultProto)) {
        return `inner protocol ${from.proto} → ${to.proto} cannot change in place (the kernel ignores it on changelink)`
      }
      return v.replaceExtra?.(from, to)
    },
    createLines: v.createLines,
    updateLines: v.updateLines,
  })
}
