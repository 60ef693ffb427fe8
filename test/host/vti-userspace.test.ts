// Host e2e of the userspace vti (native/vti.c, ESP in the namespace's engine) through the CLI: two namespaces
// joined by veth, `tunctl apply` of a vti with an ipsec block on both ends (this host has no ip_vti: auto picks
// userspace), for aes-gcm-128 and aes-cbc-256 + hmac-sha256. Ping and iperf3 both ways; the underlay carries
// nothing but ESP (an AF_PACKET capture on the veth); a killed engine is restarted by apply and its peer still
// accepts it (sequence numbers resume above the reservation); forged packets with the right keys are accepted
// once, and a replay, a flipped bit in the payload, in the ICV or in the SPI are each dropped and counted by reason;
// new keys are loaded in place by the same engine without disturbing a gre sibling in the same namespace; an SA
// whose sequence number reached 2^32 - 1 stops, show says so, and new keys replace it (starting at 1 again).
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {addonAvailable, loadAddon} from '../../src/userspace/addon.js'
import {engineFiles, nsDir, recordPath, statsPath} from '../../src/userspace/paths.js'
import {yaml} from '../uml/lib/spec.js'
import {icmp4} from '../unit/userspace/packets.js'
import {waitFor} from '../lib/wait.js'
import {A_ADDR, B_ADDR, type Pair, iperf, makePair, nsExec, rawSendFrom, removePair, tcpTransfer, whyNoHost} from './lib/netns.js'
import {tunctlOk as ok} from './lib/cli.js'

const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-vtius-'))
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))


const hex = (n: number, seed: number) => Buffer.from(Array.from({length: n}, (_, i) => (i * 37 + seed * 101 + 7) & 0xff)).toString('hex')

interface Alg {
  name: string
  block: Record<string, string>
  /** key-file names → hex, A's side (B's has out/in swapped) */
  keys: Record<string, string>
}
const ALGS: Alg[] = [
  {name: 'aes-gcm-128', block: {aead: 'aes-gcm-128'}, keys: {out: hex(20, 1), in: hex(20, 2)}},
  {name: 'aes-cbc-256+hmac-sha256', block: {cipher: 'aes-cbc-256', auth: 'hmac-sha256'}, keys: {'out-enc': hex(32, 3), 'out-auth': hex(32, 4), 'in-enc': hex(32, 5), 'in-auth': hex(32, 6)}},
]
const swap = (k: string) => k.replace(/^out/, 'tmp').replace(/^in/, 'out').replace(/^tmp/, 'in')

function keyFile(path: string, keys: Record<string, string>, peer: boolean) {
  writeFileSync(path, Object.entries(keys).map(([n, v]) => `${peer ? swap(n) : n}: 0x${v}`).join('\n') + '\n')
  chmodSync(path, 0o600)
}

function side(alg: Alg, me: string, peer: string, inner: string, spiOut: number, spiIn: number, keyPath: string) {
  const one = inner.endsWith('.1')
  return {
    vti1: {mode: 'vti', local: me, remote: peer, key: 7, addresses: [`${inner}/30`, `2001:db8:5::${one ? 1 : 2}/64`], ipsec: {'spi-out': spiOut, 'spi-in': spiIn, ...alg.block, 'key-file': keyPath}},
    // a sibling in the same engine: a key change of vti1 must not disturb it
    gre1: {mode: 'gre', local: me, remote: peer, key: 9, addresses: [`10.10.6.${one ? 1 : 2}/30`]},
  }
}

function stats(ns: string, name = 'vti1'): any {
  return JSON.parse(readFileSync(statsPath(name, ns), 'utf8'))
}
/** waits until the engine's counters (rewritten every second) satisfy pred */
async function waitStats(ns: string, pred: (s: any) => boolean, what: string): Promise<any> {
  return waitFor(() => {
    try {
      return stats(ns)
    } catch {
      return undefined
    }
  }, (s) => !!s && pred(s), {what, timeoutMs: 8000, intervalMs: 150})
}
const drop = (s: any, r: string): number => s?.counters?.drops?.[r] ?? 0

function pingOk(ns: string, addr: string) {
  const r = nsExec(ns, 'ping', ['-4', '-c', '3', '-i', '0.2', '-W', '2', addr])
  assert.match(r.out, /3 packets transmitted, 3 received/, r.out + r.err)
}

/** IPv4 protocols (and other ethertypes) seen on ns's ul0 while fn runs: an AF_PACKET capture in python3 */
function capture(ns: string, fn: () => void): Record<string, number> {
  const code = `import socket,select,time,json,sys
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3));s.bind(('ul0',0))
print('ready',flush=True);seen={};end=time.time()+float(sys.argv[1])
while time.time()<end:
  r,_,_=select.select([s],[],[],0.1)
  if not r: continue
  f=s.recv(65535);et=f[12:14].hex()
  k='ipv4/%d'%f[23] if et=='0800' else 'ether/'+et
  seen[k]=seen.get(k,0)+1
print(json.dumps(seen),flush=True)`
  const child = spawnSync('sh', ['-c', `ip netns exec ${ns} python3 -c "$0" 4 > ${scratch}/cap.out 2>&1 &`, code])
  assert.is(child.status, 0)
  const deadline = Date.now() + 5000
  while (!(existsSync(`${scratch}/cap.out`) && readFileSync(`${scratch}/cap.out`, 'utf8').includes('ready')) && Date.now() < deadline) spawnSync('sleep', ['0.05'])
  fn()
  const end = Date.now() + 8000
  let text = ''
  while (Date.now() < end) {
    text = readFileSync(`${scratch}/cap.out`, 'utf8')
    if (/\{.*\}/.test(text)) break
    spawnSync('sleep', ['0.1'])
  }
  rmSync(`${scratch}/cap.out`, {force: true})
  return JSON.parse(/\{.*\}/.exec(text)?.[0] ?? 'null')
}

/** Both sides' key files (B's with out/in swapped) and specs (`pick` chooses the tunnels of `side`), applied. */
function applyBothSides(pair: Pair, alg: Alg, pick: (spec: Record<string, any>) => Record<string, any>) {
  const ka = join(scratch, `${pair.a}.keys`)
  const kb = join(scratch, `${pair.b}.keys`)
  keyFile(ka, alg.keys, false)
  keyFile(kb, alg.keys, true)
  const sides = [[pair.a, side(alg, A_ADDR, B_ADDR, '10.10.5.1', 0x1001, 0x1002, ka)], [pair.b, side(alg, B_ADDR, A_ADDR, '10.10.5.2', 0x1002, 0x1001, kb)]] as const
  return sides.map(([ns, spec]) => {
    const f = join(scratch, `${ns}.yaml`)
    writeFileSync(f, yaml({version: 1, tunnels: pick(spec)}))
    return ok(['apply', '--netns', ns, f])
  })
}

function whyNot(): string | undefined {
  return (
    whyNoHost() ??
    (!addonAvailable() ? 'native addon not built' : undefined) ??
    (!existsSync(join(repo, 'dist', 'commands')) ? 'CLI not built' : undefined) ??
    (existsSync('/sys/module/ip_vti') ? 'this kernel has ip_vti: auto would not pick userspace' : undefined)
  )
}
const why = whyNot()

{
  const t = suite('the process holding ESP keys is not dumpable')
  if (why) t.skip(`skipped: ${why}`, () => {})
  else
    t('after the addon keys an SA, /proc/PID of an unprivileged process belongs to root (PR_SET_DUMPABLE 0: no core dump, no ptrace, no /proc/PID/mem)', () => {
      const addonPath = join(repo, 'build', 'Release', 'tunctl_native.node')
      const code = `import {createRequire} from 'node:module'; import {statSync} from 'node:fs'
const a = createRequire(import.meta.url)(process.argv[1]); const before = statSync('/proc/self/status').uid
a.vtiEncapForTest({mode: 'vti', local: '${A_ADDR}', remote: '${B_ADDR}', ikey: 7, okey: 7}, {esp: {alg: 'aes-gcm-128', spiOut: 4097, spiIn: 4098, replayWindow: 0, keyOut: Buffer.alloc(20, 1), keyIn: Buffer.alloc(20, 2)}}, Buffer.from('4500001400004000400100000a0a05010a0a0502', 'hex'))
console.log(JSON.stringify({before, after: statSync('/proc/self/status').uid}))`
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', code, addonPath], {encoding: 'utf8'})
      assert.is(r.status, 0, r.stderr)
      assert.equal(JSON.parse(r.stdout), {before: 65534, after: 0})
    })
  t.run()
}

for (const alg of ALGS) {
  const t = suite(`userspace vti (${alg.name}) between two namespaces`)
  let pair: Pair | undefined
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('vtius')
      for (const r of applyBothSides(pair, alg, (spec) => spec)) assert.match(r.out, /vti1 \(vti, userspace\)/, r.out)
    })
    t.after(() => removePair(pair))

    t('ping both ways (IPv4 and IPv6 inside); show names the algorithm and SPIs and counts ESP, and no key appears in show, state or logs', async () => {
      pingOk(pair!.a, '10.10.5.2')
      pingOk(pair!.b, '10.10.5.1')
      // IPv6 inside (next header 41)
      const r6 = nsExec(pair!.a, 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', '2001:db8:5::2'])
      assert.match(r6.out, /3 packets transmitted, 3 received/, r6.out + r6.err)
      const s = await waitStats(pair!.b, (s) => s.esp?.rxPackets >= 6, 'B counts ESP')
      await waitStats(pair!.a, (s) => s.esp?.txPackets >= 6, 'A counts ESP')
      assert.ok(s.esp.txPackets >= 6 && s.esp.hasSa, JSON.stringify(s.esp))
      const show = ok(['show', '--json', '--netns', pair!.a]).out
      const me = (JSON.parse(show) as any).tunnels?.find?.((x: any) => x.name === 'vti1') ?? (JSON.parse(show) as any[]).find((x: any) => x.name === 'vti1')
      assert.is(me.ipsec.algorithm, alg.name)
      assert.is(me.ipsec.spiOut, '0x00001001')
      assert.ok(me.ipsec.counters.out.packets >= 6, JSON.stringify(me.ipsec))
      const exported = ok(['export', '--netns', pair!.a]).out
      assert.match(exported, /key-file: \S+\.keys/, exported) // written back as the key-file reference, like the kernel driver's
      assert.match(exported, /spi-out: "?0x0*1001"?/, exported)
      const files = [show, ok(['show', '--netns', pair!.a, 'vti1']).out, exported]
      for (const f of ['.stats.json', '.esp-seq']) files.push(readFileSync(statsPath('vti1', pair!.a).replace('.stats.json', f), 'utf8'))
      const rec = readFileSync(recordPath(nsDir(pair!.a)), 'utf8') // the state record: the key file's path and fingerprint
      assert.match(rec, /"keyFingerprint"/)
      files.push(rec)
      files.push(readFileSync(engineFiles(nsDir(pair!.a)).log, 'utf8')) // the namespace's engine log
      for (const v of Object.values(alg.keys)) for (const text of files) assert.not.ok(text.toLowerCase().includes(v.slice(0, 16)), `a key in ${text.slice(0, 200)}`)
    })

    t('iperf3 both ways through ESP; the sender cuts TSO packets, the receiver coalesces the decrypted segments (GRO)', async () => {
      const b0 = (await waitStats(pair!.b, (s) => !!s.counters, 'B counters')).counters
      const ab = iperf(pair!.a, pair!.b, '10.10.5.2', 1)
      const ba = iperf(pair!.b, pair!.a, '10.10.5.1', 1)
      assert.ok(ab > 10e6 && ba > 10e6, `a→b ${ab} b→a ${ba} bit/s`)
      const b1 = (await waitStats(pair!.b, (s) => s.counters.groMerged > b0.groMerged + 1000, 'B coalesces decrypted TCP segments')).counters
      assert.ok(b1.tsoSegments > b0.tsoSegments + 1000, JSON.stringify({b0, b1}))
    })

    t('32 MB over TCP arrive intact both ways (ESP with TSO segmentation and receive coalescing keeps the bytes)', () => {
      const ab = tcpTransfer(pair!.a, pair!.b, '10.10.5.2', 32 << 20)
      assert.is(ab.received, ab.sent)
      const ba = tcpTransfer(pair!.b, pair!.a, '10.10.5.1', 32 << 20)
      assert.is(ba.received, ba.sent)
    })

    t('the underlay carries only ESP (AF_PACKET capture on the veth during a ping)', () => {
      const seen = capture(pair!.b, () => pingOk(pair!.a, '10.10.5.2'))
      assert.ok(seen, 'no capture')
      assert.ok((seen['ipv4/50'] ?? 0) >= 6, JSON.stringify(seen))
      // GRE (47) is the gre1 sibling's own (its TUN device's IPv6 router solicitations): never the vti's traffic
      const clear = Object.keys(seen).filter((k) => k.startsWith('ipv4/') && k !== 'ipv4/50' && k !== 'ipv4/47')
      assert.equal(clear, [], JSON.stringify(seen))
    })

    t('a killed engine: apply starts a new one, its sequence numbers resume above the reservation, the peer accepts them', async () => {
      const before = stats(pair!.a)
      process.kill(before.pid, 'SIGKILL')
      await waitFor(() => existsSync(`/proc/${before.pid}`), (x) => !x, {what: 'engine gone'})
      const r = ok(['apply', '--netns', pair!.a, join(scratch, `${pair!.a}.yaml`)])
      assert.match(r.out, /encapsulator: dead → running/, r.out)
      const after = await waitStats(pair!.a, (s) => s.pid !== before.pid, 'new engine')
      assert.ok(after.esp.seqLimit > before.esp.seqLimit, JSON.stringify({before: before.esp, after: after.esp}))
      const b0 = stats(pair!.b)
      pingOk(pair!.a, '10.10.5.2')
      const s = await waitStats(pair!.a, (s) => s.esp.txSeq > before.esp.seqLimit, 'sequence numbers above the old reservation')
      assert.ok(s.esp.txSeq > before.esp.seqLimit)
      const b1 = await waitStats(pair!.b, (x) => x.esp.rxPackets >= b0.esp.rxPackets + 3, 'B accepts them')
      assert.is(drop(b1, 'replay') + drop(b1, 'too_old'), drop(b0, 'replay') + drop(b0, 'too_old'), JSON.stringify(b1.counters.drops))
    })

    t('forged with A\'s keys: accepted once; the replay, a flipped payload bit, ICV bit and SPI bit dropped and counted by reason', async () => {
      const esp = () => {
        const k = alg.keys
        const keys = k.out ? {keyOut: Buffer.from(k.out, 'hex'), keyIn: Buffer.from(k.in!, 'hex')} : {keyOut: Buffer.from(k['out-enc']!, 'hex'), keyIn: Buffer.from(k['in-enc']!, 'hex'), authOut: Buffer.from(k['out-auth']!, 'hex'), authIn: Buffer.from(k['in-auth']!, 'hex')}
        return {alg: alg.block.aead ?? alg.block.cipher, spiOut: 0x1001, spiIn: 0x1002, replayWindow: 128, resumeSeq: 0x40000000, ...keys}
      }
      const good = loadAddon().vtiEncapForTest({mode: 'vti', local: A_ADDR, remote: B_ADDR, ikey: 7, okey: 7}, {esp: esp()}, icmp4('10.10.5.1', '10.10.5.2', {id: 77}))
      const flip = (at: number) => {
        const p = Buffer.from(good)
        p[at]! ^= 1
        return p
      }
      const cases: Array<[string, Buffer]> = [
        ['bad_icv', flip(good.length - 40)], // payload (before the ICV): authentication fails
        ['bad_icv', flip(good.length - 1)], // ICV
        ['no_state', flip(23)], // SPI: no SA for (destination, SPI)
      ]
      // the baseline after B's counters settled: two consecutive writes (1 s apart) with the same ESP count, so a
      // late packet of the tests before is not taken for one of the forged ones
      let s0 = await waitStats(pair!.b, () => true, 'B stats')
      let settled = false
      for (let i = 0; i < 8 && !settled; i++) {
        const prev = s0
        s0 = await waitStats(pair!.b, (x) => x.updatedAt !== prev.updatedAt, 'B stats rewritten')
        settled = s0.esp.rxPackets === prev.esp.rxPackets
      }
      assert.ok(settled, 'B receives no ESP of its own before the forged packets')
      for (const [, p] of cases) rawSendFrom(pair!.a, p)
      rawSendFrom(pair!.a, good)
      const s1 = await waitStats(pair!.b, (s) => s.esp.rxPackets >= s0.esp.rxPackets + 1 && drop(s, 'no_state') > drop(s0, 'no_state') && drop(s, 'bad_icv') >= drop(s0, 'bad_icv') + 2, 'B counts the forged packets')
      rawSendFrom(pair!.a, good) // replayed
      const s2 = await waitStats(pair!.b, (s) => drop(s, 'replay') > drop(s1, 'replay'), 'B counts the replay')
      assert.is(drop(s2, 'bad_icv') - drop(s0, 'bad_icv'), 2)
      assert.is(drop(s2, 'no_state') - drop(s0, 'no_state'), 1)
      assert.is(drop(s2, 'replay') - drop(s0, 'replay'), 1)
      // the intact packet was accepted: its replay is dropped as `replay` (a sequence number the window has seen).
      // No exact rxPackets delta: the vti's own IPv6 traffic (MLD, ND) may come through ESP meanwhile (and after
      // the forged packet moved B's window to 0x40000000, A's real packets are too_old)
      assert.ok(s1.esp.rxPackets - s0.esp.rxPackets >= 1, JSON.stringify({s0: s0.esp, s1: s1.esp}))
      assert.ok(s2.counters.rxDropped - s0.counters.rxDropped >= 4, JSON.stringify(s2.counters))
    })

    t('new keys in both key files: plan shows ~ ipsec (old keys → new keys), apply loads them in place (same engine, vti1 keeps its counters, gre1 untouched), traffic flows on the new SAs', async () => {
      const fresh: Record<string, string> = Object.fromEntries(Object.entries(alg.keys).map(([n, v], i) => [n, hex(v.length / 2, 50 + i)]))
      keyFile(join(scratch, `${pair!.a}.keys`), fresh, false)
      keyFile(join(scratch, `${pair!.b}.keys`), fresh, true)
      pingOk(pair!.a, '10.10.6.2') // gre1 carries traffic before
      const before = stats(pair!.a)
      const gre0 = await waitFor(() => stats(pair!.a, 'gre1'), (g) => g.counters.txPackets >= 3, {what: 'gre1 counts its ping', timeoutMs: 8000, intervalMs: 150})
      const plan = ok(['plan', '--netns', pair!.a, join(scratch, `${pair!.a}.yaml`)]).out
      assert.match(plan, /~ ipsec: .*\(old keys\) → .*\(new keys\)/, plan)
      for (const v of Object.values(fresh)) assert.not.ok(plan.includes(v.slice(0, 16)), 'a key in the plan')
      for (const ns of [pair!.a, pair!.b]) ok(['apply', '--netns', ns, join(scratch, `${ns}.yaml`)])
      const after = await waitStats(pair!.a, (s) => s.generation > before.generation, 'A reloaded')
      assert.is(after.pid, before.pid, 'loaded in place by the same engine, not restarted')
      assert.is(after.startedAt, before.startedAt, 'the same tunnel of the engine (changed in place)')
      assert.ok(after.esp.txPackets >= before.esp.txPackets, `ESP counters carried over: ${JSON.stringify({before: before.esp, after: after.esp})}`)
      const gre1 = stats(pair!.a, 'gre1')
      assert.is(gre1.generation, gre0.generation, 'gre1 was not part of the change')
      assert.is(gre1.startedAt, gre0.startedAt)
      assert.ok(gre1.counters.txPackets >= gre0.counters.txPackets && gre0.counters.txPackets >= 3, JSON.stringify({gre0: gre0.counters, gre1: gre1.counters}))
      assert.is(gre1.pid, after.pid)
      pingOk(pair!.a, '10.10.5.2')
      pingOk(pair!.b, '10.10.5.1')
      pingOk(pair!.a, '10.10.6.2')
      const again = ok(['plan', '--netns', pair!.a, join(scratch, `${pair!.a}.yaml`)]).out
      assert.match(again, /No changes/, again)
    })
  }
  t.run()
}

{
  // The 32-bit sequence number never wraps: forced cheaply through the reservation file (<name>.esp-seq), which a
  // restarted engine resumes from — no test code in the packet path
  const t = suite('an exhausted outbound SA: it stops at 2^32 - 1, show says so (not a plan problem), new keys replace it')
  let pair: Pair | undefined
  const alg = ALGS[0]!
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('vtiexh')
      applyBothSides(pair, alg, (spec) => ({vti1: spec.vti1}))
    })
    t.after(() => removePair(pair))

    t('resumed at 2^32 - 4: the last numbers go out and are accepted, then seq_exhausted; show (text, --json) says exhausted; plan has nothing to do; new keys on both ends: seq 1 again, traffic flows', async () => {
      const a = pair!.a
      const fa = join(scratch, `${a}.yaml`)
      const seqFile = statsPath('vti1', a).replace('.stats.json', '.esp-seq')
      pingOk(a, '10.10.5.2')
      const before = await waitStats(a, (s) => s.esp?.txPackets >= 3, 'A sends ESP')
      const rec = JSON.parse(readFileSync(seqFile, 'utf8'))
      assert.ok(rec.outSa && rec.reserved > 0 && rec.reserved < 0xffffffff, JSON.stringify(rec))
      // as if this SA had reserved up to 2^32 - 4: the next engine resumes above it
      writeFileSync(seqFile, JSON.stringify({...rec, reserved: 0xffffffff - 3}))
      process.kill(before.pid, 'SIGKILL')
      await waitFor(() => existsSync(`/proc/${before.pid}`), (x) => !x, {what: 'engine gone'})
      assert.match(ok(['apply', '--netns', a, fa]).out, /encapsulator: dead → running/)
      const resumed = await waitStats(a, (s) => s.pid !== before.pid && !!s.esp, 'new engine')
      assert.ok(resumed.esp.txSeq >= 0xffffffff - 3 && resumed.esp.seqLimit === 0xffffffff, JSON.stringify(resumed.esp))
      const b0 = stats(pair!.b)
      // more packets than numbers left (the vti's own IPv6 traffic may take some too)
      nsExec(a, 'ping', ['-4', '-c', '6', '-i', '0.2', '-W', '1', '10.10.5.2'])
      const x = await waitStats(a, (s) => s.esp.exhausted === true && drop(s, 'seq_exhausted') >= 1, 'A exhausted')
      assert.is(x.esp.txSeq, 0xffffffff)
      assert.is(drop(x, 'seq_reserved'), 0, 'counted as exhausted, not as waiting for a reservation')
      assert.match(readFileSync(engineFiles(nsDir(a)).log, 'utf8'), /vti1: ESP SA spi-out 4097: 2\^32 - 1 packets sent.*new SA starts at 1/)
      // the last numbers before 2^32 were sent and B took them (no wrap to small numbers: nothing replayed or too old)
      const b1 = await waitStats(pair!.b, (s) => s.esp.rxPackets > b0.esp.rxPackets, 'B accepts the last numbers')
      assert.is(drop(b1, 'replay') + drop(b1, 'too_old'), drop(b0, 'replay') + drop(b0, 'too_old'), JSON.stringify(b1.counters.drops))
      const j = (JSON.parse(ok(['show', '--json', '--netns', a]).out) as any).tunnels.find((x: any) => x.name === 'vti1')
      assert.is(j.ipsec.counters.out.exhausted, true, JSON.stringify(j.ipsec))
      assert.not.ok(j.ipsec.problems, 'not a plan problem')
      assert.match(ok(['show', '--netns', a, 'vti1']).out, /esp out: +\d+ packets, \d+ bytes, SA exhausted \(2\^32 - 1 sent, sends nothing more: new spi-out or keys needed\)/)
      assert.match(ok(['plan', '--netns', a, fa]).out, /No changes/)
      // the remedy: new keys in both key files, applied on both ends; the new outbound SA starts at 1
      const fresh: Record<string, string> = Object.fromEntries(Object.entries(alg.keys).map(([n, v], i) => [n, hex(v.length / 2, 70 + i)]))
      keyFile(join(scratch, `${a}.keys`), fresh, false)
      keyFile(join(scratch, `${pair!.b}.keys`), fresh, true)
      for (const ns of [a, pair!.b]) ok(['apply', '--netns', ns, join(scratch, `${ns}.yaml`)])
      await waitStats(a, (s) => s.generation > x.generation && !s.esp.exhausted, 'A on its new SA')
      pingOk(a, '10.10.5.2')
      pingOk(pair!.b, '10.10.5.1')
      const y = await waitStats(a, (s) => s.esp.txSeq >= 3 && !s.esp.exhausted, 'A sends on the new SA')
      assert.ok(y.esp.txSeq < 1000, `the new SA starts at 1: ${JSON.stringify(y.esp)}`)
      assert.is((JSON.parse(ok(['show', '--json', '--netns', a]).out) as any).tunnels.find((x: any) => x.name === 'vti1').ipsec.counters.out.exhausted, false)
      const rec2 = JSON.parse(readFileSync(seqFile, 'utf8'))
      assert.ok(rec2.outSa !== rec.outSa && rec2.reserved < 0xffffffff, JSON.stringify(rec2))
    })
  }
  t.run()
}

{
  const t = suite('the engine opens its ESP socket with the namespace\'s first vti')
  let pair: Pair | undefined
  /** raw sockets of protocol 50 in ns (/proc/net/raw: the local "port" is the protocol, 0x32) */
  const espSockets = (ns: string) => {
    const r = nsExec(ns, 'cat', ['/proc/net/raw'])
    assert.is(r.code, 0, r.err)
    return r.out.split('\n').filter((l) => /^\s*\d+: [0-9A-F]{8}:0032 /.test(l)).length
  }
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('vtiesp')
    })
    t.after(() => removePair(pair))

    t('gre only: no protocol-50 socket; a vti added to the same engine opens one (same engine, the gre tunnel not restarted)', async () => {
      const alg = ALGS[0]!
      const ka = join(scratch, `${pair!.a}.keys`)
      keyFile(ka, alg.keys, false)
      const both = side(alg, A_ADDR, B_ADDR, '10.10.5.1', 0x1001, 0x1002, ka)
      const f = join(scratch, `${pair!.a}-esp.yaml`)
      writeFileSync(f, yaml({version: 1, tunnels: {gre1: both.gre1}}))
      ok(['apply', '--netns', pair!.a, f])
      const gre0 = await waitFor(() => stats(pair!.a, 'gre1'), (g) => !!g?.pid, {what: 'gre1 stats', timeoutMs: 8000, intervalMs: 150})
      assert.is(espSockets(pair!.a), 0, 'an ESP socket without a vti')
      writeFileSync(f, yaml({version: 1, tunnels: both}))
      ok(['apply', '--netns', pair!.a, f])
      assert.is(espSockets(pair!.a), 1, 'one ESP socket with a vti')
      const v = await waitStats(pair!.a, (s) => !!s.esp, 'vti1 stats')
      assert.is(v.pid, gre0.pid, 'the same engine')
      const gre1 = stats(pair!.a, 'gre1')
      assert.is(gre1.startedAt, gre0.startedAt, 'gre1 not restarted')
      ok(['del', '--netns', pair!.a, 'vti1', 'gre1'])
      await waitFor(() => existsSync(`/proc/${v.pid}`), (x) => !x, {what: 'the engine exits with its last tunnel'})
    })
  }
  t.run()
}
