// Example specs and their mirror image for the peer namespace (local/remote swapped, inner .1 ↔ .2).
import {chmodSync, readdirSync, readFileSync} from 'node:fs'
import {isAbsolute, join} from 'node:path'
import {parse, stringify} from 'yaml'
import {REPO} from './tunctl.js'

export type Mode = 'ipip' | 'gre' | 'sit' | 'isatap' | 'vti'
export const MODES: Mode[] = ['ipip', 'gre', 'sit', 'isatap', 'vti']

export interface Spec {
  version: 1
  tunnels: Record<string, Record<string, any>>
}

export function examplePath(mode: Mode): string {
  return join(REPO, 'examples', `${mode}.yaml`)
}

/** git keeps no 0600: the example key files get the mode tunctl demands (root-owned, 0600) before any test uses them. */
for (const f of readdirSync(join(REPO, 'examples')).filter((f) => f.endsWith('.keys'))) chmodSync(join(REPO, 'examples', f), 0o600)

/** An example, its key-file paths made absolute (the copies tests write elsewhere still find them). */
export function example(mode: Mode): Spec {
  const spec = parse(readFileSync(examplePath(mode), 'utf8')) as Spec
  for (const t of Object.values(spec.tunnels)) {
    const kf = t.ipsec?.['key-file']
    if (typeof kf === 'string' && !isAbsolute(kf)) t.ipsec['key-file'] = join(REPO, 'examples', kf)
  }
  return spec
}

/** The single tunnel name of an example file. */
export function exampleName(mode: Mode): string {
  return Object.keys(example(mode).tunnels)[0]!
}

/** Swaps this side and the peer in one value: 198.51.100.1↔.2, 10.x.y.1↔.2, …::1↔…::2, c633:6401↔c633:6402. */
export function mirrorValue(s: string): string {
  const pairs: Array<[RegExp, (m: string) => string]> = [
    [/^198\.51\.100\.([12])$/, (m) => m.replace(/[12]$/, (d) => (d === '1' ? '2' : '1'))],
    [/^10\.\d+\.\d+\.[12](\/\d+)?$/, (m) => m.replace(/\.([12])(\/\d+)?$/, (_x, d, p) => `.${d === '1' ? 2 : 1}${p ?? ''}`)],
    [/:c633:640[12](\/\d+)?$/i, (m) => m.replace(/640([12])/i, (_x, d) => `640${d === '1' ? 2 : 1}`)],
    [/::[12](\/\d+)?$/, (m) => m.replace(/::([12])(\/\d+)?$/, (_x, d, p) => `::${d === '1' ? 2 : 1}${p ?? ''}`)],
  ]
  for (const [re, f] of pairs) if (re.test(s)) return f(s)
  return s
}

// Value-wise mirroring is enough: local .1 → .2 and remote .2 → .1 is the swap; 'any' stays.
function mirrorAny(v: any): any {
  if (typeof v === 'string') return mirrorValue(v)
  if (Array.isArray(v)) return v.map((x) => mirrorAny(x))
  if (v && typeof v === 'object') {
    const o: any = {}
    for (const [k, x] of Object.entries(v)) o[k] = mirrorAny(x)
    return o
  }
  return v
}

/** The peer's spec: same tunnel names, endpoints swapped, inner addresses .1 ↔ .2. */
export function mirror(spec: Spec): Spec {
  const out: Spec = {version: 1, tunnels: {}}
  for (const [name, t] of Object.entries(spec.tunnels)) {
    const {ipsec, ...rest} = t
    out.tunnels[name] = mirrorAny(rest)
    // ipsec: the peer's outbound SA is our inbound one; its key file has out and in swapped (X.keys ↔ X.peer.keys)
    if (ipsec) {
      const kf = String(ipsec['key-file'])
      const peer = kf.endsWith('.peer.keys') ? kf.replace(/\.peer\.keys$/, '.keys') : kf.replace(/\.keys$/, '.peer.keys')
      out.tunnels[name]!.ipsec = {...ipsec, 'spi-out': ipsec['spi-in'], 'spi-in': ipsec['spi-out'], 'key-file': peer}
    }
  }
  return out
}

export function yaml(spec: Spec): string {
  return stringify(spec)
}

/** A copy of spec with tunnel `name` changed by `patch` (undefined values delete keys). */
export function patched(spec: Spec, name: string, patch: Record<string, any>): Spec {
  const out: Spec = structuredClone(spec)
  const t = out.tunnels[name]!
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete t[k]
    else t[k] = v
  }
  return out
}

/** All example tunnels in one file. */
export function allExamples(): Spec {
  const out: Spec = {version: 1, tunnels: {}}
  for (const m of MODES) Object.assign(out.tunnels, example(m).tunnels)
  return out
}
