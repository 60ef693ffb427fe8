// Loads the native encapsulator addon (build/Release/tunctl_native.node) and types its exports.
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {TunnelParams} from '../model/types.js'

export interface NativeCounters {
  rxPackets: number
  rxBytes: number
  txPackets: number
  txBytes: number
  rxErrors: number
  txErrors: number
  rxDropped: number
  txDropped: number
  icmpSent: number
  /** TUN opened with IFF_VNET_HDR (TSO segmentation on TX, TCP coalescing on RX) */
  offload: boolean
  /** the TUN device was deleted under the engine; it forgets the tunnel */
  deviceGone: boolean
  tsoSegments: number
  groMerged: number
  /** received packets the receive dispatch gave another userspace tunnel of the namespace (not counted as drops) */
  otherTunnel: number
  /** kernel twin: routing loops dropped (the kernel device's collisions counter) */
  collisions: number
  /** kernel twin: ICMP errors about this tunnel's outer packets acted on (path MTU, err_count, ICMPv6 relay) */
  icmpErrors: number
  /** by reason: malformed, truncated, bad_proto, bad_source, bad_dest, bad_key, bad_csum, csum_flags, seq, gre_flags,
   * inner_proto, inner_malformed, ecn, spoofed, no_tunnel, tx_malformed, tx_inner_proto, tx_no_route, tx_too_big */
  drops: Record<string, number>
  /** vti only (native/vti.c): ESP counters, last outbound sequence number, its reservation, whether it has an SA */
  esp?: {txPackets: number; txBytes: number; rxPackets: number; rxBytes: number; txSeq: number; seqLimit: number; hasSa: number}
}

export interface EncapResult {
  result: 'send' | 'icmp' | 'drop'
  packet?: Buffer
  dst?: string
  reason?: string
  oseqno: number
}

export interface DecapResult {
  ok: boolean
  reason: string
  inner?: Buffer
  iseqno: number
}

/** Config accepted by the addon: TunnelParams plus the underlay device. */
export type NativeParams = Partial<TunnelParams> & {mode: TunnelParams['mode']}

export interface NativeAddon {
  openTun(name: string, opts?: {vnetHdr?: boolean}): number
  /** the namespace's engine (one per process): protocol sockets and the fixed pool of packet threads */
  engineStart(): void
  /** stops the packet threads; the TUN devices stay */
  engineStop(): void
  /** adds a tunnel: opens (creating, ownership mark first) its persistent TUN device; throws the reason.
   * opts.esp (vti): the SA, native/addon.c vti_setup; its key Buffers are wiped, the process made non-dumpable */
  engineAdd(name: string, params: NativeParams, opts?: {offload?: boolean; esp?: Record<string, unknown>}): void
  /** new parameters in place: counters, sequence numbers and the device are kept (a vti gets the new SA of
   * opts.esp, or none); throws the reason */
  engineChange(name: string, params: NativeParams, opts?: {esp?: Record<string, unknown>}): void
  /** sets the MTU, addresses (CIDRs; linkLocal: the kernel twin's, a best effort) and up state of tunnels' devices
   * (those a commit created) in one netlink batch: per entry null, or why its device refused one
   * (native/engine.c tunctl_engine_configure) */
  engineConfigure(devices: Array<{name: string; mtu?: number; addresses: string[]; linkLocal?: string[]; up: boolean}>): Array<string | null>
  /** the MTU of the device the route to remote (from local unless 'any', through dev) leaves by; null: no route */
  routeDeviceMtu(remote: string, local: string, dev?: string): number | null
  /** removes a tunnel (removeDevice: its TUN device too); false if the engine has none of that name */
  engineRemove(name: string, removeDevice: boolean): boolean
  /** a tunnel's counters, or null */
  engineStats(name: string): NativeCounters | null
  /** vti: outbound sequence numbers reserved up to limit */
  engineVtiSeqLimit(name: string, limit: number): void
  /** vti: the outer packet a userspace vti with this SA sends for inner (tests; the key Buffers are wiped) */
  vtiEncapForTest(params: NativeParams, opts: {esp: Record<string, unknown>}, inner: Buffer): Buffer
  /** vti: what a userspace vti with this SA does with one received outer packet (tests; the key Buffers are wiped) */
  vtiDecapForTest(params: NativeParams, opts: {esp: Record<string, unknown>}, outer: Buffer): {result: string; inner?: Buffer}
  removeTun(name: string): void
  encapForTest(params: NativeParams, inner: Buffer, oseqno?: number): EncapResult
  decapForTest(params: NativeParams, outer: Buffer, iseqno?: number): DecapResult
  rawSend(packet: Buffer): number
  defaultMtu(params: NativeParams): number
  /** TSO segmentation of a TCP packet as the TX thread does it; null if not TCP */
  tsoForTest(packet: Buffer, mss: number): Buffer[] | null
  /** what the RX thread writes to TUN for consecutive inner packets (coalesced GSO writes or single packets) */
  groForTest(packets: Buffer[]): GroWrite[]
}

export interface GroWrite {
  packet: Buffer
  gsoType: number // 0 none, 1 TCPv4, 4 TCPv6
  gsoSize: number
  hdrLen: number
  csumStart: number
  csumOffset: number
  flags: number // 1 = NEEDS_CSUM
  segments: number
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const ADDON_PATH = join(root, 'build', 'Release', 'tunctl_native.node')

let cached: NativeAddon | undefined

/** Whether the addon was built (npm install runs scripts/build-native.mjs). */
export function addonAvailable(): boolean {
  return existsSync(ADDON_PATH)
}

export function loadAddon(): NativeAddon {
  if (!cached) {
    if (!addonAvailable()) {
      throw new Error(`userspace encapsulator addon not built (${ADDON_PATH}); run: node scripts/build-native.mjs`)
    }
    cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon
  }
  return cached
}
