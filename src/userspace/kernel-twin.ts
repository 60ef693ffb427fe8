// What a kernel tunnel device looks like from the namespace, reproduced on a userspace tunnel's TUN device
// (issue #6 item 3): the IPv6 link-local addresses addrconf gives it when it comes up, and the MTU the kernel picks
// when none is configured. Pure rules first (unit-tested: test/unit/userspace/kernel-twin.test.ts), then the small
// impure part the daemon calls. Linux 6.1 (net/ipv6/addrconf.c, net/ipv4/ip_tunnel.c, net/ipv6/sit.c), checked
// in user-mode-linux 6.1.176 (see native/README.md "Kernel twin").
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import ipaddr from 'ipaddr.js'
import {parseIpJson} from '../lib/ip.js'

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
 * tdev mtu − 20, floor 1280, 1480 without a device.
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

// ---- impure: the daemon's calls (it runs inside the tunnel's namespace) ----

function ipj(args: string[]): any {
  return parseIpJson(execFileSync('ip', ['-j', ...args], {stdio: ['ignore', 'pipe', 'pipe']}))
}

function sysMtu(dev: string): number | undefined {
  try {
    const v = Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8').trim())
    return Number.isFinite(v) ? v : undefined
  } catch {
    return undefined
  }
}

/** The underlay device ip_tunnel_bind_dev finds: the route to the remote (from local, via dev), else dev. */
export function underlayMtu(p: TwinParams): number | undefined {
  if (p.remote !== 'any') {
    const args = ['route', 'get', p.remote]
    if (p.local !== 'any') args.push('from', p.local)
    if (p.dev) args.push('oif', p.dev)
    try {
      const r = ipj(args)?.[0]
      if (typeof r?.dev === 'string') return sysMtu(r.dev)
    } catch {
      // no route: like the kernel, fall back to dev
    }
  }
  return p.dev ? sysMtu(p.dev) : undefined
}

/** IPv4 addresses of the up devices of the namespace (for add_v4_addrs). */
export function namespaceV4(): V4Addr[] {
  const out: V4Addr[] = []
  for (const l of ipj(['-4', 'addr', 'show', 'up']) ?? []) {
    for (const a of l?.addr_info ?? []) if (a?.family === 'inet' && typeof a.local === 'string') out.push({local: a.local, scope: a.scope})
  }
  return out
}

/**
 * Called by the daemon: stops the kernel's own addrconf for the TUN device (an ARPHRD_NONE device gets a random
 * link-local, which no kernel tunnel has) and adds what addrconf gives the kernel's device. Only when the device is
 * up (addrconf adds them on NETDEV_UP and removes them on NETDEV_DOWN). The IPv4-compatible ::a.b.c.d/96 of an
 * NBMA sit is not added (native/README.md: observe would report it as the user's address). Returns errors as text.
 */
export function applyKernelAddresses(name: string, p: TwinParams, up: boolean): string[] {
  const errors: string[] = []
  const run = (args: string[]) => {
    try {
      execFileSync('ip', args, {stdio: 'pipe'})
    } catch (e: any) {
      errors.push(`ip ${args.join(' ')}: ${String(e.stderr ?? e.message).trim()}`)
    }
  }
  run(['link', 'set', 'dev', name, 'addrgenmode', 'none'])
  if (!up) return errors
  let have: {local: string; prefixlen: number; scope: string}[] = []
  try {
    have = (ipj(['-6', 'addr', 'show', 'dev', name])?.[0]?.addr_info ?? []).filter((a: any) => a?.family === 'inet6')
  } catch (e: any) {
    errors.push(`ip -6 addr show dev ${name}: ${String(e.stderr ?? e.message).trim()}`)
  }
  const needsV4 = p.local === 'any' && (p.mode === 'gre' || p.mode === 'sit')
  const want = kernelIpv6Addresses(p, needsV4 ? namespaceV4() : []).filter((a) => a.prefixlen === 64)
  const key = (a: string, l: number) => `${ipaddr.parse(a).toString()}/${l}`
  const wantKeys = new Set(want.map((a) => key(a.address, a.prefixlen)))
  for (const a of have) {
    // the random link-local the TUN got before addrgenmode none (fe80::/64, not one of the kernel's)
    if (a.scope === 'link' && !wantKeys.has(key(a.local, a.prefixlen))) run(['-6', 'addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', name])
  }
  const haveKeys = new Set(have.map((a) => key(a.local, a.prefixlen)))
  // one `ip -batch` for all of them: they appear together, as addrconf adds them in one NETDEV_UP
  const lines = want.filter((a) => !haveKeys.has(key(a.address, a.prefixlen))).map((a) => `addr add ${a.address}/${a.prefixlen} dev ${name}\n`)
  if (lines.length) {
    try {
      execFileSync('ip', ['-force', '-batch', '-'], {input: lines.join(''), stdio: ['pipe', 'pipe', 'pipe']})
    } catch (e: any) {
      errors.push(`ip -batch (${lines.length} addresses): ${String(e.stderr ?? e.message).trim()}`)
    }
  }
  return errors
}

/** Called by the daemon after the data plane started: the kernel's default MTU when the spec sets none. */
export function applyKernelMtu(name: string, p: TwinParams & {mtu?: number}): string | undefined {
  if (p.mtu !== undefined) return undefined
  const mtu = kernelDefaultMtu(p, underlayMtu(p))
  try {
    execFileSync('ip', ['link', 'set', 'dev', name, 'mtu', String(mtu)], {stdio: 'pipe'})
  } catch (e: any) {
    return `setting mtu ${mtu}: ${String(e.stderr ?? e.message).trim()}`
  }
  return undefined
}
