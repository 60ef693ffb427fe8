// What a kernel tunnel device looks like from the namespace, reproduced on a userspace tunnel's TUN device
// (issue #6 item 3): the IPv6 link-local addresses addrconf gives it when it comes up, and the MTU the kernel picks
// when none is configured. Pure rules first (unit-tested: test/unit/userspace/kernel-twin.test.ts), then the small
// impure part the engine calls once per transaction. Linux 6.1 (net/ipv6/addrconf.c, net/ipv4/ip_tunnel.c, net/ipv6/sit.c), checked
// in user-mode-linux 6.1.176 (see native/README.md "Kernel twin").
import ipaddr from 'ipaddr.js'
import {parseIpJson} from '../lib/ip.js'
import {runSync} from '../lib/exec.js'

export type TwinMode = 'ipip' | 'gre' | 'sit' | 'isatap'

export interface TwinParams {
  mode: string
  local: string // 'any' or a.b.c.d
  remote: string
  dev?: string
  okey?: number
  ocsum?: boolean
  oseq?: boolean
}

/** An IPv4 address of the namespace as addrconf's add_v4_addrs walks them (up devices only). */
export interface V4Addr {
  local: string
  scope: 'global' | 'link' | 'host' | string
}

/** One address addrconf adds (CIDR form) */
export interface TwinAddress {
  address: string
  prefixlen: number
}

/**
 * __ipv6_isatap_ifid (include/net/addrconf.h): the interface identifier 0:5efe:a.b.c.d, with 0x02 in its first
 * byte (…::200:5efe:…) unless the address is private, loopback, link-local, 6to4 anycast, documentation
 * (192.0.2.0/24), benchmarking (198.18.0.0/15), multicast or limited broadcast. Undefined for 0.0.0.0.
 */
export function isatapInterfaceId(v4: string): string | undefined {
  const a = ipaddr.IPv4.parse(v4)
  const [b0, b1, b2] = a.octets as [number, number, number, number]
  if (a.toString() === '0.0.0.0') return undefined
  const local =
    b0 === 0 || // ipv4_is_zeronet
    b0 === 10 || // private_10
    b0 === 127 || // loopback
    (b0 === 169 && b1 === 254) || // linklocal_169
    (b0 === 172 && (b1 & 0xf0) === 16) || // private_172
    (b0 === 192 && b1 === 0 && b2 === 2) || // test_192
    (b0 === 192 && b1 === 88 && b2 === 99) || // anycast_6to4
    (b0 === 192 && b1 === 168) || // private_192
    (b0 === 198 && (b1 & 0xfe) === 18) || // test_198
    (b0 & 0xf0) === 0xe0 || // multicast
    a.toString() === '255.255.255.255' // lbcast
  const h = (i: number) => ((a.octets[i]! << 8) | a.octets[i + 1]!).toString(16)
  return `${local ? '0' : '200'}:5efe:${h(0)}:${h(2)}`
}

const fe80 = (iid: string): TwinAddress => ({address: ipaddr.parse(`fe80::${iid}`).toString(), prefixlen: 64})
const v4tail = (v4: string) => {
  const o = ipaddr.IPv4.parse(v4).octets
  return `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`
}

/**
 * The IPv6 addresses addrconf gives the kernel's device for these parameters on NETDEV_UP (addrconf_notify):
 * - ipip (ARPHRD_TUNNEL) → addrconf_dev_config → addrconf_addr_gen: fe80::<isatap id of local>/64 (none with
 *   local any: addrconf_ifid_gre fails on 0.0.0.0);
 * - gre (ARPHRD_IPGRE) → addrconf_gre_config: the same with a local address; with local any, add_v4_addrs:
 *   fe80::a.b.c.d/64 for each IPv4 address of each up device, link scope skipped, host scope skipped when
 *   point-to-point (a remote is set);
 * - isatap (ARPHRD_SIT, IFF_ISATAP) → addrconf_sit_config → addrconf_addr_gen: fe80::<isatap id of local>/64;
 * - sit → addrconf_sit_config → add_v4_addrs: point-to-point (remote set): fe80::<local>/64, or with local any
 *   fe80::a.b.c.d/64 per address as for gre; NBMA (remote any): ::<local>/96 (IPv4-compatible), or per address.
 */
export function kernelIpv6Addresses(p: TwinParams, v4: V4Addr[]): TwinAddress[] {
  const local = p.local === 'any' ? undefined : p.local
  const p2p = p.remote !== 'any'
  if (p.mode === 'ipip' || p.mode === 'isatap' || (p.mode === 'gre' && local)) {
    const iid = local && isatapInterfaceId(local)
    return iid ? [fe80(iid)] : []
  }
  if (p.mode !== 'gre' && p.mode !== 'sit') return []
  const compat = p.mode === 'sit' && !p2p
  const one = (a: string): TwinAddress => (compat ? {address: `::${v4tail(a)}`, prefixlen: 96} : fe80(v4tail(a)))
  if (local) return [one(local)]
  const out: TwinAddress[] = []
  for (const a of v4) {
    if (a.scope === 'link') continue
    if (a.scope === 'host' && p2p) continue
    out.push(one(a.local))
  }
  return out
}

/**
 * The MTU the kernel gives the tunnel without a configured one (ip_tunnel_bind_dev; sit: ipip6_tunnel_bind_dev):
 * tdevMtu is the MTU of the device the route to the remote leaves by, or of `dev` (undefined: no such device).
 * ipip/gre: min(tdev mtu, IP_MAX_MTU) − 20 − GRE header, floor 68, 1500 − headers without a device; sit/isatap:
 * tdev mtu − 20, floor 1280, 1480 without a device. A multicast-remote gre gets 1472 over 1500 through its key (the
 * gre driver keys it by its group when none is given, as iproute2 does), not through the hard_header_len
 * ipgre_tunnel_init gives it: ip_tunnel_bind_dev subtracts only t_hlen for non-Ethernet devices since 5.11
 * (28e104d00281; measured in UML 6.1: the differential's multicast scenario and prec_gre's remote-any siblings).
 */
export function kernelDefaultMtu(p: TwinParams, tdevMtu: number | undefined): number {
  const hlen = p.mode === 'gre' ? 4 + 4 * (Number(p.okey !== undefined) + Number(Boolean(p.ocsum)) + Number(Boolean(p.oseq))) : 0
  if (p.mode === 'sit' || p.mode === 'isatap') {
    if (tdevMtu === undefined) return 1480
    return Math.max(1280, tdevMtu - 20)
  }
  const base = tdevMtu === undefined ? 1500 : Math.min(tdevMtu, 0xfff0)
  return Math.max(68, base - 20 - hlen)
}

/** One device as `ip -j addr show` lists it (the parts the kernel view reads). */
export interface LinkView {
  ifname: string
  up: boolean
  mtu?: number
  addrs: {family: string; local: string; prefixlen: number; scope: string}[]
}

/** `ip -j addr show` (every device of the namespace, one read): name → its flags, MTU and addresses. */
export function linkViews(json: unknown): Map<string, LinkView> {
  const out = new Map<string, LinkView>()
  for (const l of Array.isArray(json) ? json : []) {
    if (typeof l?.ifname !== 'string') continue
    const addrs = (Array.isArray(l.addr_info) ? l.addr_info : []).filter((a: any) => typeof a?.local === 'string')
    out.set(l.ifname, {ifname: l.ifname, up: Array.isArray(l.flags) && l.flags.includes('UP'), ...(typeof l.mtu === 'number' ? {mtu: l.mtu} : {}), addrs})
  }
  return out
}

/** The `route get` a tunnel's underlay MTU is read from (ip_tunnel_bind_dev: the route to the remote from local via
 * dev), or undefined when the remote is any. */
export function routeQuery(p: TwinParams): string | undefined {
  if (p.remote === 'any') return undefined
  return ['route get', p.remote, ...(p.local !== 'any' ? ['from', p.local] : []), ...(p.dev ? ['oif', p.dev] : [])].join(' ')
}

/**
 * The answers of `ip -j -force -batch` to distinct route queries (one JSON array per line, none for a query that
 * failed, e.g. no route): query → the device the route leaves by. An answer belongs to the first unanswered query
 * at or after the previous answer's whose destination it names.
 */
export function routeDevices(queries: string[], output: string): Map<string, string> {
  const out = new Map<string, string>()
  let q = 0
  for (const line of output.split('\n')) {
    if (!line.trim()) continue
    let r: any
    try {
      r = (parseIpJson(line) as any[])?.[0]
    } catch {
      continue
    }
    while (q < queries.length && queries[q]!.split(' ')[2] !== r?.dst) q++
    if (q === queries.length) break
    if (typeof r?.dev === 'string') out.set(queries[q]!, r.dev)
    q++
  }
  return out
}

/** A userspace tunnel whose TUN device is to look like the kernel's device. */
export interface TwinTunnel {
  name: string
  params: TwinParams & {mtu?: number}
  /** set the kernel's default MTU (start, reload) as well as the addresses (device coming up) */
  withMtu: boolean
}

/**
 * The `ip -batch` lines that make the tunnels' TUN devices look like the kernel's (pure; `links` from linkViews,
 * `routeDev` from routeDevices):
 * - addrgenmode none: the kernel's own addrconf leaves the TUN device alone (an ARPHRD_NONE device gets a random
 *   link-local, which no kernel tunnel has);
 * - when the device is up (addrconf adds them on NETDEV_UP and removes them on NETDEV_DOWN): a link-scope address
 *   that is not one of the kernel's is deleted, and the kernel's are added (together: one NETDEV_UP). The
 *   IPv4-compatible ::a.b.c.d/96 of an NBMA sit is not added (native/README.md: observe would report it as the
 *   user's address);
 * - withMtu and no configured MTU: the kernel's default MTU (kernelDefaultMtu of the route's device, else dev's).
 */
export function kernelViewLines(tunnels: TwinTunnel[], links: Map<string, LinkView>, routeDev: Map<string, string>): string[] {
  const v4: V4Addr[] = []
  for (const l of links.values()) if (l.up) for (const a of l.addrs) if (a.family === 'inet') v4.push({local: a.local, scope: a.scope})
  const key = (a: string, l: number) => `${ipaddr.parse(a).toString()}/${l}`
  const lines: string[] = []
  for (const t of tunnels) {
    const {name, params: p} = t
    const link = links.get(name)
    if (!link) continue // gone: nothing to make look like anything
    lines.push(`link set dev ${name} addrgenmode none`)
    if (link.up) {
      const needsV4 = p.local === 'any' && (p.mode === 'gre' || p.mode === 'sit')
      const want = kernelIpv6Addresses(p, needsV4 ? v4 : []).filter((a) => a.prefixlen === 64)
      const wantKeys = new Set(want.map((a) => key(a.address, a.prefixlen)))
      const have = link.addrs.filter((a) => a.family === 'inet6')
      for (const a of have) {
        if (a.scope === 'link' && !wantKeys.has(key(a.local, a.prefixlen))) lines.push(`addr del ${a.local}/${a.prefixlen} dev ${name}`)
      }
      const haveKeys = new Set(have.map((a) => key(a.local, a.prefixlen)))
      for (const a of want) if (!haveKeys.has(key(a.address, a.prefixlen))) lines.push(`addr add ${a.address}/${a.prefixlen} dev ${name}`)
    }
    if (t.withMtu && p.mtu === undefined) {
      const q = routeQuery(p)
      const tdev = (q && routeDev.get(q)) || p.dev
      const mtu = kernelDefaultMtu(p, tdev ? links.get(tdev)?.mtu : undefined)
      if (mtu !== link.mtu) lines.push(`link set dev ${name} mtu ${mtu}`)
    }
  }
  return lines
}

/**
 * The kernel view of a device the engine has just created and configures itself in its commit (native/nlbatch.c),
 * without ip: addrgenmode none was set when it was made (so it has no link-scope address of its own); the link-local
 * addresses addrconf would add when it comes up (kernelIpv6Addresses, the /64 ones as kernelViewLines adds them) and,
 * without a configured MTU, the kernel's default (tdevMtu: the MTU of the device the route to the remote leaves by,
 * else of `dev`, as kernelViewLines picks it). Undefined when the addresses depend on the namespace's IPv4 addresses
 * (local any for gre and sit): kernelViewLines does those.
 */
export function createdDeviceView(p: TwinParams & {mtu?: number}, up: boolean, tdevMtu: number | undefined): {linkLocal: string[]; mtu?: number} | undefined {
  if (p.local === 'any' && (p.mode === 'gre' || p.mode === 'sit')) return undefined
  const linkLocal = up ? kernelIpv6Addresses(p, []).filter((a) => a.prefixlen === 64).map((a) => `${a.address}/${a.prefixlen}`) : []
  return {linkLocal, ...(p.mtu === undefined ? {mtu: kernelDefaultMtu(p, tdevMtu)} : {})}
}

// ---- impure: the engine's calls (it runs inside the tunnels' namespace), batched per transaction ----


/**
 * Called by the engine for the tunnels a transaction added or changed (withMtu) and for those whose device came up:
 * three `ip` runs whatever the number of tunnels (read the devices, the route queries, one `ip -force -batch` of
 * every change). Returns errors as text.
 */
export function applyKernelView(tunnels: TwinTunnel[]): string[] {
  if (!tunnels.length) return []
  const errors: string[] = []
  const ls = runSync('ip', ['-j', 'addr', 'show'])
  if (ls.exitCode !== 0) return [`ip -j addr show: ${ls.stderr.trim()}`]
  let links: Map<string, LinkView>
  try {
    links = linkViews(parseIpJson(ls.stdoutBytes))
  } catch (e) {
    return [`ip -j addr show: ${e instanceof Error ? e.message : String(e)}`]
  }
  const queries = [...new Set(tunnels.filter((t) => t.withMtu && t.params.mtu === undefined).map((t) => routeQuery(t.params)).filter((q): q is string => !!q))]
  let routeDev = new Map<string, string>()
  if (queries.length) {
    // a query without a route answers nothing (stderr): like the kernel, that tunnel falls back to dev
    const r = runSync('ip', ['-j', '-force', '-batch', '-'], {input: queries.join('\n') + '\n'})
    if (r.exitCode === 127) errors.push(`ip -batch (${queries.length} route queries): ${r.stderr.trim()}`)
    else routeDev = routeDevices(queries, r.stdout)
  }
  const lines = kernelViewLines(tunnels, links, routeDev)
  if (lines.length) {
    const r = runSync('ip', ['-force', '-batch', '-'], {input: lines.join('\n') + '\n'})
    if (r.exitCode !== 0) errors.push(`ip -batch (${lines.length} lines): ${r.stderr.trim()}`)
  }
  return errors
}
