// Pure data types shared by every stage: desired state (from the spec), observed state (from the system), plans.
import type {IpsecParams} from '../ipsec/spec.js'
import type {XfrmObserved} from '../ipsec/xfrm.js'

export const MODES = ['ipip', 'gre', 'sit', 'isatap', 'vti'] as const
export type Mode = (typeof MODES)[number]

export type DriverName = 'kernel' | 'userspace'
export type DriverChoice = 'auto' | DriverName

/** Inner protocol accepted by ipip/sit ("encapsulated:" in the spec, "mode"/"proto" in iproute2). */
export type InnerProto = 'ipip' | 'ip6ip' | 'mplsip' | 'any'

export interface Router {
  address: string
  default: boolean
}

/**
 * Canonical link-level parameters of a tunnel. Both the spec (after defaults) and `ip -j -d link`
 * (after decode) are brought to this form, so a diff is a field-by-field comparison.
 * Fields a mode does not have are left undefined by both sides.
 */
export interface TunnelParams {
  mode: Mode
  local: string // IPv4 dotted quad or 'any'
  remote: string // IPv4 dotted quad or 'any'
  dev?: string // underlay device name; undefined = none
  ttl?: number // 0 = inherit (ipip/gre/sit/isatap); undefined for vti
  tos?: number // 1 = inherit (kernel convention), 0..255 otherwise; undefined for vti
  pmtudisc?: boolean // undefined for vti
  ignoreDf?: boolean // gre only
  ikey?: number // gre, vti: undefined = no key
  okey?: number
  icsum?: boolean // gre only
  ocsum?: boolean
  iseq?: boolean // gre only
  oseq?: boolean
  fwmark: number
  proto?: InnerProto // ipip: ipip|mplsip|any ; sit: ip6ip|ipip|mplsip|any ; isatap: ip6ip
  sixrdPrefix?: string // sit: CIDR, canonical (e.g. '2001:db8::/32'); undefined = not configured
  sixrdRelayPrefix?: string // sit: CIDR, canonical ('0.0.0.0/0' default when 6rd is set)
  routers?: Router[] // isatap potential router list (sorted by address)
  mtu?: number // undefined = kernel default
  up: boolean
}

export interface RouteSpec {
  to: string // canonical CIDR ('0.0.0.0/0' / '::/0' for default)
  via?: string
  metric?: number
  table: number // 254 = main
}

/** One tunnel as the spec wants it. `pointer` is the JSON pointer of its entry (for diagnostics). */
export interface DesiredTunnel {
  name: string
  state: 'present' | 'absent'
  params: TunnelParams
  addresses: string[] // canonical CIDRs, sorted
  routes: RouteSpec[] // sorted
  driver: DriverChoice
  pointer: string
  /** where the tunnel's key stands in the file (for errors found after parsing, e.g. plan conflicts) */
  at?: SourceLocation
  /** JSON pointer of each entry of `routes` (same order) in the file */
  routePointers?: string[]
  /** where each entry of `routes` (same order) stands in the file */
  routeAt?: SourceLocation[]
  /** vti: manually keyed ESP SAs (keys in src/ipsec/keys.ts's side table, never here) */
  ipsec?: IpsecParams
  /** where the ipsec block's key-file value stands in the file */
  keyFileAt?: SourceLocation
  /** where the `dev` value stands in the file */
  devAt?: SourceLocation
}

export interface SourceLocation {
  line: number // 1-based
  column: number // 1-based
  /** the source line and a caret under the column */
  excerpt: string
}

export interface DesiredState {
  file: string
  tunnels: DesiredTunnel[]
}

export interface Counters {
  rxPackets: number
  rxBytes: number
  txPackets: number
  txBytes: number
  rxErrors: number
  txErrors: number
  rxDropped: number
  txDropped: number
  /** userspace encapsulator only: packets dropped by reason (bad_source, bad_key, bad_csum, malformed, seq, …) */
  drops?: Record<string, number>
}

/** The counters of one ESP SA (`ip -s xfrm state`): the inbound one also counts replay-window and integrity failures. */
export interface SaCounters {
  packets: number
  bytes: number
  replay: number
  failed: number
}

export interface ObservedTunnel {
  name: string
  ifindex: number
  driver: DriverName
  params: TunnelParams
  addresses: string[] // canonical CIDRs, sorted (link-local fe80::/64 excluded)
  routes: RouteSpec[] // routes with dev = this tunnel, proto static/boot, excluding kernel-made ones
  owned: boolean // recorded as created by tunctl
  operstate: string
  counters?: Counters
  /** userspace only: encapsulator process id and whether it is alive */
  pid?: number
  alive?: boolean
  /** vti: the tunctl-owned SAs and policies marked with this tunnel's keys, as an ipsec block (no keys) */
  ipsec?: IpsecParams
  /** vti with ipsec: ESP counters of its SAs; out.exhausted (userspace driver): the outbound SA sent 2^32 - 1
   * packets and sends nothing more (its sequence number never wraps): it needs a new spi-out or new keys */
  esp?: {out: Pick<SaCounters, 'packets' | 'bytes'> & {exhausted?: boolean}; in: SaCounters}
}

export interface ObservedState {
  netns?: string
  tunnels: ObservedTunnel[] // every tunnel-like link of the five modes (+ tunctl TUN devices), owned or not
  /** names of all links in the namespace (to detect name clashes with non-tunnel links) */
  links: string[]
  /** kind by link name for every link (e.g. 'veth', 'tun', 'gre') */
  kinds: Record<string, string>
  /**
   * Every route of the namespace by what the kernel keys it on (table, prefix, metric), whatever its device or
   * type: a tunnel route with the same key would replace it (`route replace`) or be refused (`route add`).
   * Absent when routes were not observed.
   */
  routeKeys?: RouteHolder[]
  /** tunctl-owned xfrm SAs/policies (every one, with or without a tunnel) and the (dst, SPI) of foreign SAs; absent when not observed */
  xfrm?: XfrmObserved
}

export interface RouteHolder {
  table: number
  to: string // canonical CIDR
  metric: number
  /** its device; undefined for a route without one (blackhole, unreachable, multipath) */
  dev?: string
  /** its type when not unicast (blackhole, unreachable, local, …) */
  type?: string
}

export type StepKind = 'create' | 'update' | 'replace' | 'delete'

export interface FieldChange {
  field: string // TunnelParams key, or 'addresses' / 'routes' / 'driver' / 'encapsulator'
  from: unknown
  to: unknown
}

export interface PlanStep {
  kind: StepKind
  name: string
  driver: DriverName
  /** why this driver was chosen (auto: kernel supports the mode / module missing → userspace) */
  driverReason?: string
  /** for replace: why it cannot be done in place */
  reason?: string
  changes: FieldChange[]
  desired?: DesiredTunnel
  observed?: ObservedTunnel
  /** vti ipsec: this step's xfrm lines as shown (keys hidden); they run in their own stdin batch (src/ipsec/) */
  xfrmShown?: string[][]
}

export interface Plan {
  steps: PlanStep[]
  counts: {create: number; update: number; replace: number; delete: number}
}
