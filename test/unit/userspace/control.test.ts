// control.ts without root: which modes have a userspace driver, and observeEncaps reading state/stats files
// (alive only for a live daemon process, counters from the stats file) in a temporary run directory.
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {spawn} from 'node:child_process'
import {suite} from 'uvu'
import * as assert from 'uvu/assert'

const run = mkdtempSync(join(tmpdir(), 'tunctl-run-'))
process.env.TUNCTL_RUN_DIR = run
const control = await import('../../../src/userspace/control.js')

const t = suite('userspace control')
const params = {mode: 'gre', local: '192.0.2.1', remote: '198.51.100.7', ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, up: true, ikey: 5, okey: 5}

t.after(() => rmSync(run, {recursive: true, force: true}))

t('supportsUserspace: ipip, gre, sit, isatap; not vti', () => {
  for (const m of ['ipip', 'gre', 'sit', 'isatap'] as const) assert.ok(control.supportsUserspace(m), m)
  assert.is(control.supportsUserspace('vti'), false)
})

t('observeEncaps: nothing recorded → empty map', async () => {
  assert.is((await control.observeEncaps({netns: 'none-such'})).size, 0)
})

t('observeEncaps: params and counters from the files; alive only for a live daemon process', async () => {
  const dir = join(run, 'ns1')
  mkdirSync(dir, {recursive: true})
  // a live process whose command line names a daemon (stands in for dist/userspace/daemon.js)
  const child = spawn(process.execPath, ['-e', 'setTimeout(()=>{},30000)', '/x/dist/userspace/daemon.js', join(dir, 'gre1.json')], {stdio: 'ignore'})
  try {
    await new Promise((r) => setTimeout(r, 100))
    writeFileSync(join(dir, 'gre1.json'), JSON.stringify({name: 'gre1', netns: 'ns1', params, generation: 1, pid: child.pid}))
    writeFileSync(
      join(dir, 'gre1.stats.json'),
      JSON.stringify({name: 'gre1', pid: child.pid, generation: 1, startedAt: 'x', updatedAt: 'y', counters: {rxPackets: 3, rxBytes: 300, txPackets: 4, txBytes: 400, rxErrors: 1, txErrors: 0, rxDropped: 2, txDropped: 0, icmpSent: 0, drops: {bad_key: 2}}}),
    )
    // dead: a pid that is not running (our own pid is alive but is not a daemon → also dead)
    writeFileSync(join(dir, 'ipip1.json'), JSON.stringify({name: 'ipip1', params: {...params, mode: 'ipip'}, generation: 3, pid: process.pid}))
    writeFileSync(join(dir, 'lock'), '123')
    const m = await control.observeEncaps({netns: 'ns1'})
    assert.equal([...m.keys()], ['gre1', 'ipip1'])
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
  }
})

t('startEncap refuses vti and mplsip before touching anything', async () => {
  let err: any
  try {
    await control.startEncap('v1', {...params, mode: 'vti'} as any, {netns: 'ns2'})
  } catch (e) {
    err = e
  }
  assert.is(err?.exitCode, 69)
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
