// sit: IPv6 (or IPv4/MPLS) over IPv4, kernel module sit, kind 'sit', fallback device sit0; optional 6rd.
import type {TunnelParams} from '../model/types.js'
import {canonicalCidr, hostBitsZero, parseCidr} from '../net/addr.js'
import type {DriverDiagnostic, RawTunnelSpec} from './contract.js'
import {diag} from './common.js'
import {IptunVariant, makeIptunDriver} from './iptun.js'

/** The kernel's 6rd default on every sit device (what `6rd-reset` restores): 2002::/16, relay 0.0.0.0/0. */
export const SIXRD_DEFAULT = {prefix: '2002::/16', relay: '0.0.0.0/0'}

function validate6rd(spec: RawTunnelSpec): DriverDiagnostic[] {
  const out: DriverDiagnostic[] = []
  const pre = spec['6rd-prefix']
  const rel = spec['6rd-relay-prefix']
  if (rel !== undefined && pre === undefined) out.push(diag('/6rd-relay-prefix', '6rd-relay-prefix needs 6rd-prefix'))
  let plen: number | undefined
  if (pre !== undefined) {
    const c = parseCidr(pre, false)
    if (!c || c.family !== 6) out.push(diag('/6rd-prefix', `6rd-prefix must be an IPv6 prefix (e.g. 2001:db8::/32)`))
    else if (!hostBitsZero(c)) out.push(diag('/6rd-prefix', `6rd-prefix ${pre} has bits set beyond /${c.prefix} (the kernel refuses it)`))
    else plen = c.prefix
    const proto = spec.encapsulated ?? 'ip6ip'
    if (proto !== 'ip6ip' && proto !== 'any') out.push(diag('/6rd-prefix', `6rd maps IPv6 into IPv4: it needs encapsulated ip6ip or any, not ${proto}`))
  }
  if (rel !== undefined) {
    const c = parseCidr(rel, false)
    if (!c || c.family !== 4) out.push(diag('/6rd-relay-prefix', `6rd-relay-prefix must be an IPv4 prefix (e.g. 192.0.2.0/24)`))
    else if (!hostBitsZero(c)) out.push(diag('/6rd-relay-prefix', `6rd-relay-prefix ${rel} has bits set beyond /${c.prefix} (the kernel refuses it)`))
    else if (c.prefix > 0 && c.address.toString() === '0.0.0.0') {
      // the kernel would take it, but iproute2 prints no relay prefix whose address is 0.0.0.0 (nor its length),
      // so it could not be read back and verified; 0.0.0.0/N is "this network", no relay's real prefix
      out.push(diag('/6rd-relay-prefix', `6rd-relay-prefix ${rel}: a relay prefix of 0.0.0.0 with a length cannot be read back (iproute2 does not show it); use 0.0.0.0/0 (no common bits) or the relays' real prefix`))
    }
    else if (plen !== undefined && plen + (32 - c.prefix) > 64) {
      out.push(diag('/6rd-relay-prefix', `6rd prefix length ${plen} plus the ${32 - c.prefix} embedded IPv4 bits exceeds 64 (the kernel refuses it)`))
    }
  } else if (plen !== undefined && plen + 32 > 64) {
    out.push(diag('/6rd-prefix', `6rd prefix length ${plen} plus 32 embedded IPv4 bits exceeds 64; set 6rd-relay-prefix or use a shorter prefix`))
  }
  return out
}

export const sitVariant: IptunVariant = {
  mode: 'sit',
  kind: 'sit',
  protos: ['ip6ip', 'ipip', 'mplsip', 'any'],
  defaultProto: 'ip6ip',
  isatap: false,
  validateExtra: validate6rd,
  normalizeExtra(spec: RawTunnelSpec, p: TunnelParams) {
    if (spec['6rd-prefix'] === undefined) return
    const prefix = canonicalCidr(spec['6rd-prefix'])
    const relay = spec['6rd-relay-prefix'] !== undefined ? canonicalCidr(spec['6rd-relay-prefix']) : SIXRD_DEFAULT.relay
    // the kernel's default 6rd configuration is "not configured"
    if (prefix === SIXRD_DEFAULT.prefix && relay === SIXRD_DEFAULT.relay) return
    p.sixrdPrefix = prefix
    p.sixrdRelayPrefix = relay
  },
  encodeExtra(p: TunnelParams, update: boolean) {
    if (p.sixrdPrefix !== undefined) return ['6rd-prefix', p.sixrdPrefix, '6rd-relay_prefix', p.sixrdRelayPrefix ?? SIXRD_DEFAULT.relay]
    // not `6rd-reset`: it crashes iproute2 6.1 (SIGSEGV); the kernel default written explicitly does the same
    return update ? ['6rd-prefix', SIXRD_DEFAULT.prefix, '6rd-relay_prefix', SIXRD_DEFAULT.relay] : []
  },
  decodeExtra(_link, d, p) {
    if (!d.prefixlen || typeof d.prefix !== 'string') return
    const prefix = canonicalCidr(`${d.prefix}/${d.prefixlen}`)
    const relay = d.relay_prefix ? canonicalCidr(`${d.relay_prefix}/${d.relay_prefixlen ?? 0}`) : SIXRD_DEFAULT.relay
    if (prefix === SIXRD_DEFAULT.prefix && relay === SIXRD_DEFAULT.relay) return
    p.sixrdPrefix = prefix
    p.sixrdRelayPrefix = relay
  },
}

export const sit = makeIptunDriver(sitVariant)
