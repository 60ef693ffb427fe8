// The field table: one row per tunnel parameter (a TunnelParams field other than mode). Every consumer reads it:
// the diff (which fields, in which order), plan/show rendering (labels, create defaults, 'inherit'), export (how a
// field is written back as spec keys), the drivers (which spec keys a mode accepts, which fields `ip link set …
// type KIND` carries) and the tests that hold the JSON schema and the man page to it (test/unit/docs/).
// Adding a parameter: a row here (and the TunnelParams field in types.ts), its encode/decode in the driver, its
// man page entry, its schema property — see docs/DESIGN.md "Adding a mode or a parameter".
import {MODES, type Mode, type TunnelParams} from './types.js'

export type ParamField = Exclude<keyof TunnelParams, 'mode'>

export interface FieldRow {
  field: ParamField
  /** what plan and show print before the value (also the spec key when the field has one of its own) */
  label: string
  /**
   * The spec keys that set the field (empty: none of its own). A pair (ikey/okey, icsum/ocsum, iseq/oseq) is set
   * by one shared key for both directions or by per-direction keys, see `pair`.
   */
  specKeys: readonly string[]
  /** the modes whose spec accepts the field's keys (the common fields: every mode) */
  modes: readonly Mode[]
  /** canonical value when the spec leaves the key out (undefined: the field is then absent) */
  default?: unknown
  /** the value the spec and plan spell 'inherit' (ttl 0, tos 1: the kernel's convention) */
  inherit?: number
  /** carried by `ip link set dev NAME type KIND …` (a difference in one of them rewrites the link's attributes) */
  link: boolean
  /**
   * How a change is applied in place: 'update' (an `ip link set`, or a line of its own like mtu and the PRL),
   * 'replace' (the kernel cannot change it: a new link), 'driver' (depends on the values: the driver's replaceReason).
   */
  change: 'update' | 'replace' | 'driver'
  /**
   * Half of a two-direction pair: written as `pair.key` when both halves are equal, else as the per-direction
   * `pair.split` keys (input-key/output-key) or as `{input, output}` under `pair.key` (csum, seq).
   */
  pair?: {key: string; dir: 'input' | 'output'; split?: string}
  /** export: the spec value of a field whose canonical form differs from what the spec writes */
  toSpec?(v: unknown): unknown
  /** false: export writes it itself (mtu: only when it is not the kernel's default) */
  exported?: boolean
  /** an attribute of the device itself (`ip link set dev NAME mtu N|up`), also of a userspace tunnel's TUN device */
  device?: boolean
}

const ALL = MODES
const OUTER: readonly Mode[] = ['ipip', 'gre', 'sit', 'isatap'] // the IPv4 outer-header keys (vti has none)

/** In display order: diff, plan, show and export list fields in this order. */
export const FIELDS: readonly FieldRow[] = [
  {field: 'local', label: 'local', specKeys: ['local'], modes: ALL, default: 'any', link: true, change: 'update'},
  {field: 'remote', label: 'remote', specKeys: ['remote'], modes: ALL, default: 'any', link: true, change: 'driver'},
  {field: 'dev', label: 'dev', specKeys: ['dev'], modes: ALL, link: true, change: 'driver'},
  {field: 'ttl', label: 'ttl', specKeys: ['ttl'], modes: OUTER, default: 0, inherit: 0, link: true, change: 'update'},
  {field: 'tos', label: 'tos', specKeys: ['tos'], modes: OUTER, default: 1, inherit: 1, link: true, change: 'update'},
  {field: 'pmtudisc', label: 'pmtudisc', specKeys: ['pmtudisc'], modes: OUTER, default: true, link: true, change: 'update'},
  {field: 'ignoreDf', label: 'ignore-df', specKeys: ['ignore-df'], modes: ['gre'], default: false, link: true, change: 'update'},
  {field: 'ikey', label: 'input-key', specKeys: ['key', 'input-key'], modes: ['gre', 'vti'], link: true, change: 'driver', pair: {key: 'key', dir: 'input', split: 'input-key'}},
  {field: 'okey', label: 'output-key', specKeys: ['key', 'output-key'], modes: ['gre', 'vti'], link: true, change: 'driver', pair: {key: 'key', dir: 'output', split: 'output-key'}},
  {field: 'icsum', label: 'input-csum', specKeys: ['csum'], modes: ['gre'], default: false, link: true, change: 'driver', pair: {key: 'csum', dir: 'input'}},
  {field: 'ocsum', label: 'output-csum', specKeys: ['csum'], modes: ['gre'], default: false, link: true, change: 'driver', pair: {key: 'csum', dir: 'output'}},
  {field: 'iseq', label: 'input-seq', specKeys: ['seq'], modes: ['gre'], default: false, link: true, change: 'driver', pair: {key: 'seq', dir: 'input'}},
  {field: 'oseq', label: 'output-seq', specKeys: ['seq'], modes: ['gre'], default: false, link: true, change: 'driver', pair: {key: 'seq', dir: 'output'}},
  {field: 'fwmark', label: 'fwmark', specKeys: ['fwmark'], modes: ALL, default: 0, link: true, change: 'update'},
  // isatap's proto is always ip6ip: decoded, never written (its spec has no `encapsulated:`)
  {field: 'proto', label: 'encapsulated', specKeys: ['encapsulated'], modes: ['ipip', 'sit'], link: true, change: 'replace'},
  {field: 'sixrdPrefix', label: '6rd-prefix', specKeys: ['6rd-prefix'], modes: ['sit'], link: true, change: 'update'},
  {field: 'sixrdRelayPrefix', label: '6rd-relay-prefix', specKeys: ['6rd-relay-prefix'], modes: ['sit'], link: true, change: 'update'},
  {
    field: 'routers',
    label: 'routers',
    specKeys: ['routers'],
    modes: ['isatap'],
    link: false, // `ip tunnel prl` lines of their own
    change: 'update',
    toSpec: (v) => (v as NonNullable<TunnelParams['routers']>).map((r) => (r.default ? r.address : {address: r.address, default: false})),
  },
  {field: 'mtu', label: 'mtu', specKeys: ['mtu'], modes: ALL, link: false, change: 'update', exported: false, device: true},
  {field: 'up', label: 'up', specKeys: ['up'], modes: ALL, default: true, link: false, change: 'update', device: true},
]

export const FIELD_BY_NAME: ReadonlyMap<string, FieldRow> = new Map(FIELDS.map((r) => [r.field, r]))

/** TunnelParams fields in display order (mode excluded). */
export const PARAM_FIELDS: readonly ParamField[] = FIELDS.map((r) => r.field)

/** Fields every mode has. */
export const COMMON_PARAM_FIELDS: ReadonlySet<string> = new Set(FIELDS.filter((r) => r.modes.length === MODES.length).map((r) => r.field))

/** Fields `ip link set … type KIND` carries (everything except mtu/up and out-of-band lists like routers). */
export const LINK_FIELDS: readonly ParamField[] = FIELDS.filter((r) => r.link).map((r) => r.field)

/** Fields of a userspace tunnel that are attributes of its TUN device (ip batch), not encapsulator parameters. */
export const DEVICE_FIELDS: ReadonlySet<string> = new Set(FIELDS.filter((r) => r.device).map((r) => r.field))

/** The label plan and show print for a field (a non-parameter field like 'addresses' is its own label). */
export function fieldLabel(f: string): string {
  return FIELD_BY_NAME.get(f)?.label ?? f
}

/** Spec keys of the parameters a mode accepts beyond the common ones (every mode's keys are COMMON_KEYS). */
export function modeParamKeys(mode: Mode): string[] {
  const keys = FIELDS.filter((r) => r.modes.includes(mode) && r.modes.length !== MODES.length).flatMap((r) => r.specKeys)
  return [...new Set(keys)]
}

/** Spec keys of the parameters every mode accepts. */
export const COMMON_PARAM_KEYS: readonly string[] = [...new Set(FIELDS.filter((r) => r.modes.length === MODES.length).flatMap((r) => r.specKeys))]

/** The field's value when the spec leaves its key out (create rendering leaves such values out). */
export function isDefault(f: string, v: unknown): boolean {
  const r = FIELD_BY_NAME.get(f)
  return r !== undefined && 'default' in r && r.default === v
}

/**
 * Every spec key the params can be written with, before defaults are dropped (export): each field under its key
 * ('inherit' for the inherit value), pairs as one key when both directions agree. mode first.
 */
export function paramsToSpec(p: TunnelParams): Record<string, unknown> {
  const e: Record<string, unknown> = {mode: p.mode}
  for (const r of FIELDS) {
    if (r.exported === false || !r.modes.includes(p.mode)) continue
    const v = p[r.field]
    if (r.pair) {
      if (r.pair.dir === 'output') continue // written with its input half
      const other = FIELDS.find((o) => o.pair?.key === r.pair!.key && o.pair.dir === 'output')!
      const w = p[other.field]
      if (v === undefined && w === undefined) continue
      if (r.pair.split) {
        if (v === w) e[r.pair.key] = v
        else {
          if (v !== undefined) e[r.pair.split] = v
          if (w !== undefined) e[other.pair!.split!] = w
        }
      } else e[r.pair.key] = Boolean(v) === Boolean(w) ? Boolean(v) : {input: Boolean(v), output: Boolean(w)}
      continue
    }
    if (v === undefined) continue
    if (r.field === 'routers' && Array.isArray(v) && v.length === 0) continue
    e[r.specKeys[0]!] = r.inherit !== undefined && v === r.inherit ? 'inherit' : r.toSpec ? r.toSpec(v) : v
  }
  return e
}
