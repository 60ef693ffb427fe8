// control.ts without root: which modes have a userspace driver, and observeEncaps reading the state record, an older
// release's per-tunnel state files and the stats files
// (alive only for a live engine process of that run dir, counters from the stats file) in a temporary run directory.
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {waitFor} from '../../lib/wait.js'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {spawn, type ChildProcess} from 'node:child_process'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'

const run = mkdtempSync(join(tmpdir(), 'tunctl-run-'))
process.env.TUNCTL_RUN_DIR = run
const control = await import('../../../src/userspace/control.js')

const t = suite('userspace control')
const params = {mode: 'gre', local: '192.0.2.1', remote: '198.51.100.7', ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, up: true, ikey: 5, okey: 5}

t.after(() => rmSync(run, {recursive: true, force: true}))

/** A live process whose command line names the engine of run dir `dir` (a stand-in for dist/userspace/engine.js),
 * once its command line is readable. The caller kills it. */
async function standInEngine(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(()=>{},30000)', '/x/dist/userspace/engine.js', dir], {stdio: 'ignore'})
  await waitFor(() => { try { return readFileSync(`/proc/${child.pid}/cmdline`, 'utf8') } catch { return '' } }, (x) => x.includes('engine'), {what: 'the stand-in engine process'})
  return child
}

t('supportsUserspace: ipip, gre, sit, isatap, vti (ESP in native/vti.c)', () => {
  for (const m of ['ipip', 'gre', 'sit', 'isatap', 'vti'] as const) assert.ok(control.supportsUserspace(m), m)
})

t('observeEncaps: nothing recorded → empty map', async () => {
  assert.is((await control.observeEncaps({netns: 'none-such'})).size, 0)
})

t('observeEncaps: params and counters from the files; alive only for a live engine process of that run dir', async () => {
  const dir = join(run, 'ns', 'ns1')
  mkdirSync(dir, {recursive: true})
  const child = await standInEngine(dir)
  // an engine of another run dir: not this namespace's
  const other = await standInEngine(dir + '-other').catch((e) => {
    child.kill('SIGKILL')
    throw e
  })
  try {
    writeFileSync(join(dir, 'gre1.json'), JSON.stringify({name: 'gre1', netns: 'ns1', params, generation: 1, pid: child.pid}))
    writeFileSync(
      join(dir, 'gre1.stats.json'),
      JSON.stringify({name: 'gre1', pid: child.pid, generation: 1, startedAt: 'x', updatedAt: 'y', counters: {rxPackets: 3, rxBytes: 300, txPackets: 4, txBytes: 400, rxErrors: 1, txErrors: 0, rxDropped: 2, txDropped: 0, icmpSent: 0, drops: {bad_key: 2}}}),
    )
    // dead: a pid that is not running (our own pid is alive but is not an engine → also dead; an engine of
    // another run dir → dead too)
    writeFileSync(join(dir, 'ipip1.json'), JSON.stringify({name: 'ipip1', params: {...params, mode: 'ipip'}, generation: 3, pid: process.pid}))
    writeFileSync(join(dir, 'ipip2.json'), JSON.stringify({name: 'ipip2', params: {...params, mode: 'ipip'}, generation: 1, pid: other.pid}))
    writeFileSync(join(dir, 'lock'), '123')
    const m = await control.observeEncaps({netns: 'ns1'})
    assert.equal([...m.keys()], ['gre1', 'ipip1', 'ipip2'])
    assert.is(m.get('ipip2')!.alive, false, 'an engine of another run dir')
    const g = m.get('gre1')!
    assert.is(g.alive, true)
    assert.is(g.pid, child.pid)
    assert.equal(g.params, params)
    assert.equal(g.counters, {rxPackets: 3, rxBytes: 300, txPackets: 4, txBytes: 400, rxErrors: 1, txErrors: 0, rxDropped: 2, txDropped: 0, drops: {bad_key: 2}})
    assert.is(m.get('ipip1')!.alive, false)
    assert.is(m.get('ipip1')!.counters, undefined)
    child.kill('SIGKILL')
    await new Promise((r) => child.on('exit', r))
    assert.is((await control.observeEncaps({netns: 'ns1'})).get('gre1')!.alive, false)
  } finally {
    child.kill('SIGKILL')
    other.kill('SIGKILL')
  }
})

t('observeEncaps counters: false: the same tunnels, parameters, engine and liveness, no counters; a counters file read only for what the state does not say', async () => {
  const dir = join(run, 'ns', 'ns-nocounters')
  mkdirSync(dir, {recursive: true})
  const child = await standInEngine(dir)
  try {
    const counters = {rxPackets: 3, rxBytes: 300, txPackets: 4, txBytes: 400, rxErrors: 0, txErrors: 0, rxDropped: 0, txDropped: 0, icmpSent: 0}
    writeFileSync(join(dir, 'gre1.json'), JSON.stringify({name: 'gre1', params, generation: 1, pid: child.pid}))
    writeFileSync(join(dir, 'gre1.stats.json'), JSON.stringify({name: 'gre1', pid: child.pid, generation: 1, startedAt: 'x', updatedAt: 'y', counters}))
    // no state file: its parameters and engine are only in its counters file
    writeFileSync(join(dir, 'gre2.stats.json'), JSON.stringify({name: 'gre2', pid: child.pid, generation: 1, params: {...params, ikey: 6, okey: 6}, startedAt: 'x', updatedAt: 'y', counters}))
    const full = await control.observeEncaps({netns: 'ns-nocounters'})
    const lean = await control.observeEncaps({netns: 'ns-nocounters', counters: false})
    assert.equal([...lean.keys()], ['gre1', 'gre2'])
    assert.ok(full.get('gre1')!.counters)
    const {counters: _c, updatedAt: _u, ...same} = full.get('gre1')!
    assert.equal(lean.get('gre1'), same, 'gre1: its counters file left unread')
    // (read for its parameters: its counters come along)
    assert.equal(lean.get('gre2'), full.get('gre2'))
    assert.is(lean.get('gre1')!.alive, true)
    assert.is(lean.get('gre2')!.params.ikey, 6)
  } finally {
    child.kill('SIGKILL')
  }
})

t('observeEncaps: legacy files (an older release\'s /run/tunctl/<netns|default>) count only for their namespace; corrupt ones are ignored with a warning', async () => {
  const legacy = join(run, 'default')
  mkdirSync(legacy, {recursive: true})
  // root namespace's (no netns field) and a netns literally named "default" share the legacy directory
  writeFileSync(join(legacy, 'g0.json'), JSON.stringify({name: 'g0', params, generation: 1}))
  writeFileSync(join(legacy, 'g9.json'), JSON.stringify({name: 'g9', netns: 'default', params, generation: 1}))
  assert.equal([...(await control.observeEncaps({})).keys()], ['g0'])
  assert.equal([...(await control.observeEncaps({netns: 'default'})).keys()], ['g9'])
  // the current layout keeps them apart
  const host = join(run, 'host')
  mkdirSync(host, {recursive: true})
  writeFileSync(join(host, 'g1.json'), JSON.stringify({name: 'g1', params, generation: 2}))
  writeFileSync(join(host, 'bad.json'), '{"name": "bad", "params": {"mode": "gre"')
  writeFileSync(join(host, 'odd.json'), JSON.stringify({name: 'odd', params: {...params, mode: 'nope'}, generation: 1}))
  const writes: string[] = []
  const orig = process.stderr.write.bind(process.stderr)
  ;(process.stderr as any).write = (c: any) => (writes.push(String(c)), true)
  let m
  try {
    m = await control.observeEncaps({})
  } finally {
    ;(process.stderr as any).write = orig
  }
  assert.equal([...m.keys()], ['g1', 'g0'])
  assert.ok(writes.some((w) => /warning: ignoring state file .*bad\.json/.test(w)), writes.join(''))
  assert.ok(writes.some((w) => /warning: ignoring state file .*odd\.json/.test(w)), writes.join(''))
})

t('observeEncaps: the state record (one file for the namespace) names every tunnel and the engine; it wins over an older release\'s per-tunnel file', async () => {
  const dir = join(run, 'ns', 'ns3')
  mkdirSync(dir, {recursive: true})
  const child = await standInEngine(dir)
  try {
    const paths = await import('../../../src/userspace/paths.js')
    const rec = {pid: child.pid!, netns: 'ns3', tunnels: {g1: {name: 'g1', params, generation: 2}, g2: {name: 'g2', params: {...params, ikey: 9, okey: 9}, generation: 1}}}
    writeFileSync(paths.recordPath(dir), paths.recordText(rec))
    // an older release's file of g1 (another generation, a dead pid): the record wins; g3 only there: read too
    writeFileSync(join(dir, 'g1.json'), JSON.stringify({name: 'g1', params: {...params, ttl: 9}, generation: 1, pid: process.pid}))
    writeFileSync(join(dir, 'g3.json'), JSON.stringify({name: 'g3', params, generation: 1, pid: process.pid}))
    const m = await control.observeEncaps({netns: 'ns3'})
    assert.equal([...m.keys()], ['g1', 'g2', 'g3'])
    assert.equal(m.get('g1')!.params, params)
    assert.is(m.get('g1')!.alive, true)
    assert.is(m.get('g1')!.pid, child.pid)
    assert.is(m.get('g2')!.params.ikey, 9)
    assert.is(m.get('g2')!.alive, true)
    assert.is(m.get('g3')!.alive, false, 'an older release\'s file naming a process that is no engine')
    // an entry that is not what tunctl writes is left out (the others stay); a record that does not parse is
    // ignored with a warning, and a running tunnel is still known from its stats file
    const writes: string[] = []
    const quiet = async () => {
      const orig = process.stderr.write.bind(process.stderr)
      ;(process.stderr as any).write = (c: any) => (writes.push(String(c)), true)
      try {
        return await control.observeEncaps({netns: 'ns3'})
      } finally {
        ;(process.stderr as any).write = orig
      }
    }
    writeFileSync(paths.recordPath(dir), JSON.stringify({...rec, tunnels: {...rec.tunnels, g2: {name: 'other', params, generation: 1}}}))
    assert.equal(paths.readRecord(dir)!.damaged, ['g2'])
    assert.equal([...(await quiet()).keys()], ['g1', 'g3'])
    assert.ok(writes.some((w) => /warning: ignoring entries g2 of state record/.test(w)), writes.join(''))
    writeFileSync(paths.recordPath(dir), '{"tunnels": {"g1": nul')
    writeFileSync(join(dir, 'g2.stats.json'), JSON.stringify({name: 'g2', pid: child.pid, generation: 1, startedAt: 'x', updatedAt: 'y', params}))
    const m2 = await quiet()
    assert.is(paths.readRecord(dir), null)
    assert.ok(writes.some((w) => /warning: ignoring state record .*\.tunnels\.json/.test(w)), writes.join(''))
    assert.equal([...m2.keys()], ['g1', 'g2', 'g3'])
    assert.equal(m2.get('g1')!.params, {...params, ttl: 9}, 'the older file, now that the record says nothing')
    assert.is(m2.get('g2')!.alive, true, 'from the stats file')
  } finally {
    child.kill('SIGKILL')
  }
})

t('the state record: written compact, without per-entry pid or netns; no file reads as undefined', async () => {
  const paths = await import('../../../src/userspace/paths.js')
  const dir = mkdtempSync(join(run, 'rec-'))
  assert.is(paths.readRecord(dir), undefined)
  writeFileSync(paths.recordPath(dir), paths.recordText({pid: 42, startTicks: 7, netns: 'n', tunnels: {b: {name: 'b', netns: 'n', params, generation: 3, pid: 41}, a: {name: 'a', params, generation: 1}}} as any))
  const text = readFileSync(paths.recordPath(dir), 'utf8')
  assert.is(text.split('\n').length, 2, 'one line')
  assert.equal(paths.readRecord(dir), {pid: 42, startTicks: 7, netns: 'n', tunnels: {a: {name: 'a', params, generation: 1}, b: {name: 'b', params, generation: 3}}})
})

t('startEncap refuses mplsip, and a vti ipsec block whose key file was not read, before touching anything', async () => {
  let err: any
  try {
    await control.startEncap('v1', {...params, mode: 'vti'} as any, {netns: 'ns2', ipsec: {spiOut: 0x1001, spiIn: 0x1002, aead: 'aes-gcm-128', replayWindow: 128}})
  } catch (e) {
    err = e
  }
  assert.match(String(err?.message), /key file was not read/)
  err = undefined
  try {
    await control.startEncap('s1', {...params, mode: 'sit', proto: 'mplsip'} as any, {netns: 'ns2'})
  } catch (e) {
    err = e
  }
  assert.is(err?.exitCode, 69)
  assert.match(String(err?.message), /mplsip/)
})

t.run()
