// gre: GRE over IPv4 (kernel module ip_gre, kind 'gre', fallback device gre0): keys, checksums, sequence numbers, ignore-df.
import type {TunnelParams} from '../model/types.js'
import {modeParamKeys} from '../model/fields.js'
import {endpoint} from '../net/endpoint.js'
import {keyFromDottedQuad, keysOf, parseKey} from '../net/key.js'
import type {DriverDiagnostic, ModeDriver} from './contract.js'
import {
  clean,
  commonReplaceReason,
  decodeDev,
  diag,
  encodeUpdateLines,
  hexNum,
  infoData,
  infoKind,
  isUp,
  maxMtu,
  pairOf,
  tosOf,
  tosWord,
  ttlOf,
  ttlWord,
  validateCommon,
  validateKeys,
} from './common.js'

const KEYS = modeParamKeys('gre') // the field table's keys for gre

function isMulticast(a: string): boolean {
  const o = Number(a.split('.')[0])
  return o >= 224 && o <= 239
}

function remoteClass(r: string): string {
  return r === 'any' ? 'any' : isMulticast(r) ? 'multicast' : 'unicast'
}

function params(p: TunnelParams): string[] {
  const w = ['remote', p.remote, 'local', p.local]
  if (p.dev !== undefined) w.push('dev', p.dev)
  w.push('ttl', ttlWord(p.ttl ?? 0), 'tos', tosWord(p.tos ?? 1))
  w.push(p.pmtudisc === false ? 'nopmtudisc' : 'pmtudisc', p.ignoreDf ? 'ignore-df' : 'noignore-df')
  if (p.ikey !== undefined) w.push('ikey', String(p.ikey))
  if (p.okey !== undefined) w.push('okey', String(p.okey))
  if (p.icsum) w.push('icsum')
  if (p.ocsum) w.push('ocsum')
  if (p.iseq) w.push('iseq')
  if (p.oseq) w.push('oseq')
  w.push('fwmark', String(p.fwmark))
  return w
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

export const gre: ModeDriver = {
  mode: 'gre',
  kind: 'gre',
  modules: ['ip_gre'],
  fallbackDevice: 'gre0',
  keys: KEYS,

  validate(spec) {
    const okey = spec.key !== undefined || spec['output-key'] !== undefined || (typeof spec.remote === 'string' && isMulticast(spec.remote))
    const hdr = 4 + (pairOf(spec.csum).output ? 4 : 0) + (okey ? 4 : 0) + (pairOf(spec.seq).output ? 4 : 0)
    const out: DriverDiagnostic[] = validateCommon(spec, {mode: 'gre', keys: KEYS, maxMtu: maxMtu('gre', hdr)})
    out.push(...validateKeys(spec))
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

  normalize(spec) {
    const csum = pairOf(spec.csum)
    const seq = pairOf(spec.seq)
    const p: TunnelParams = {
      mode: 'gre',
      local: endpoint(spec.local),
      remote: endpoint(spec.remote),
      dev: spec.dev,
      ttl: ttlOf(spec.ttl),
      tos: tosOf(spec.tos),
      pmtudisc: spec.pmtudisc ?? true,
      ignoreDf: spec['ignore-df'] ?? false,
      ...keysOf(spec),
      icsum: csum.input,
      ocsum: csum.output,
      iseq: seq.input,
      oseq: seq.output,
      fwmark: spec.fwmark ?? 0,
      mtu: spec.mtu,
      up: spec.up ?? true,
    }
    // iproute2 keys a multicast tunnel by its group when no key is given
    if (p.remote !== 'any' && isMulticast(p.remote)) {
      const g = parseKey(p.remote)
      if (p.ikey === undefined) p.ikey = g
      if (p.okey === undefined) p.okey = g
    }
    return clean(p)
  },

  replaceReason(from, to) {
    const r = commonReplaceReason(from, to)
    if (r) return r
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

  encodeCreate(name, p) {
    const head = ['link', 'add', 'name', name]
    if (p.mtu !== undefined) head.push('mtu', String(p.mtu))
    return [[...head, 'type', 'gre', ...params(p)]]
  },

  encodeUpdate(name, from, to) {
    const lines = encodeUpdateLines(name, 'gre', from, to, () => params(to), [])
    // The kernel checks pmtudisc against the device's current ignore-df before applying the new one, so
    // ignore-df → pmtudisc in one request is EINVAL: clear ignore-df first (still without pmtudisc).
    if (from.ignoreDf && !to.ignoreDf && to.pmtudisc !== false && lines.length && lines[0]!.includes('type')) {
      const step = ['link', 'set', 'dev', name, 'type', 'gre', ...params({...to, pmtudisc: false, ignoreDf: false})]
      lines.unshift(step)
    }
    return lines
  },

  decode(link, ctx) {
    if (infoKind(link) !== 'gre') return undefined
    const d = infoData(link)
    if (d.external) return undefined
    const p: TunnelParams = {
      mode: 'gre',
      local: endpoint(d.local),
      remote: endpoint(d.remote),
      dev: decodeDev(d, ctx?.byIndex),
      ttl: typeof d.ttl === 'number' ? d.ttl : 0,
      tos: hexNum(d.tos),
      pmtudisc: d.pmtudisc !== false,
      ignoreDf: !!d.ignore_df,
      ikey: typeof d.ikey === 'string' ? keyFromDottedQuad(d.ikey) : undefined,
      okey: typeof d.okey === 'string' ? keyFromDottedQuad(d.okey) : undefined,
      icsum: !!d.icsum,
      ocsum: !!d.ocsum,
      iseq: !!d.iseq,
      oseq: !!d.oseq,
      fwmark: hexNum(d.fwmark),
      mtu: link.mtu,
      up: isUp(link),
    }
    return clean(p)
  },
}
