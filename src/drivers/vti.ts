// vti: IPsec virtual tunnel interface over IPv4 (kernel module ip_vti, kind 'vti', fallback ip_vti0): local, remote, keys (marks), dev, fwmark;
// the optional ipsec: block (src/ipsec/) adds manually keyed SAs and policies marked with the keys.
import type {TunnelParams} from '../model/types.js'
import {modeParamKeys} from '../model/fields.js'
import {endpoint} from '../net/endpoint.js'
import {keysOf, printedKey} from '../net/key.js'
import type {DriverDiagnostic, ModeDriver} from './contract.js'
import {clean, commonReplaceReason, decodeDev, encodeUpdateLines, hexNum, infoData, infoKind, isUp, validateCommon, validateKeys} from './common.js'
import {validateIpsec} from '../ipsec/spec.js'

const KEYS = [...modeParamKeys('vti'), 'ipsec'] // the field table's keys for vti, and the ipsec: block

/** vti has no key flag: key 0 means "no key". */
function nz(k: number | undefined): number | undefined {
  return k === 0 ? undefined : k
}

function params(p: TunnelParams): string[] {
  const w = ['remote', p.remote, 'local', p.local]
  if (p.dev !== undefined) w.push('dev', p.dev)
  w.push('ikey', String(p.ikey ?? 0), 'okey', String(p.okey ?? 0), 'fwmark', String(p.fwmark))
  return w
}

export const vti: ModeDriver = {
  mode: 'vti',
  kind: 'vti',
  modules: ['ip_vti'],
  fallbackDevice: 'ip_vti0',
  keys: KEYS,

  validate(spec) {
    const out: DriverDiagnostic[] = validateCommon(spec, {mode: 'vti', keys: KEYS})
    out.push(...validateKeys(spec))
    out.push(...validateIpsec(spec)) // the ipsec: block (manually keyed ESP SAs); its key file is read after parsing
    return out
  },

  normalize(spec) {
    const k = keysOf(spec)
    return clean<TunnelParams>({
      mode: 'vti',
      local: endpoint(spec.local),
      remote: endpoint(spec.remote),
      dev: spec.dev,
      ikey: nz(k.ikey),
      okey: nz(k.okey),
      fwmark: spec.fwmark ?? 0,
      mtu: spec.mtu,
      up: spec.up ?? true,
    })
  },

  replaceReason(from, to) {
    return commonReplaceReason(from, to)
  },

  encodeCreate(name, p) {
    const head = ['link', 'add', 'name', name]
    if (p.mtu !== undefined) head.push('mtu', String(p.mtu))
    return [[...head, 'type', 'vti', ...params(p)]]
  },

  encodeUpdate(name, from, to) {
    return encodeUpdateLines(name, 'vti', from, to, () => params(to), [])
  },

  decode(link, ctx) {
    if (infoKind(link) !== 'vti') return undefined
    const d = infoData(link)
    return clean<TunnelParams>({
      mode: 'vti',
      local: endpoint(d.local),
      remote: endpoint(d.remote),
      dev: decodeDev(d, ctx?.byIndex),
      ikey: nz(printedKey(d.ikey)),
      okey: nz(printedKey(d.okey)),
      fwmark: hexNum(d.fwmark),
      mtu: link.mtu,
      up: isUp(link),
    })
  },
}
