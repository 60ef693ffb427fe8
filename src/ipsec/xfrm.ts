// The kernel side of a vti ipsec block: xfrm SAs and policies as ip lines (encode), `ip -s xfrm state` /
// `ip xfrm policy` text as objects (decode; iproute2 6.1 prints no JSON for xfrm: `-j` is ignored), and the
// reconciliation between two sets of tunctl-owned objects.
//
// Ownership: tunctl's SAs carry reqid TUNCTL_REQID and its policies a template with that reqid; nothing else
// is ever changed or deleted. A tunnel's objects are the ones marked with its vti keys (mark okey: the outbound
// SA local→remote and the `dir out` policies; mark ikey: the inbound SA remote→local and the `dir in` policies),
// which is how the kernel's vti finds them: it sets the skb mark to okey on transmit and ikey on receive.
import type {SaCounters} from '../model/types.js'
import type {IpsecParams} from './spec.js'
import {copyKeys, getKeys, sameKeys, setKeys, type KeyMaterial} from './keys.js'
import {hex32} from './spec.js'

/** reqid of every SA and policy template tunctl installs ("tunc"); documented in tunctl.yaml(5). */
export const TUNCTL_REQID = 0x74756e63
const MASK = '0xffffffff'
const SELECTORS: Record<4 | 6, string> = {4: '0.0.0.0/0', 6: '::/0'}

export interface XfrmSa {
  src: string
  dst: string
  spi: number
  mark: number
  reqid: number
  /** kernel algorithm names: aead rfc4106(gcm(aes)), or enc cbc(aes) + auth hmac(sha256) */
  aead?: string
  enc?: string
  auth?: string
  /** key bits of aead / enc (from the kernel or the key length) */
  encBits?: number
  replayWindow: number
  counters?: SaCounters
  /** `ip -s xfrm state`: the last outbound sequence number (oseq of the anti-replay context); 0xffffffff: the SA
   * is spent (tunctl's SAs have no ESN: the kernel refuses to wrap, xfrm_replay_overflow) */
  oseq?: number
}

export interface XfrmPolicy {
  dir: 'in' | 'out' | 'fwd'
  family: 4 | 6
  mark: number
  tmplSrc: string
  tmplDst: string
  reqid: number
}

export interface XfrmObserved {
  /** tunctl-owned SAs (keys in keys.ts's table, read from the kernel; never printed) */
  sas: XfrmSa[]
  /** tunctl-owned policies */
  policies: XfrmPolicy[]
  /** "dst|spi" of every SA tunctl does not own */
  foreignSas: string[]
  /** "dir|family|mark" of every policy tunctl does not own */
  foreignPolicies: string[]
}

export const saId = (s: {dst: string; spi: number}): string => `sa|${s.dst}|${s.spi}`
export const policyId = (p: {dir: string; family: number; mark: number}): string => `pol|${p.dir}|${p.family}|${p.mark}`

// ---------- desired objects ----------

interface TunnelLike {
  params: {local: string; remote: string; ikey?: number; okey?: number}
  ipsec?: IpsecParams
}

/** The SAs and policies a vti tunnel's ipsec block stands for (keys attached when known). */
export function objectsFor(t: TunnelLike): {sas: XfrmSa[]; policies: XfrmPolicy[]} {
  const p = t.ipsec
  if (!p) return {sas: [], policies: []}
  const {local: l, remote: r} = t.params
  const okey = t.params.okey ?? 0
  const ikey = t.params.ikey ?? 0
  const keys = getKeys(p)
  const alg = p.aead
    ? {aead: 'rfc4106(gcm(aes))', encBits: p.aead === 'aes-gcm-128' ? 160 : 288}
    : {enc: 'cbc(aes)', auth: 'hmac(sha256)', encBits: p.cipher === 'aes-cbc-128' ? 128 : 256}
  const out: XfrmSa = {src: l, dst: r, spi: p.spiOut, mark: okey, reqid: TUNCTL_REQID, ...alg, replayWindow: p.replayWindow}
  const inn: XfrmSa = {src: r, dst: l, spi: p.spiIn, mark: ikey, reqid: TUNCTL_REQID, ...alg, replayWindow: p.replayWindow}
  if (keys) {
    setKeys(out, p.aead ? {aead: keys.out!} : {enc: keys['out-enc']!, auth: keys['out-auth']!})
    setKeys(inn, p.aead ? {aead: keys.in!} : {enc: keys['in-enc']!, auth: keys['in-auth']!})
  }
  const policies: XfrmPolicy[] = []
  for (const family of [4, 6] as const) {
    policies.push({dir: 'out', family, mark: okey, tmplSrc: l, tmplDst: r, reqid: TUNCTL_REQID})
    policies.push({dir: 'in', family, mark: ikey, tmplSrc: r, tmplDst: l, reqid: TUNCTL_REQID})
  }
  return {sas: [out, inn], policies}
}

/** The ipsec block the kernel's objects describe for a tunnel, or undefined if it has none; `problems` lists what is missing. */
export function ipsecOf(t: {params: {local: string; remote: string; ikey?: number; okey?: number}}, x: XfrmObserved): (IpsecParams & {problems?: string[]}) | undefined {
  const {local: l, remote: r} = t.params
  const okey = t.params.okey ?? 0
  const ikey = t.params.ikey ?? 0
  if (!okey || !ikey) return undefined
  const out = x.sas.find((s) => s.src === l && s.dst === r && s.mark === okey)
  const inn = x.sas.find((s) => s.src === r && s.dst === l && s.mark === ikey)
  if (!out && !inn) return undefined
  const problems: string[] = []
  if (!out) problems.push('outbound SA missing')
  if (!inn) problems.push('inbound SA missing')
  const sa = (out ?? inn)!
  const p: IpsecParams & {problems?: string[]} = {spiOut: out?.spi ?? 0, spiIn: inn?.spi ?? 0, replayWindow: sa.replayWindow}
  if (sa.aead) p.aead = sa.encBits === 288 ? 'aes-gcm-256' : 'aes-gcm-128'
  else {
    p.cipher = sa.encBits === 128 ? 'aes-cbc-128' : 'aes-cbc-256'
    p.auth = 'hmac-sha256'
  }
  if (out && inn && (out.replayWindow !== inn.replayWindow || out.aead !== inn.aead || out.encBits !== inn.encBits)) problems.push('the two SAs differ in algorithm or replay window')
  for (const want of objectsFor({params: t.params, ipsec: {...p}}).policies) {
    const have = x.policies.find((q) => policyId(q) === policyId(want))
    if (!have || have.tmplSrc !== want.tmplSrc || have.tmplDst !== want.tmplDst) problems.push(`policy dir ${want.dir} ${SELECTORS[want.family]} missing`)
  }
  const ko = getKeys(out)
  const ki = getKeys(inn)
  if (ko && ki) {
    const k: KeyMaterial = p.aead ? {out: ko.aead!, in: ki.aead!} : {'out-enc': ko.enc!, 'out-auth': ko.auth!, 'in-enc': ki.enc!, 'in-auth': ki.auth!}
    if (Object.values(k).every(Boolean)) setKeys(p, k)
  }
  if (problems.length) p.problems = problems
  return p
}

// ---------- encode ----------

function hexKey(b: Buffer | undefined): string {
  if (!b) throw new Error('internal: an SA without its key material')
  return '0x' + b.toString('hex')
}

/** The words that carry key material are replaced by this in everything shown (plan, --verbose, errors). */
export const KEY_HIDDEN = '<key hidden>'

/** `xfrm state add …` (with the keys: only for xfrmBatch's stdin) and its shown form (keys hidden). */
export function saAddLine(s: XfrmSa, show = false): string[] {
  const k = getKeys(s)
  const key = (b: Buffer | undefined) => (show ? KEY_HIDDEN : hexKey(b))
  const w = ['xfrm', 'state', 'add', 'src', s.src, 'dst', s.dst, 'proto', 'esp', 'spi', hex32(s.spi), 'reqid', String(s.reqid), 'mode', 'tunnel']
  w.push('mark', String(s.mark), 'mask', MASK, 'replay-window', String(s.replayWindow))
  if (s.aead) w.push('aead', s.aead, key(k?.aead), '128')
  else w.push('enc', s.enc!, key(k?.enc), 'auth-trunc', s.auth!, key(k?.auth), '128')
  return w
}

export function saDelLine(s: XfrmSa): string[] {
  return ['xfrm', 'state', 'delete', 'src', s.src, 'dst', s.dst, 'proto', 'esp', 'spi', hex32(s.spi), 'mark', String(s.mark), 'mask', MASK]
}

export function policyAddLine(p: XfrmPolicy): string[] {
  const sel = SELECTORS[p.family]
  return ['xfrm', 'policy', 'add', 'dir', p.dir, 'src', sel, 'dst', sel, 'mark', String(p.mark), 'mask', MASK,
    'tmpl', 'src', p.tmplSrc, 'dst', p.tmplDst, 'proto', 'esp', 'reqid', String(p.reqid), 'mode', 'tunnel']
}

export function policyDelLine(p: XfrmPolicy): string[] {
  const sel = SELECTORS[p.family]
  return ['xfrm', 'policy', 'delete', 'dir', p.dir, 'src', sel, 'dst', sel, 'mark', String(p.mark), 'mask', MASK]
}

/** A line as it may be shown: key words of `xfrm state add/update` replaced by KEY_HIDDEN. */
export function redactLine(words: string[]): string[] {
  if (words[0] !== 'xfrm' || words[1] !== 'state') return words
  const out = [...words]
  for (let i = 0; i < out.length; i++) {
    if ((out[i] === 'aead' || out[i] === 'enc' || out[i] === 'auth-trunc' || out[i] === 'auth') && i + 2 < out.length) out[i + 2] = KEY_HIDDEN
  }
  return out
}

// ---------- reconcile ----------

export interface XfrmSet {
  sas: XfrmSa[]
  policies: XfrmPolicy[]
}

function sameSa(a: XfrmSa, b: XfrmSa): boolean {
  return a.src === b.src && a.mark === b.mark && a.aead === b.aead && a.enc === b.enc && a.auth === b.auth && a.encBits === b.encBits &&
    a.replayWindow === b.replayWindow && sameKeys(a, b) !== false
}

function samePolicy(a: XfrmPolicy, b: XfrmPolicy): boolean {
  return a.tmplSrc === b.tmplSrc && a.tmplDst === b.tmplDst && a.reqid === b.reqid
}

/**
 * The lines that turn `current` into `target` (both tunctl-owned objects only): deletions first, then additions.
 * A changed SA is deleted and added again (a new SPI or key is a new SA; `ip xfrm state update` cannot change
 * keys or algorithms); a changed policy likewise. `lines` carry keys; `shown` has them hidden.
 */
export function reconcile(current: XfrmSet, target: XfrmSet): {lines: string[][]; shown: string[][]} {
  const cur = new Map<string, XfrmSa | XfrmPolicy>()
  for (const s of current.sas) cur.set(saId(s), s)
  for (const p of current.policies) cur.set(policyId(p), p)
  const tgt = new Map<string, XfrmSa | XfrmPolicy>()
  for (const s of target.sas) tgt.set(saId(s), s)
  for (const p of target.policies) tgt.set(policyId(p), p)
  const del: string[][] = []
  const add: Array<{line: string[]; shown: string[]}> = []
  for (const [id, c] of cur) {
    const t = tgt.get(id)
    const isSa = id.startsWith('sa|')
    const same = t && (isSa ? sameSa(c as XfrmSa, t as XfrmSa) : samePolicy(c as XfrmPolicy, t as XfrmPolicy))
    if (!same) del.push(isSa ? saDelLine(c as XfrmSa) : policyDelLine(c as XfrmPolicy))
  }
  for (const [id, t] of tgt) {
    const c = cur.get(id)
    const isSa = id.startsWith('sa|')
    const same = c && (isSa ? sameSa(c as XfrmSa, t as XfrmSa) : samePolicy(c as XfrmPolicy, t as XfrmPolicy))
    if (same) continue
    if (isSa) add.push({line: saAddLine(t as XfrmSa), shown: saAddLine(t as XfrmSa, true)})
    else add.push({line: policyAddLine(t as XfrmPolicy), shown: policyAddLine(t as XfrmPolicy)})
  }
  return {lines: [...del, ...add.map((a) => a.line)], shown: [...del, ...add.map((a) => a.shown)]}
}

/** Copies an XfrmSet's objects (keys kept). */
export function cloneSet(s: XfrmSet): XfrmSet {
  return {
    sas: s.sas.map((a) => {
      const c = {...a}
      copyKeys(a, c)
      return c
    }),
    policies: s.policies.map((p) => ({...p})),
  }
}

// ---------- decode ----------

/**
 * `ip -s xfrm state` text → SAs (tunctl's, with keys into keys.ts's table; the rest only as "dst|spi").
 * The text holds key material: it is parsed here and dropped, never stored or shown.
 */
export function parseStates(text: string): {owned: XfrmSa[]; foreign: string[]} {
  const owned: XfrmSa[] = []
  const foreign: string[] = []
  for (const block of blocks(text)) {
    const head = /^src (\S+) dst (\S+)/.exec(block[0]!)
    if (!head) continue
    const body = block.slice(1).join('\n')
    const proto = /proto (\S+) spi 0x([0-9a-f]+)(?:\(\d+\))? reqid (\d+)/.exec(body)
    if (!proto) continue
    const s: XfrmSa = {src: head[1]!, dst: head[2]!, spi: parseInt(proto[2]!, 16), mark: 0, reqid: Number(proto[3]), replayWindow: 0}
    if (proto[1] !== 'esp' || s.reqid !== TUNCTL_REQID) {
      foreign.push(`${s.dst}|${s.spi}`)
      continue
    }
    const mark = /\n\s*mark 0x([0-9a-f]+)/.exec('\n' + body)
    if (mark) s.mark = parseInt(mark[1]!, 16)
    const keys: Record<string, Buffer> = {}
    for (const line of block.slice(1)) {
      const m = /^\s*(aead|enc|auth-trunc|auth) (\S+) 0x([0-9a-f]+)(?: \((\d+) bits\))?/.exec(line)
      if (!m) continue
      const which = m[1] === 'aead' ? 'aead' : m[1] === 'enc' ? 'enc' : 'auth'
      s[which] = m[2]
      keys[which] = Buffer.from(m[3]!, 'hex')
      if (which !== 'auth') s.encBits = m[3]!.length * 4
    }
    setKeys(s, keys)
    const esn = /replay_window (\d+)/.exec(body)
    const rw = /^\s*replay-window (\d+)/m.exec(body)
    s.replayWindow = esn ? Number(esn[1]) : rw ? Number(rw[1]) : 0
    const cur = /lifetime current:\n\s*(\d+)\(bytes\), (\d+)\(packets\)/.exec(body)
    const st = /stats:\n\s*replay-window \d+ replay (\d+) failed (\d+)/.exec(body)
    if (cur || st) s.counters = {bytes: Number(cur?.[1] ?? 0), packets: Number(cur?.[2] ?? 0), replay: Number(st?.[1] ?? 0), failed: Number(st?.[2] ?? 0)}
    // "anti-replay context: seq 0x0, oseq 0x5, ..." or, with a bitmap window, "anti-replay esn context:\n seq-hi ..., oseq 0x5"
    const oseq = /\boseq 0x([0-9a-f]+)/.exec(body)
    if (oseq) s.oseq = parseInt(oseq[1]!, 16)
    owned.push(s)
  }
  return {owned, foreign}
}

/** `ip xfrm policy` text → tunctl's policies (template reqid TUNCTL_REQID) and the ids of the others. */
export function parsePolicies(text: string): {owned: XfrmPolicy[]; foreign: string[]} {
  const owned: XfrmPolicy[] = []
  const foreign: string[] = []
  for (const block of blocks(text)) {
    const head = /^src (\S+) dst (\S+)/.exec(block[0]!)
    if (!head) continue
    const body = block.slice(1).join('\n')
    const dir = /dir (in|out|fwd)\b/.exec(body)
    if (!dir) continue
    const family = head[1]!.includes(':') ? 6 : 4
    const mark = /mark 0x([0-9a-f]+)/.exec(body)
    const p: XfrmPolicy = {dir: dir[1] as XfrmPolicy['dir'], family, mark: mark ? parseInt(mark[1]!, 16) : 0, tmplSrc: '', tmplDst: '', reqid: 0}
    const tmpl = /tmpl src (\S+) dst (\S+)\n\s*proto esp reqid (\d+)/.exec(body)
    const isOurs = tmpl && Number(tmpl[3]) === TUNCTL_REQID && head[1] === SELECTORS[family] && head[2] === SELECTORS[family]
    if (!isOurs) {
      foreign.push(policyId(p))
      continue
    }
    p.tmplSrc = tmpl[1]!
    p.tmplDst = tmpl[2]!
    p.reqid = TUNCTL_REQID
    owned.push(p)
  }
  return {owned, foreign}
}

/** Lines grouped into objects: each starts at a line without leading whitespace. */
function blocks(text: string): string[][] {
  const out: string[][] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    if (!/^\s/.test(line)) out.push([line])
    else out[out.length - 1]?.push(line)
  }
  return out
}
