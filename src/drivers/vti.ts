// vti: IPsec virtual tunnel interface over IPv4 (kernel module ip_vti, kind 'vti', fallback ip_vti0): local, remote, keys (marks), dev, fwmark;
// the optional ipsec: block (src/ipsec/) adds manually keyed SAs and policies marked with the keys.
import {modeParamKeys} from '../model/fields.js'
import {keysOf, printedKey} from '../net/key.js'
import type {ModeDriver} from './contract.js'
import {validateKeys} from './common.js'
import {makeTunnelDriver} from './tunnel.js'
import {validateIpsec} from '../ipsec/spec.js'

const KEYS = [...modeParamKeys('vti'), 'ipsec'] // the field table's keys for vti, and the ipsec: block

/** vti has no key flag: key 0 means "no key". */
function nz(k: number | undefined): number | undefined {
  return k === 0 ? undefined : k
}

export const vti: ModeDriver = makeTunnelDriver({
  mode: 'vti',
  kind: 'vti',
  keys: KEYS,
  outer: false,

  validate(spec, common) {
    return [...common, ...validateKeys(spec), ...validateIpsec(spec)] // the ipsec: block (manually keyed ESP SAs); its key file is read after parsing
  },

  own(spec) {
    const k = keysOf(spec)
    return {ikey: nz(k.ikey), okey: nz(k.okey)}
  },

  decodeOwn: (d) => ({ikey: nz(printedKey(d.ikey)), okey: nz(printedKey(d.okey))}),

  words: (p) => ['ikey', String(p.ikey ?? 0), 'okey', String(p.okey ?? 0)],
})
