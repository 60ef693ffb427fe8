// gre: GRE over IPv4 (kernel module ip_gre, kind 'gre', fallback device gre0): keys, checksums, sequence numbers, ignore-df.
import type {TunnelParams} from '../model/types.js'
import {modeParamKeys} from '../model/fields.js'
import {isIPv4, parseIP} from '../net/addr.js'
import {keyFromDottedQuad, keysOf, parseKey} from '../net/key.js'
import type {DriverDiagnostic, ModeDriver} from './contract.js'
import {diag, maxMtu, pairOf, validateKeys} from './common.js'
import {makeTunnelDriver} from './tunnel.js'

const KEYS = modeParamKeys('gre') // the field table's keys for gre

function isMulticast(a: string): boolean {
  // a dotted quad: ipaddr.js's multicast range 224.0.0.0/4 read off its first octet (asked 3 times per gre tunnel)
  if (isIPv4(a)) {
    const first = Number(a.slice(0, a.indexOf('.')))
    return first >= 224 && first <= 239
  }
  return parseIP(a)?.range() === 'multicast'
}

function remoteClass(r: string): string {
  return r === 'any' ? 'any' : isMulticast(r) ? 'multicast' : 'unicast'
}

const FLAG_NAMES: [keyof TunnelParams, string][] = [
  ['ikey', 'input key'],
  ['okey', 'output key'],
  ['icsum', 'input checksum'],
  ['ocsum', 'output checksum'],
  ['iseq', 'input sequence numbers'],
  ['oseq', 'output sequence numbers'],
]

function flagOn(p: TunnelParams, k: keyof TunnelParams): boolean {
  return k === 'ikey' || k === 'okey' ? p[k] !== undefined : p[k] === true
}

/**
 * The input key the kernel tells a gre tunnel apart by (ip_tunnel_find), from a spec entry as written: its
 * input-key or key, else (also for key 0) its group when the remote is multicast, as iproute2 keys it (extra below).
 */
export function greInputKey(entry: {key?: unknown; 'input-key'?: unknown; remote?: unknown}): number | undefined {
  const k = parseKey(entry['input-key'] ?? entry.key)
  if (k) return k
  const r = entry.remote
  if (typeof r === 'string' && r !== 'any' && isIPv4(r) && isMulticast(r)) return parseKey(r)
  return k
}

export const gre: ModeDriver = makeTunnelDriver({
  mode: 'gre',
  kind: 'gre',
  keys: KEYS,
  outer: true,

  maxMtu(spec) {
    const okey = spec.key !== undefined || spec['output-key'] !== undefined || (typeof spec.remote === 'string' && isMulticast(spec.remote))
    return maxMtu('gre', 4 + (pairOf(spec.csum).output ? 4 : 0) + (okey ? 4 : 0) + (pairOf(spec.seq).output ? 4 : 0))
  },

  validate(spec, common) {
    const out: DriverDiagnostic[] = [...common, ...validateKeys(spec)]
    if (spec['ignore-df'] === true && spec.pmtudisc !== false) {
      out.push(diag('/ignore-df', 'ignore-df needs pmtudisc: false (the kernel refuses ignore-df while path MTU discovery sets DF)'))
    }
    for (const k of ['csum', 'seq']) {
      const v = spec[k]
      if (v === undefined || typeof v === 'boolean') continue
      if (typeof v !== 'object' || v === null || Object.keys(v).some((x) => x !== 'input' && x !== 'output')) {
        out.push(diag('/' + k, `${k} must be true, false or {input: bool, output: bool}`))
      }
    }
    if (typeof spec.remote === 'string' && spec.remote !== 'any' && isMulticast(spec.remote)) {
      if (spec.local === undefined || spec.local === 'any') out.push(diag('/remote', `a multicast remote needs a local address (iproute2: "A broadcast tunnel requires a source address")`))
    }
    return out
  },

  own(spec) {
    const csum = pairOf(spec.csum)
    const seq = pairOf(spec.seq)
    return {ignoreDf: spec['ignore-df'] ?? false, ...keysOf(spec), icsum: csum.input, ocsum: csum.output, iseq: seq.input, oseq: seq.output}
  },

  extra(_spec, p) {
    // iproute2 keys a multicast tunnel by its group when no key, or key 0, is given (ip/link_gre.c:
    // `if (!ikey && IN_MULTICAST(ntohl(daddr)))`, the same for okey)
    if (p.remote !== 'any' && isMulticast(p.remote)) {
      const g = parseKey(p.remote)
      if (!p.ikey) p.ikey = g
      if (!p.okey) p.okey = g
    }
  },

  decodeOwn: (d) => ({
    ignoreDf: !!d.ignore_df,
    ikey: typeof d.ikey === 'string' ? keyFromDottedQuad(d.ikey) : undefined,
    okey: typeof d.okey === 'string' ? keyFromDottedQuad(d.okey) : undefined,
    icsum: !!d.icsum,
    ocsum: !!d.ocsum,
    iseq: !!d.iseq,
    oseq: !!d.oseq,
  }),

  words(p) {
    const w = [p.ignoreDf ? 'ignore-df' : 'noignore-df']
    if (p.ikey !== undefined) w.push('ikey', String(p.ikey))
    if (p.okey !== undefined) w.push('okey', String(p.okey))
    for (const f of ['icsum', 'ocsum', 'iseq', 'oseq'] as const) if (p[f]) w.push(f)
    return w
  },

  replaceReason(from, to) {
    if (remoteClass(from.remote) !== remoteClass(to.remote)) {
      return `remote ${from.remote} → ${to.remote}: unicast ↔ multicast changes the device flags (POINTOPOINT vs BROADCAST); the kernel refuses it in place`
    }
    for (const [k, what] of FLAG_NAMES) {
      if (flagOn(from, k) && !flagOn(to, k)) {
        return `${what} on → off: ip link set can only add GRE key/csum/seq flags, not clear them`
      }
    }
    return undefined
  },

  adjustUpdate(name, from, to, lines, words) {
    // The kernel checks pmtudisc against the device's current ignore-df before applying the new one, so
    // ignore-df → pmtudisc in one request is EINVAL: clear ignore-df first (still without pmtudisc).
    if (from.ignoreDf && !to.ignoreDf && to.pmtudisc !== false && lines.length && lines[0]!.includes('type')) {
      return [['link', 'set', 'dev', name, 'type', 'gre', ...words({...to, pmtudisc: false, ignoreDf: false})], ...lines]
    }
    return lines
  },
})
