// The contract every mode driver implements (one file per mode), and the userspace driver's contract.
import type {Mode, Router, TunnelParams} from '../model/types.js'

/** A tunnel entry of the spec after schema validation, keys exactly as written in YAML. */
export type RawTunnelSpec = Record<string, any>

/** A semantic problem found by a driver; `pointer` is relative to the tunnel entry (e.g. '/key'). */
export interface DriverDiagnostic {
  pointer: string
  message: string
}

/** One element of `ip -j -d link show` output. */
export type IpLink = Record<string, any>

/** What decode may use beyond the link itself (observe fills it). */
export interface DecodeContext {
  /** ifindex → name, to resolve an underlay given as an index */
  byIndex?: Map<number, string>
  /** isatap potential router lists by tunnel name (from `ip tunnel show`, the only place the kernel reports them) */
  prl?: Map<string, Router[]>
}

export interface ModeDriver {
  mode: Mode
  /** iproute2 link kind (`ip link add … type KIND`); isatap is 'sit' */
  kind: string
  /** kernel modules that provide the mode */
  modules: string[]
  /** the kernel's fallback device for the module in every namespace (tunl0, gre0, sit0, ip_vti0) */
  fallbackDevice: string
  /** spec keys this mode accepts beyond the common ones (name-independent: mode, state, local, remote, dev, fwmark, mtu, up, addresses, routes, driver) */
  keys: readonly string[]
  /** semantic checks of one entry (schema already passed) */
  validate(spec: RawTunnelSpec): DriverDiagnostic[]
  /** spec entry → canonical params with defaults filled */
  normalize(spec: RawTunnelSpec): TunnelParams
  /** why `from` → `to` cannot be changed in place, or undefined if it can */
  replaceReason(from: TunnelParams, to: TunnelParams): string | undefined
  /** ip argv lines (without leading `ip`) creating the link; mtu included, not brought up */
  encodeCreate(name: string, p: TunnelParams): string[][]
  /** ip argv lines changing the link in place (`link set dev NAME type KIND …`, mtu, prl) */
  encodeUpdate(name: string, from: TunnelParams, to: TunnelParams): string[][]
  /** `ip -j -d link show` entry → params, or undefined if the link is not of this mode */
  decode(link: IpLink, ctx?: DecodeContext): TunnelParams | undefined
}
