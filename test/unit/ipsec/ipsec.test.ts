// vti ipsec blocks: SPI parsing, key files (format, owner, mode), xfrm lines (encode with keys only for the stdin
// batch, redacted everywhere else), `ip xfrm` text decoding, reconciliation, and plans that never show a key.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseSpec} from '../../../src/spec/load.js'
import {SpecError} from '../../../src/lib/errors.js'
import {KeyFileMissingError, loadKeyFiles, maskedLine, parseKeyFile} from '../../../src/ipsec/keyfile.js'
import {getKeys, setKeys} from '../../../src/ipsec/keys.js'
import {parseSpi, type IpsecParams} from '../../../src/ipsec/spec.js'
import {objectsFor, parsePolicies, parseStates, policyAddLine, reconcile, redactLine, saAddLine, saDelLine, TUNCTL_REQID, type XfrmObserved} from '../../../src/ipsec/xfrm.js'
import {xfrmLines} from '../../../src/ipsec/plan.js'
import {scrubKeys} from '../../../src/ipsec/execute.js'
import {makePlan, planToJSON, renderPlan, ConflictError} from '../../../src/plan/index.js'
import type {ObservedState, ObservedTunnel} from '../../../src/model/types.js'

const K_OUT = '00112233445566778899aabbccddeeff0a0b0c0d'
const K_IN = 'ffeeddccbbaa99887766554433221100a1b1c1d1'
const K_NEW = '0123456789abcdef0123456789abcdef01234567'
const ENC = 'aa'.repeat(32)
const AUTH = 'bb'.repeat(32)
const SUPPORT = {vti: {kernel: true, userspace: false, reason: 'module ip_vti loaded'}}

function spec(extra = ''): string {
  return `version: 1
tunnels:
  vti1:
    mode: vti
    local: 198.51.100.1
    remote: 198.51.100.2
    key: 7
    addresses: [10.10.5.1/30]
    ipsec:
      spi-out: 0x1001
      spi-in: 4098
      aead: aes-gcm-128
      key-file: vti.keys
${extra}`
}

/** A folder with spec.yaml and a root-owned 0600 key file. */
function folder(keys: string, mode = 0o600, text = spec()): string {
  const d = mkdtempSync(join(tmpdir(), 'tunctl-ipsec-'))
  writeFileSync(join(d, 'spec.yaml'), text)
  writeFileSync(join(d, 'vti.keys'), keys)
  chmodSync(join(d, 'vti.keys'), mode)
  return d
}

function load(d: string) {
  const st = parseSpec(join(d, 'spec.yaml'), spec(), {rtTables: new Map()})
  loadKeyFiles(st)
  return st
}

const allHex = (s: string) => [K_OUT, K_IN, K_NEW, ENC, AUTH].filter((k) => s.toLowerCase().includes(k))

test('SPIs: integers, decimal and 0x strings within 0x100..0xffffffff', () => {
  assert.is(parseSpi(0x1001), 0x1001)
  assert.is(parseSpi('0x1001'), 0x1001)
  assert.is(parseSpi('4097'), 4097)
  assert.is(parseSpi(0xffffffff), 0xffffffff)
  for (const bad of [0, 0xff, 0x100000000, '0x', '0x123456789', '1e3', -5, 1.5, 'abc']) assert.is(parseSpi(bad), undefined, String(bad))
})

test('key file: aead names with key + salt; comments and blank lines ignored', () => {
  const p: IpsecParams = {spiOut: 0x1001, spiIn: 0x1002, aead: 'aes-gcm-128', replayWindow: 128}
  const r = parseKeyFile('k', `# c\n\nout: 0x${K_OUT}  # trailing\nin:0x${K_IN.toUpperCase()}\n`, p)
  assert.equal(r.diagnostics, [])
  assert.is(r.keys!.out!.toString('hex'), K_OUT)
  assert.is(r.keys!.in!.toString('hex'), K_IN)
})

test('key file: cipher + auth names and lengths', () => {
  const p: IpsecParams = {spiOut: 0x1001, spiIn: 0x1002, cipher: 'aes-cbc-256', auth: 'hmac-sha256', replayWindow: 128}
  const ok = parseKeyFile('k', `out-enc: 0x${ENC}\nout-auth: 0x${AUTH}\nin-enc: 0x${ENC}\nin-auth: 0x${AUTH}\n`, p)
  assert.equal(ok.diagnostics, [])
  const short = parseKeyFile('k', `out-enc: 0x${ENC.slice(2)}\nout-auth: 0x${AUTH}\nin-enc: 0x${ENC}\nin-auth: 0x${AUTH}\n`, {...p, cipher: 'aes-cbc-128'})
  assert.is(short.keys, undefined)
  assert.match(short.diagnostics.map((d) => d.message).join('\n'), /"out-enc" is 31 bytes; aes-cbc-128 needs 16/)
})

test('key file errors name the key file line:col and never quote a key', () => {
  const p: IpsecParams = {spiOut: 0x1001, spiIn: 0x1002, aead: 'aes-gcm-128', replayWindow: 128}
  const r = parseKeyFile('vti.keys', `out: 0x${K_OUT}ff\nin = 0x${K_IN}\nsecret 0x${K_NEW}\n# old: 0x${K_NEW}\n`, p)
  assert.is(r.keys, undefined)
  const text = r.diagnostics.map((d) => `${d.file}:${d.line}:${d.column}: ${d.message}\n${d.excerpt ?? ''}`).join('\n')
  assert.match(text, /vti\.keys:1:6: "out" is 21 bytes/)
  assert.match(text, /vti\.keys:2:1: expected "NAME: 0xHEX"/)
  assert.match(text, /missing key "in"/)
  assert.equal(allHex(text), [], text)
  assert.is(maskedLine(`out: 0x${K_OUT}`), 'out: ' + '*'.repeat(K_OUT.length + 2))
})

test('key files: relative to the spec folder; missing → 66; group/world readable or not root-owned → 65 at the key-file value', () => {
  const d = folder(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`)
  try {
    const st = load(d)
    const t = st.tunnels[0]!
    assert.is(getKeys(t.ipsec)!.out!.toString('hex'), K_OUT)
    assert.equal(allHex(JSON.stringify(st)), [], 'the desired state serialises without keys')
    chmodSync(join(d, 'vti.keys'), 0o640)
    try {
      load(d)
      assert.unreachable()
    } catch (e) {
      assert.instance(e, SpecError)
      assert.match((e as Error).message, /spec\.yaml:13:17: tunnel "vti1": key file .*vti\.keys is readable or writable by group or others \(mode 0640\)/)
    }
    chmodSync(join(d, 'vti.keys'), 0o600)
    chownSync(join(d, 'vti.keys'), 65534, 65534)
    try {
      load(d)
      assert.unreachable()
    } catch (e) {
      assert.instance(e, SpecError)
      assert.match((e as Error).message, /owned by uid 65534, not root/)
    }
    rmSync(join(d, 'vti.keys'))
    try {
      load(d)
      assert.unreachable()
    } catch (e) {
      // 66, at the key-file value with the source line and caret, like every other spec error
      assert.instance(e, KeyFileMissingError)
      assert.is((e as KeyFileMissingError).exitCode, 66)
      assert.is((e as KeyFileMissingError).code, 'no-input')
      assert.match((e as Error).message, /spec\.yaml:13:17: tunnel "vti1": key file .*vti\.keys does not exist\n.*key-file: .*\n +\^/)
    }
  } finally {
    rmSync(d, {recursive: true, force: true})
  }
})

test('key files: a missing one and a group-readable one are reported together (66: the missing one wins), each at its key-file value', () => {
  const extra = `  vti2:
    mode: vti
    local: 198.51.100.1
    remote: 198.51.100.3
    key: 8
    ipsec:
      spi-out: 0x2001
      spi-in: 0x2002
      aead: aes-gcm-128
      key-file: gone.keys
`
  const d = folder(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`, 0o644, spec(extra))
  try {
    const st = parseSpec(join(d, 'spec.yaml'), spec(extra), {rtTables: new Map()})
    try {
      loadKeyFiles(st)
      assert.unreachable()
    } catch (e) {
      assert.instance(e, KeyFileMissingError)
      const err = e as KeyFileMissingError
      assert.is(err.exitCode, 66)
      assert.equal(err.diagnostics.map((x) => [x.line, x.column]), [[13, 17], [23, 17]])
      assert.match(err.diagnostics[0]!.message, /vti\.keys is readable or writable by group or others/)
      assert.match(err.diagnostics[1]!.message, /tunnel "vti2": key file .*gone\.keys does not exist/)
      assert.ok(err.diagnostics.every((x) => x.excerpt?.includes('key-file:')), 'source line and caret')
    }
  } finally {
    rmSync(d, {recursive: true, force: true})
  }
})

// ---------- xfrm lines ----------

const tunnel = (ipsec: IpsecParams, keys: Record<string, string>) => {
  setKeys(ipsec, Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, Buffer.from(v, 'hex')])))
  return {params: {local: '198.51.100.1', remote: '198.51.100.2', ikey: 7, okey: 9}, ipsec}
}

test('encode: SAs with mark, reqid, replay window and keys; policies both ways for IPv4 and IPv6; the shown form hides keys', () => {
  const t = tunnel({spiOut: 0x1001, spiIn: 0x1002, aead: 'aes-gcm-128', replayWindow: 64}, {out: K_OUT, in: K_IN})
  const o = objectsFor(t)
  assert.equal(saAddLine(o.sas[0]!), ['xfrm', 'state', 'add', 'src', '198.51.100.1', 'dst', '198.51.100.2', 'proto', 'esp', 'spi', '0x00001001', 'reqid', String(TUNCTL_REQID), 'mode', 'tunnel',
    'mark', '9', 'mask', '0xffffffff', 'replay-window', '64', 'aead', 'rfc4106(gcm(aes))', '0x' + K_OUT, '128'])
  assert.equal(saAddLine(o.sas[1]!).slice(3, 7), ['src', '198.51.100.2', 'dst', '198.51.100.1'])
  assert.ok(saAddLine(o.sas[1]!).includes('0x' + K_IN))
  assert.equal(allHex(saAddLine(o.sas[0]!, true).join(' ')), [])
  assert.equal(redactLine(saAddLine(o.sas[0]!)), saAddLine(o.sas[0]!, true))
  assert.equal(saDelLine(o.sas[1]!), ['xfrm', 'state', 'delete', 'src', '198.51.100.2', 'dst', '198.51.100.1', 'proto', 'esp', 'spi', '0x00001002', 'mark', '7', 'mask', '0xffffffff'])
  assert.equal(o.policies.map((p) => `${p.dir} ${p.family} ${p.mark} ${p.tmplSrc}>${p.tmplDst}`), [
    'out 4 9 198.51.100.1>198.51.100.2', 'in 4 7 198.51.100.2>198.51.100.1', 'out 6 9 198.51.100.1>198.51.100.2', 'in 6 7 198.51.100.2>198.51.100.1'])
  assert.equal(policyAddLine(o.policies[2]!), ['xfrm', 'policy', 'add', 'dir', 'out', 'src', '::/0', 'dst', '::/0', 'mark', '9', 'mask', '0xffffffff',
    'tmpl', 'src', '198.51.100.1', 'dst', '198.51.100.2', 'proto', 'esp', 'reqid', String(TUNCTL_REQID), 'mode', 'tunnel'])
  const cbc = objectsFor(tunnel({spiOut: 0x1001, spiIn: 0x1002, cipher: 'aes-cbc-256', auth: 'hmac-sha256', replayWindow: 0}, {'out-enc': ENC, 'out-auth': AUTH, 'in-enc': ENC, 'in-auth': AUTH}))
  const line = saAddLine(cbc.sas[0]!)
  assert.equal(line.slice(-7), ['enc', 'cbc(aes)', '0x' + ENC, 'auth-trunc', 'hmac(sha256)', '0x' + AUTH, '128'])
  assert.equal(allHex(redactLine(line).join(' ')), [])
  assert.is(scrubKeys(`Error: argument "0x${ENC}" is wrong`), 'Error: argument "<key hidden>" is wrong')
})

/** What iproute2 6.1 prints (captured in UML), with this side's SAs tunctl's and one foreign SA + policy. */
function kernelText(keyOut = K_OUT, oseqOut = '0x28'): {state: string; policy: string} {
  const R = TUNCTL_REQID
  const state = `src 198.51.100.2 dst 198.51.100.1
\tproto esp spi 0x00001002(4098) reqid ${R}(0x${R.toString(16)}) mode tunnel
\treplay-window 0 seq 0x00000000 flag  (0x00000000)
\tmark 0x7/0xffffffff 
\taead rfc4106(gcm(aes)) 0x${K_IN} (160 bits) 128
\tanti-replay esn context:
\t seq-hi 0x0, seq 0x0, oseq-hi 0x0, oseq 0x0
\t replay_window 128, bitmap-length 4
\t 00000000 00000000 00000000 00000000 
\tsel src 0.0.0.0/0 dst 0.0.0.0/0 uid 0
\tlifetime config:
\t  limit: soft (INF)(bytes), hard (INF)(bytes)
\tlifetime current:
\t  3120(bytes), 30(packets)
\t  add 2026-11-30 02:41:29 use -
\tstats:
\t  replay-window 0 replay 2 failed 1
src 198.51.100.1 dst 198.51.100.2
\tproto esp spi 0x00001001(4097) reqid ${R}(0x${R.toString(16)}) mode tunnel
\treplay-window 0 seq 0x00000000 flag  (0x00000000)
\tmark 0x9/0xffffffff 
\taead rfc4106(gcm(aes)) 0x${keyOut} (160 bits) 128
\tanti-replay esn context:
\t seq-hi 0x0, seq 0x0, oseq-hi 0x0, oseq ${oseqOut}
\t replay_window 128, bitmap-length 4
\tsel src 0.0.0.0/0 dst 0.0.0.0/0 uid 0
\tlifetime current:
\t  4160(bytes), 40(packets)
\tstats:
\t  replay-window 0 replay 0 failed 0
src 198.51.100.1 dst 203.0.113.9
\tproto esp spi 0x00002001(8193) reqid 1(0x00000001) mode tunnel
\treplay-window 32 seq 0x00000000 flag  (0x00000000)
\tenc cbc(aes) 0x${ENC} (256 bits)
`
  let policy = ''
  for (const [sel] of [['0.0.0.0/0'], ['::/0']]) {
    policy += `src ${sel} dst ${sel} \n\tdir out priority 0 ptype main \n\tmark 0x9/0xffffffff \n\ttmpl src 198.51.100.1 dst 198.51.100.2\n\t\tproto esp reqid ${R} mode tunnel\n`
    policy += `src ${sel} dst ${sel} \n\tdir in priority 0 ptype main \n\tmark 0x7/0xffffffff \n\ttmpl src 198.51.100.2 dst 198.51.100.1\n\t\tproto esp reqid ${R} mode tunnel\n`
  }
  policy += `src 10.0.0.0/8 dst 10.1.0.0/16 \n\tdir out priority 0 ptype main \n\ttmpl src 198.51.100.1 dst 203.0.113.9\n\t\tproto esp reqid 1 mode tunnel\n`
  return {state, policy}
}

function observedX(keyOut = K_OUT): XfrmObserved {
  const k = kernelText(keyOut)
  const s = parseStates(k.state)
  const p = parsePolicies(k.policy)
  return {sas: s.owned, policies: p.owned, foreignSas: s.foreign, foreignPolicies: p.foreign}
}

test('decode: tunctl SAs (reqid) with marks, replay window, counters and keys (kept aside); foreign ones only as ids', () => {
  const x = observedX()
  assert.is(x.sas.length, 2)
  const inn = x.sas[0]!
  assert.equal({src: inn.src, dst: inn.dst, spi: inn.spi, mark: inn.mark, aead: inn.aead, bits: inn.encBits, rw: inn.replayWindow},
    {src: '198.51.100.2', dst: '198.51.100.1', spi: 0x1002, mark: 7, aead: 'rfc4106(gcm(aes))', bits: 160, rw: 128})
  assert.equal(inn.counters, {bytes: 3120, packets: 30, replay: 2, failed: 1})
  assert.is(inn.oseq, 0)
  assert.is(x.sas.find((s) => s.spi === 0x1001)!.oseq, 0x28)
  // an outbound SA the kernel stopped at 2^32 - 1 (no ESN: it never wraps); the non-bitmap form of the context too
  assert.is(parseStates(kernelText(K_OUT, '0xffffffff').state).owned.find((s) => s.spi === 0x1001)!.oseq, 0xffffffff)
  assert.is(parseStates('src 198.51.100.1 dst 198.51.100.2\n\tproto esp spi 0x00001001(4097) reqid ' + TUNCTL_REQID + ' mode tunnel\n\tanti-replay context: seq 0x0, oseq 0x7, bitmap 0x00000000\n').owned[0]!.oseq, 7)
  assert.is(getKeys(inn)!.aead!.toString('hex'), K_IN)
  assert.equal(allHex(JSON.stringify(x)), [], 'observed xfrm serialises without keys')
  assert.equal(x.foreignSas, ['203.0.113.9|8193'])
  assert.is(x.policies.length, 4)
  assert.equal(x.foreignPolicies, ['pol|out|4|0'])
})

test('reconcile: identical sets → nothing; a new key → both SA lines of that SA only (deleted, then added); removal deletes', () => {
  const want = objectsFor(tunnel({spiOut: 0x1001, spiIn: 0x1002, aead: 'aes-gcm-128', replayWindow: 128}, {out: K_OUT, in: K_IN}))
  assert.equal(reconcile(observedX(), want).lines, [])
  const changed = reconcile(observedX(K_NEW), want)
  assert.equal(changed.lines.map((l) => l.slice(0, 3).join(' ')), ['xfrm state delete', 'xfrm state add'])
  assert.ok(changed.lines[1]!.includes('0x' + K_OUT))
  assert.equal(allHex(JSON.stringify(changed.shown)), [])
  const gone = reconcile(observedX(), {sas: [], policies: []})
  assert.equal(gone.lines.map((l) => l.slice(0, 3).join(' ')), [...Array(2).fill('xfrm state delete'), ...Array(4).fill('xfrm policy delete')])
})

// ---------- plans ----------

function observedWith(x: XfrmObserved | undefined, tunnels: ObservedTunnel[] = []): ObservedState {
  return {tunnels, links: tunnels.map((t) => t.name), kinds: {}, xfrm: x}
}

function desired(keys: string, text = spec()) {
  const d = folder(keys, 0o600, text)
  try {
    const st = parseSpec(join(d, 'spec.yaml'), text, {rtTables: new Map()})
    loadKeyFiles(st)
    return st
  } finally {
    rmSync(d, {recursive: true, force: true})
  }
}

test('plan: create shows algorithm, SPIs and replay window, never keys; the xfrm lines carry the keys, the shown ones do not', () => {
  const st = desired(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`)
  const obs = observedWith({sas: [], policies: [], foreignSas: [], foreignPolicies: []})
  const plan = makePlan(st, obs, {prune: false, support: SUPPORT})
  const text = renderPlan(plan, {color: false, showCommands: true, file: 'spec.yaml'})
  assert.match(text, /\+ ipsec: aes-gcm-128 spi-out 0x00001001 spi-in 0x00001002 replay-window 128/)
  assert.is((text.match(/\$ \[xfrm\] ip xfrm state add .*'?<key hidden>'?/g) ?? []).length, 2, text)
  assert.is((text.match(/\$ \[xfrm\] ip xfrm policy add /g) ?? []).length, 4, text)
  assert.equal(allHex(text + JSON.stringify(planToJSON(plan))), [])
  const x = xfrmLines(plan, obs)
  assert.is(x.lines.length, 6)
  assert.ok(x.lines.some((l) => l.includes('0x' + K_OUT)) && x.lines.some((l) => l.includes('0x' + K_IN)))
  assert.equal(allHex(JSON.stringify(x.shown)), [])
  assert.equal(x.disablePolicy, ['vti1'])
})

function observedTunnel(x: XfrmObserved): ObservedTunnel {
  const t: ObservedTunnel = {
    name: 'vti1', ifindex: 5, driver: 'kernel', owned: true, operstate: 'UNKNOWN', addresses: ['10.10.5.1/30'], routes: [],
    params: {mode: 'vti', local: '198.51.100.1', remote: '198.51.100.2', ikey: 7, okey: 7, fwmark: 0, up: true, mtu: 1480},
  }
  // what observe attaches (ipsecOf), with the outbound SA's mark 7 like the spec's key
  return {...t, ipsec: undefined}
}

test('plan: unchanged SAs → no step; a key change → ~ ipsec (old keys → new keys); a conflicting foreign SPI → exit 65', async () => {
  const {ipsecOf} = await import('../../../src/ipsec/xfrm.js')
  const st = desired(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`)
  const x = observedX()
  for (const s of x.sas) s.mark = 7
  for (const p of x.policies) p.mark = 7
  const t = observedTunnel(x)
  t.ipsec = ipsecOf(t, x)
  assert.is(t.ipsec!.problems, undefined, JSON.stringify(t.ipsec))
  assert.equal(makePlan(st, observedWith(x, [t]), {prune: false, support: SUPPORT}).steps, [])
  const st2 = desired(`out: 0x${K_NEW}\nin: 0x${K_IN}\n`)
  const plan = makePlan(st2, observedWith(x, [t]), {prune: false, support: SUPPORT})
  assert.is(plan.steps.length, 1)
  assert.is(plan.steps[0]!.kind, 'update')
  const text = renderPlan(plan, {color: false, file: 'spec.yaml'})
  assert.match(text, /~ ipsec: .*\(old keys\) → .*\(new keys\)/)
  assert.equal(allHex(text + JSON.stringify(planToJSON(plan))), [])
  const lines = xfrmLines(plan, observedWith(x, [t])).lines
  assert.equal(lines.map((l) => l.slice(0, 3).join(' ')), ['xfrm state delete', 'xfrm state add'])
  const clash = observedWith({sas: [], policies: [], foreignSas: ['198.51.100.2|4097'], foreignPolicies: []})
  try {
    makePlan(st, clash, {prune: false, support: SUPPORT})
    assert.unreachable()
  } catch (e) {
    assert.instance(e, ConflictError)
    assert.match((e as Error).message, /an SA tunctl does not own already uses SPI 0x00001001 towards 198\.51\.100\.2/)
  }
})

test('plan: an SPI towards a destination that a surviving vti (any driver, not in the file) uses → exit 65 naming it; --prune or another SPI → fine', () => {
  const st = desired(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`)
  // a userspace vti of the namespace, from another file: its inbound SA is (198.51.100.1, 0x1002), like vti1's
  const other: ObservedTunnel = {
    name: 'vti9', ifindex: 9, driver: 'userspace', owned: true, operstate: 'UNKNOWN', addresses: [], routes: [], alive: true,
    params: {mode: 'vti', local: '198.51.100.1', remote: '198.51.100.9', ikey: 9, okey: 9, fwmark: 0, up: true},
    ipsec: {spiOut: 0x5001, spiIn: 0x1002, aead: 'aes-gcm-128', replayWindow: 128},
  }
  const obs = () => observedWith({sas: [], policies: [], foreignSas: [], foreignPolicies: []}, [other])
  try {
    makePlan(st, obs(), {prune: false, support: SUPPORT})
    assert.unreachable()
  } catch (e) {
    assert.instance(e, ConflictError)
    assert.is((e as ConflictError).exitCode, 65)
    assert.match((e as Error).message, /tunnel "vti1": SPI 0x00001002 towards 198\.51\.100\.1 is also used by an SA of existing tunnel "vti9".*pick another spi-in/)
  }
  assert.is(makePlan(st, obs(), {prune: true, support: SUPPORT}).counts.delete, 1) // vti9 goes: no clash
  other.ipsec = {...other.ipsec!, spiIn: 0x5002}
  assert.is(makePlan(st, obs(), {prune: false, support: SUPPORT}).counts.create, 1)
})

test('kernel driver: the ESP counters of a vti from its SAs; an outbound SA at oseq 2^32 - 1 is exhausted (show says so)', async () => {
  const {espCounters} = await import('../../../src/ipsec/observe.js')
  const {tunnelJSON, detail} = await import('../../../src/commands/show.js')
  const t = observedTunnel(observedX())
  t.params = {...t.params, ikey: 7, okey: 9}
  const x = observedX()
  assert.equal(espCounters(t, x), {out: {packets: 40, bytes: 4160, exhausted: false}, in: {packets: 30, bytes: 3120, replay: 2, failed: 1}})
  const k = kernelText(K_OUT, '0xffffffff')
  const spent: XfrmObserved = {...x, sas: parseStates(k.state).owned}
  t.esp = espCounters(t, spent)
  t.ipsec = {spiOut: 0x1001, spiIn: 0x1002, aead: 'aes-gcm-128', replayWindow: 128}
  assert.is((tunnelJSON(t) as any).ipsec.counters.out.exhausted, true)
  assert.match(detail(t), /esp out: +40 packets, 4160 bytes, SA exhausted/)
})

test('plan: deleting the tunnel removes its SAs and policies, and only those', () => {
  const x = observedX()
  for (const s of x.sas) s.mark = 7
  for (const p of x.policies) p.mark = 7
  const t = observedTunnel(x)
  t.ipsec = {spiOut: 0x1001, spiIn: 0x1002, aead: 'aes-gcm-128', replayWindow: 128}
  const st = parseSpec('s.yaml', 'version: 1\ntunnels:\n  vti1: {mode: vti, state: absent}\n', {rtTables: new Map()})
  const plan = makePlan(st, observedWith(x, [t]), {prune: false, support: SUPPORT})
  const lines = xfrmLines(plan, observedWith(x, [t])).lines
  assert.is(lines.length, 6)
  assert.ok(lines.every((l) => l[2] === 'delete'))
  assert.not.ok(lines.some((l) => l.includes('203.0.113.9')), 'the foreign SA is not touched')
})

test.run()
