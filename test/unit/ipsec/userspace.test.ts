// vti ipsec with the userspace driver (src/ipsec/userspace.ts): what the daemon's state file records instead of
// keys (key-file path + fingerprint), plans that start the daemon with the block and no kernel xfrm objects, key
// changes detected by fingerprint, and the daemon's own read of the key file (same checks, fingerprint enforced).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseSpec} from '../../../src/spec/load.js'
import {loadKeyFiles} from '../../../src/ipsec/keyfile.js'
import {getKeys, keyFingerprint, sameKeys} from '../../../src/ipsec/keys.js'
import {espRecord, espStartOptions, isEspRecord, loadEspKeys, observedIpsec} from '../../../src/ipsec/userspace.js'
import {xfrmLines} from '../../../src/ipsec/plan.js'
import {makePlan, planToJSON, renderPlan} from '../../../src/plan/index.js'
import {compilePlan} from '../../../src/plan/lines.js'
import {DRIVERS} from '../../../src/drivers/index.js'
import type {ObservedState, ObservedTunnel} from '../../../src/model/types.js'

const K_OUT = '00112233445566778899aabbccddeeff0a0b0c0d'
const K_IN = 'ffeeddccbbaa99887766554433221100a1b1c1d1'
const K_NEW = '0123456789abcdef0123456789abcdef01234567'
// this host: no ip_vti, the userspace driver available
const SUPPORT = {vti: {kernel: false, userspace: true, reason: 'kernel has no ip_vti'}}

const SPEC = `version: 1
tunnels:
  vti1:
    mode: vti
    local: 198.51.100.1
    remote: 198.51.100.2
    key: 7
    addresses: [10.10.5.1/30]
    ipsec:
      spi-out: 0x1001
      spi-in: 0x1002
      aead: aes-gcm-128
      key-file: vti.keys
`
const dirs: string[] = []
function desired(keys: string, text = SPEC) {
  const d = mkdtempSync(join(tmpdir(), 'tunctl-ipsec-us-'))
  dirs.push(d)
  writeFileSync(join(d, 'spec.yaml'), text)
  writeFileSync(join(d, 'vti.keys'), keys)
  chmodSync(join(d, 'vti.keys'), 0o600)
  const st = parseSpec(join(d, 'spec.yaml'), text, {rtTables: new Map()})
  loadKeyFiles(st)
  return {st, dir: d, keyPath: join(d, 'vti.keys')}
}
test.after(() => dirs.forEach((d) => rmSync(d, {recursive: true, force: true})))

const allHex = (s: string) => [K_OUT, K_IN, K_NEW].filter((k) => s.toLowerCase().includes(k))

/** the userspace vti a daemon runs with the block recorded in its state file (JSON round trip, as observe reads it) */
function running(rec: unknown): ObservedTunnel {
  const r = JSON.parse(JSON.stringify(rec))
  assert.ok(isEspRecord(r), JSON.stringify(r))
  return {
    name: 'vti1', ifindex: 9, driver: 'userspace', owned: true, operstate: 'UNKNOWN', addresses: ['10.10.5.1/30'], routes: [], alive: true, pid: 1234,
    params: {mode: 'vti', local: '198.51.100.1', remote: '198.51.100.2', ikey: 7, okey: 7, fwmark: 0, up: true, mtu: 1480},
    ipsec: observedIpsec(r),
  }
}
const observed = (tunnels: ObservedTunnel[]): ObservedState => ({tunnels, links: tunnels.map((t) => t.name), kinds: {}}) // no xfrm on this host

test('fingerprint: fixed format, same keys → same, one bit → different, never contains a key', () => {
  const a = {out: Buffer.from(K_OUT, 'hex'), in: Buffer.from(K_IN, 'hex')}
  const b = {out: Buffer.from(K_OUT, 'hex'), in: Buffer.from(K_IN, 'hex')}
  const c = {out: Buffer.from(K_OUT, 'hex'), in: Buffer.from(K_IN, 'hex')}
  c.in[19]! ^= 1
  assert.match(keyFingerprint(a), /^sha256:[0-9a-f]{32}$/)
  assert.is(keyFingerprint(a), keyFingerprint(b))
  assert.is.not(keyFingerprint(a), keyFingerprint(c))
  assert.equal(allHex(keyFingerprint(a)), [])
})

test('state record: key-file path and fingerprint, never keys; observed back, it compares with the spec by fingerprint', () => {
  const {st, keyPath} = desired(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`)
  const rec = espRecord(st.tunnels[0]!.ipsec!)
  assert.is(rec.keyPath, keyPath)
  assert.is(rec.keyFile, 'vti.keys')
  assert.equal(allHex(JSON.stringify(rec)), [])
  assert.not.ok(isEspRecord({...rec, keyPath: 'relative/vti.keys'}), 'a relative key path is not a record')
  assert.not.ok(isEspRecord({...rec, keyFingerprint: K_OUT}), 'a key is no fingerprint')
  const o = running(rec).ipsec!
  assert.is(getKeys(o), undefined, 'the observed block holds no keys')
  assert.is(sameKeys(o, st.tunnels[0]!.ipsec), true)
  const other = desired(`out: 0x${K_NEW}\nin: 0x${K_IN}\n`).st
  assert.is(sameKeys(o, other.tunnels[0]!.ipsec), false)
  // a rollback restarting the daemon from the observed block: same record
  assert.equal(espRecord(o), JSON.parse(JSON.stringify(rec)))
})

test('plan (userspace driver): create starts the daemon with the block; no xfrm lines, no conflict without kernel xfrm', () => {
  const {st} = desired(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`)
  const plan = makePlan(st, observed([]), {prune: false, support: SUPPORT})
  assert.is(plan.steps.length, 1)
  assert.is(plan.steps[0]!.driver, 'userspace')
  const text = renderPlan(plan, {color: false, showCommands: true, file: 'spec.yaml'})
  assert.match(text, /\+ ipsec: aes-gcm-128 spi-out 0x00001001 spi-in 0x00001002 replay-window 128/)
  assert.equal(allHex(text + JSON.stringify(planToJSON(plan))), [])
  const x = xfrmLines(plan, observed([]))
  assert.equal(x.lines, [])
  assert.equal(x.disablePolicy, [])
  const start = compilePlan(plan, DRIVERS).programs[0]!.pre.find((a) => a.op === 'start')
  assert.ok(start && start.op === 'start' && start.ipsec === st.tunnels[0]!.ipsec, 'the start action carries the block')
})

test('plan (userspace driver): same keys → nothing; a changed key file → ~ ipsec (old keys → new keys) and a daemon reload', () => {
  const {st} = desired(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`)
  const t = running(espRecord(st.tunnels[0]!.ipsec!))
  assert.equal(makePlan(st, observed([t]), {prune: false, support: SUPPORT}).steps, [])
  const st2 = desired(`out: 0x${K_NEW}\nin: 0x${K_IN}\n`).st
  const plan = makePlan(st2, observed([t]), {prune: false, support: SUPPORT})
  assert.is(plan.steps.length, 1)
  assert.is(plan.steps[0]!.kind, 'update')
  const text = renderPlan(plan, {color: false, file: 'spec.yaml'})
  assert.match(text, /~ ipsec: .*\(old keys\) → .*\(new keys\)/)
  assert.equal(allHex(text), [])
  const pre = compilePlan(plan, DRIVERS).programs[0]!.pre
  assert.equal(pre.map((a) => a.op), ['start'])
  // another SPI: a change too
  const st3 = desired(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`, SPEC.replace('spi-in: 0x1002', 'spi-in: 0x1003')).st
  assert.match(renderPlan(makePlan(st3, observed([t]), {prune: false, support: SUPPORT}), {color: false, file: 'spec.yaml'}), /spi-in 0x00001002 .* → .*spi-in 0x00001003/)
})

test('daemon: reads the key file itself with the same checks; a changed file (fingerprint) or a readable one is refused without quoting keys', () => {
  const {st, keyPath} = desired(`out: 0x${K_OUT}\nin: 0x${K_IN}\n`)
  const rec = espRecord(st.tunnels[0]!.ipsec!)
  const keys = loadEspKeys('vti1', rec)
  assert.is(keys.out!.toString('hex'), K_OUT)
  const opts = espStartOptions(rec, keys, {resume: 5, limit: 100})
  assert.equal({alg: opts.alg, spiOut: opts.spiOut, spiIn: opts.spiIn, rw: opts.replayWindow, resume: opts.resumeSeq, limit: opts.seqLimit},
    {alg: 'aes-gcm-128', spiOut: 0x1001, spiIn: 0x1002, rw: 128, resume: 5, limit: 100})
  writeFileSync(keyPath, `out: 0x${K_NEW}\nin: 0x${K_IN}\n`)
  let err: any
  try {
    loadEspKeys('vti1', rec)
  } catch (e) {
    err = e
  }
  assert.match(String(err?.message), /changed since they were planned/)
  assert.equal(allHex(String(err?.message)), [])
  chmodSync(keyPath, 0o640)
  err = undefined
  try {
    loadEspKeys('vti1', rec)
  } catch (e) {
    err = e
  }
  assert.match(String(err?.message), /readable or writable by group or others/)
  assert.equal(allHex(String(err?.message)), [])
})

test.run()
