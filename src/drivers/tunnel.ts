// The one ModeDriver every kind is built from (systemd-networkd's netdev vtables are the model): the shared
// tunnel fill (spec → params), decode (`ip -j -d link` → params) and encode (`ip link add|set … type KIND …`) of
// the fields every ip_tunnel kind has — local, remote, dev, the IPv4 outer header (ttl, tos, pmtudisc) where the
// kind has one, fwmark, mtu, up — and one small table per kind (TunnelKind) that adds only its own fields.
import type {Mode, TunnelParams} from '../model/types.js'
import {fallbackOf} from '../net/fallback.js'
import {endpoint} from '../net/endpoint.js'
import type {DecodeContext, DriverDiagnostic, IpLink, ModeDriver, RawTunnelSpec} from './contract.js'
import {
  clean,
  commonReplaceReason,
  decodeDev,
  encodeUpdateLines,
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

type Fields = Partial<TunnelParams>

/** What one kind adds to the shared driver. Field order in params: common, outer, `own`, fwmark, `after`, mtu, up, `extra`. */
export interface TunnelKind {
  mode: Mode
  /** iproute2 link kind (isatap: sit) */
  kind: string
  /** spec keys beyond the common ones (the field table's keys for the mode, plus any block of its own) */
  keys: readonly string[]
  /** ttl, tos, pmtudisc (every kind but vti) */
  outer: boolean
  /** the largest mtu for this entry (gre: depends on its header); default maxMtu(mode) */
  maxMtu?(spec: RawTunnelSpec): number
  /** the entry's checks given the common ones (the kind decides the order its own come in) */
  validate?(spec: RawTunnelSpec, common: DriverDiagnostic[]): DriverDiagnostic[]
  /** its own fields from the spec, before fwmark / after fwmark / after up */
  own?(spec: RawTunnelSpec): Fields
  after?(spec: RawTunnelSpec): Fields
  extra?(spec: RawTunnelSpec, p: TunnelParams): void
  /** the link is not of this mode (beyond its kind: e.g. sit vs isatap) */
  foreign?(d: Record<string, any>): boolean
  /** its own fields from `info_data`, in the same three places */
  decodeOwn?(d: Record<string, any>): Fields
  decodeAfter?(d: Record<string, any>): Fields
  decodeExtra?(link: IpLink, d: Record<string, any>, p: TunnelParams, ctx?: DecodeContext): void
  /** its own words of `type KIND …`: before fwmark and after it */
  words?(p: TunnelParams, update: boolean): string[]
  tailWords?(p: TunnelParams, update: boolean): string[]
  /** its replace reasons after the shared ones */
  replaceReason?(from: TunnelParams, to: TunnelParams): string | undefined
  /** lines after `link add` / after the update (isatap's PRL) */
  createLines?(name: string, p: TunnelParams): string[][]
  updateLines?(name: string, from: TunnelParams, to: TunnelParams): string[][]
  /** rewrites the update lines (gre: clear ignore-df before turning pmtudisc on) */
  adjustUpdate?(name: string, from: TunnelParams, to: TunnelParams, lines: string[][], words: (p: TunnelParams) => string[]): string[][]
}

/** The words of `ip link add|set … type KIND` for params p. */
function typeWords(k: TunnelKind, p: TunnelParams, update: boolean): string[] {
  const w = ['remote', p.remote, 'local', p.local]
  if (p.dev !== undefined) w.push('dev', p.dev)
  if (k.outer) w.push('ttl', ttlWord(p.ttl ?? 0), 'tos', tosWord(p.tos ?? 1), p.pmtudisc === false ? 'nopmtudisc' : 'pmtudisc')
  if (k.words) w.push(...k.words(p, update))
  w.push('fwmark', String(p.fwmark))
  if (k.tailWords) w.push(...k.tailWords(p, update))
  return w
}

export function makeTunnelDriver(k: TunnelKind): ModeDriver {
  const fb = fallbackOf(k.kind)
  return {
    mode: k.mode,
    kind: k.kind,
    modules: [fb.module],
    fallbackDevice: fb.name,
    keys: k.keys,

    validate(spec) {
      const common = validateCommon(spec, {mode: k.mode, keys: k.keys, maxMtu: k.maxMtu?.(spec)})
      return k.validate ? k.validate(spec, common) : common
    },

    normalize(spec) {
      const p: TunnelParams = {
        mode: k.mode,
        local: endpoint(spec.local),
        remote: endpoint(spec.remote),
        dev: spec.dev,
        ...(k.outer ? {ttl: ttlOf(spec.ttl), tos: tosOf(spec.tos), pmtudisc: spec.pmtudisc ?? true} : {}),
        ...k.own?.(spec),
        fwmark: spec.fwmark ?? 0,
        ...k.after?.(spec),
        mtu: spec.mtu,
        up: spec.up ?? true,
      }
      k.extra?.(spec, p)
      return clean(p)
    },

    replaceReason(from, to) {
      return commonReplaceReason(from, to) ?? k.replaceReason?.(from, to)
    },

    encodeCreate(name, p) {
      const head = ['link', 'add', 'name', name]
      if (p.mtu !== undefined) head.push('mtu', String(p.mtu))
      return [[...head, 'type', k.kind, ...typeWords(k, p, false)], ...(k.createLines?.(name, p) ?? [])]
    },

    encodeUpdate(name, from, to) {
      const lines = encodeUpdateLines(name, k.kind, from, to, () => typeWords(k, to, true), k.updateLines?.(name, from, to) ?? [])
      return k.adjustUpdate ? k.adjustUpdate(name, from, to, lines, (p) => typeWords(k, p, true)) : lines
    },

    decode(link, ctx) {
      if (infoKind(link) !== k.kind) return undefined
      const d = infoData(link)
      if (d.external) return undefined // collect_md (flow-based) devices are not tunnels tunctl manages
      if (k.foreign?.(d)) return undefined
      const p: TunnelParams = {
        mode: k.mode,
        local: endpoint(d.local),
        remote: endpoint(d.remote),
        dev: decodeDev(d, ctx?.byIndex),
        ...(k.outer ? {ttl: typeof d.ttl === 'number' ? d.ttl : 0, tos: hexNum(d.tos), pmtudisc: d.pmtudisc !== false} : {}),
        ...k.decodeOwn?.(d),
        fwmark: hexNum(d.fwmark),
        ...k.decodeAfter?.(d),
        mtu: link.mtu,
        up: isUp(link),
      }
      k.decodeExtra?.(link, d, p, ctx)
      return clean(p)
    },
  }
}
