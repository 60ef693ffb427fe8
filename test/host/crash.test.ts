// Crash safety of the userspace driver (issue #6): a TUN device carries tunctl's mark from the moment it exists,
// so a CLI killed mid-apply, a killed engine, a damaged or lost state record, or a failed batch leave nothing that
// wedges the namespace: the next apply converges, del works, and a failed apply leaves no device, engine tunnel or state.
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {addonAvailable} from '../../src/userspace/addon.js'
import {nsDir, readRecord, recordPath, statsPath} from '../../src/userspace/paths.js'
import {yaml} from '../uml/lib/spec.js'
import {type Pair, makePair, ping, removePair, run, sleep, whyNoHost} from './lib/netns.js'
import {tunctl, tunctlOk as ok} from './lib/cli.js'
import {cliEnv} from '../lib/cli.js'

const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..')
const bin = join(repo, 'bin', 'run')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-crash-'))
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))

function showJson(ns: string): any[] {
  const j = JSON.parse(ok(['show', '--json', '--netns', ns]).out)
  return Array.isArray(j) ? j : j.tunnels
}

/** the TUN devices of ns: name → {up, alias, persist} */
function tuns(ns: string): Map<string, {up: boolean; alias?: string; persist: boolean}> {
  const links = JSON.parse(run('ip', ['-n', ns, '-j', '-d', 'link', 'show']).out || '[]') as any[]
  return new Map(links.filter((l) => l?.linkinfo?.info_kind === 'tun').map((l) => [l.ifname, {up: l.flags?.includes('UP'), alias: l.ifalias, persist: l.linkinfo?.info_data?.persist === true}]))
}

/** pids of the userspace engines running for ns (their command line names its run directory after engine.js) */
function engines(ns: string): number[] {
  const dir = nsDir(ns)
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      if (/\) Z /.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) continue
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')
      const at = argv.findIndex((a) => /engine\.[jt]s$/.test(a))
      if (at >= 0 && argv[at + 1] === dir) out.push(Number(p))
    } catch {}
  }
  return out.sort()
}

/** state record, counters and engine files left for ns */
function records(ns: string): string[] {
  try {
    return readdirSync(nsDir(ns)).filter((f) => f.endsWith('.json'))
  } catch {
    return []
  }
}

async function until(what: string, cond: () => boolean, ms = 10_000) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

const N = 20
function manyGre(): Record<string, any> {
  const t: Record<string, any> = {}
  for (let i = 1; i <= N; i++) t[`g${i}`] = {mode: 'gre', local: '198.51.100.1', remote: '198.51.100.2', key: i, ttl: 64, addresses: [`10.77.${i}.1/30`]}
  return t
}

const kernelHas = (mod: string) => existsSync(`/sys/module/${mod}`)
const why =
  whyNoHost() ??
  (!addonAvailable() ? 'native addon not built' : undefined) ??
  (!existsSync(join(repo, 'dist', 'commands')) ? 'CLI not built' : undefined) ??
  (kernelHas('ip_gre') ? 'this kernel has ip_gre: auto would not pick userspace' : undefined)

// ---- the CLI killed (SIGKILL) in the middle of an apply of 20 userspace tunnels ----
{
  const t = suite('crash: CLI killed during an apply of 20 userspace tunnels')
  let pair: Pair | undefined
  const file = join(scratch, 'many.yaml')
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('kcli')
      writeFileSync(file, yaml({version: 1, tunnels: manyGre()}))
    })
    t.after(() => removePair(pair))

    t('SIGKILL once 8 TUN devices exist: each carries the mark; apply converges; del removes every one', async () => {
      const cli = spawn(process.execPath, [bin, 'apply', '--netns', pair!.a, file], {stdio: 'ignore', env: {...process.env, NO_COLOR: '1'}})
      const exited = new Promise((r) => cli.on('exit', r))
      await until('8 TUN devices', () => tuns(pair!.a).size >= 8, 60_000)
      cli.kill('SIGKILL')
      await exited
      // the engine completes the commit the CLI sent (one transaction): devices keep appearing meanwhile. A device
      // exists without the mark only inside the engine's open (before TUNSETPERSIST, gone with its fd if the engine
      // dies): every persistent one carries it, at every moment
      for (let i = 0; i < 50; i++) {
        for (const [n, d] of tuns(pair!.a)) if (d.persist) assert.is(d.alias, 'tunctl', `${n} carries tunctl's mark`)
      }
      const left = tuns(pair!.a)
      assert.ok(left.size >= 8, `${left.size} devices left by the killed apply`)
      await until('the engine\'s commit complete (every device marked)', () => [...tuns(pair!.a).values()].every((d) => d.persist && d.alias === 'tunctl'))
      // every left device is a tunnel tunctl owns (not "a non-tunnel link")
      const shown = showJson(pair!.a)
      for (const n of tuns(pair!.a).keys()) assert.ok(shown.some((x) => x.name === n && x.owned && x.driver === 'userspace'), `${n} in show`)

      const r = ok(['apply', '--netns', pair!.a, file])
      assert.not.match(r.err, /non-tunnel link/)
      const after = tuns(pair!.a)
      assert.is(after.size, N, [...after.keys()].join(' '))
      for (const [n, d] of after) assert.ok(d.up, `${n} up`)
      await until('an engine', () => engines(pair!.a).length === 1)
      assert.is(engines(pair!.a).length, 1, `one engine for ${N} tunnels, none extra`)
      assert.match(ok(['apply', '--netns', pair!.a, file]).out, /No changes/)

      ok(['del', '--netns', pair!.a, ...Object.keys(manyGre())])
      assert.is(tuns(pair!.a).size, 0)
      await until('no engine', () => engines(pair!.a).length === 0)
      assert.equal(records(pair!.a), [])
    })
  }
  t.run()
}

// ---- a killed engine, a damaged state file, a lost record, a failed batch ----
{
  const t = suite('crash: killed engine, damaged or lost state, failed batch')
  let pair: Pair | undefined
  const file = join(scratch, 'one.yaml')
  const spec = {g1: {mode: 'gre', local: '198.51.100.1', remote: '198.51.100.2', key: 1, ttl: 64, addresses: ['10.78.1.1/30']}}
  const peer = join(scratch, 'peer.yaml')
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('kdmn')
      writeFileSync(file, yaml({version: 1, tunnels: spec}))
      writeFileSync(peer, yaml({version: 1, tunnels: {g1: {...spec.g1, local: '198.51.100.2', remote: '198.51.100.1', addresses: ['10.78.1.2/30']}}}))
      ok(['apply', '--netns', pair.b, peer])
    })
    t.after(() => removePair(pair))

    t('SIGKILL of the engine: del works', async () => {
      ok(['apply', '--netns', pair!.a, file])
      const [pid] = engines(pair!.a)
      assert.ok(pid)
      process.kill(pid!, 'SIGKILL')
      await until('engine gone', () => engines(pair!.a).length === 0)
      ok(['del', '--netns', pair!.a, 'g1'])
      assert.is(tuns(pair!.a).size, 0)
      assert.equal(records(pair!.a), [])
    })

    t('SIGKILL of the engine: apply starts a new one and traffic flows', async () => {
      ok(['apply', '--netns', pair!.a, file])
      const [pid] = engines(pair!.a)
      process.kill(pid!, 'SIGKILL')
      await until('engine gone', () => engines(pair!.a).length === 0)
      ok(['apply', '--netns', pair!.a, file])
      const now = engines(pair!.a)
      assert.is(now.length, 1)
      assert.is.not(now[0], pid)
      const p = ping(pair!.a, '10.78.1.2')
      assert.ok(p.ok, p.out)
    })

    t('SIGKILL of the engine, a device deleted meanwhile: the new engine drops its entry, no bare device comes back', async () => {
      const two = join(scratch, 'two.yaml')
      writeFileSync(two, yaml({version: 1, tunnels: {...spec, g2: {...spec.g1, key: 2, addresses: ['10.78.2.1/30']}}}))
      ok(['apply', '--netns', pair!.a, two])
      const [pid] = engines(pair!.a)
      process.kill(pid!, 'SIGKILL')
      await until('engine gone', () => engines(pair!.a).length === 0)
      run('ip', ['-n', pair!.a, 'link', 'del', 'dev', 'g2'])
      // g1 only: its dead engine's tunnel is restarted by a new engine, which takes over the record's entries
      ok(['apply', '--netns', pair!.a, file])
      assert.equal([...tuns(pair!.a).keys()], ['g1'], 'g2 (deleted by hand) is not made again as a bare device')
      assert.equal(Object.keys(readRecord(nsDir(pair!.a))?.tunnels ?? {}), ['g1'])
      const p = ping(pair!.a, '10.78.1.2')
      assert.ok(p.ok, p.out)
    })

    t("the engine's check every second leaves the record alone while a tunctl command holds the namespace lock", async () => {
      const dir = nsDir(pair!.a)
      const lock = join(dir, 'lock')
      assert.ok(existsSync(lock), 'the applies before made the lock file')
      assert.is(engines(pair!.a).length, 1)
      // held as a command holds it (flock on the lock file) while the record is damaged
      const holder = spawn('flock', ['--no-fork', '-x', lock, 'sleep', '60'], {stdio: 'ignore'}) // (one process: the kill frees the lock)
      try {
        await until('the lock held', () => run('flock', ['-n', lock, 'true']).code !== 0)
        writeFileSync(recordPath(dir), 'damaged')
        await sleep(2500) // two and a half checks of the engine
        assert.is(readFileSync(recordPath(dir), 'utf8'), 'damaged', 'not written back while the lock is held')
      } finally {
        holder.kill('SIGKILL')
      }
      await until('the record written back once the lock is free', () => readRecord(dir)?.tunnels?.g1?.params.mode === 'gre', 5000)
    })

    t('SIGKILL of the engine, then a replace (stop and start in one apply): one new engine does it', async () => {
      const [pid] = engines(pair!.a)
      process.kill(pid!, 'SIGKILL')
      await until('engine gone', () => engines(pair!.a).length === 0)
      const log = join(nsDir(pair!.a), '.engine.log')
      const started = () => (readFileSync(log, 'utf8').match(/engine listening/g) ?? []).length
      const before = started()
      const ipip = join(scratch, 'ipip.yaml')
      writeFileSync(ipip, yaml({version: 1, tunnels: {g1: {mode: 'ipip', local: '198.51.100.1', remote: '198.51.100.2', ttl: 64, addresses: ['10.78.1.1/30']}}}))
      const r = ok(['apply', '--netns', pair!.a, ipip])
      assert.match(r.out, /replace/)
      assert.equal(Object.keys(readRecord(nsDir(pair!.a))?.tunnels ?? {}), ['g1'])
      assert.is(readRecord(nsDir(pair!.a))?.tunnels.g1?.params.mode, 'ipip')
      // the engine launched early for the start is not handed the stop of the dead engine's tunnel (a commit of
      // that stop alone would leave it nothing to run: it would exit, and the start would need another engine)
      assert.is(started() - before, 1, readFileSync(log, 'utf8'))
      assert.is(engines(pair!.a).length, 1)
      ok(['apply', '--netns', pair!.a, file])
      const p = ping(pair!.a, '10.78.1.2')
      assert.ok(p.ok, p.out)
    })

    t('a damaged state record: show still knows the tunnel (from the stats file); apply converges; del works', async () => {
      const [pid] = engines(pair!.a)
      const rec = recordPath(nsDir(pair!.a))
      writeFileSync(rec, '{"tunnels": {"g1": {"name": "g1", "params": nul')
      const g = showJson(pair!.a).find((x) => x.name === 'g1')
      assert.ok(g, 'g1 shown')
      assert.is(g.mode, 'gre')
      assert.is(g.alive, true)
      ok(['apply', '--netns', pair!.a, file])
      assert.match(ok(['apply', '--netns', pair!.a, file]).out, /No changes/)
      // the engine writes what it runs back within a second
      await until('the state record rewritten', () => readRecord(nsDir(pair!.a))?.tunnels.g1?.params.mode === 'gre', 5000)
      assert.is(readRecord(nsDir(pair!.a))?.pid, pid, 'naming the engine')
      assert.equal(engines(pair!.a), [pid!], 'the same engine')
      // an entry gone from a readable record: written back too (only a stop removes a running tunnel)
      writeFileSync(rec, JSON.stringify({tunnels: {}}))
      await until('the entry written back', () => readRecord(nsDir(pair!.a))?.tunnels.g1?.params.mode === 'gre', 5000)
      assert.match(ok(['apply', '--netns', pair!.a, file]).out, /No changes/)
      // damaged again, then an apply that starts another tunnel: the CLI's record holds only what it knows (g2);
      // the engine keeps g1 running and puts it back
      writeFileSync(rec, 'garbage')
      const two = join(scratch, 'damaged-two.yaml')
      writeFileSync(two, yaml({version: 1, tunnels: {...spec, g2: {...spec.g1, key: 2, addresses: ['10.78.2.1/30']}}}))
      const r2 = ok(['apply', '--netns', pair!.a, two])
      assert.match(r2.err, /ignoring state record/)
      assert.equal(Object.keys(readRecord(nsDir(pair!.a))?.tunnels ?? {}), ['g1', 'g2'])
      assert.equal(engines(pair!.a), [pid!], 'the same engine')
      const p = ping(pair!.a, '10.78.1.2')
      assert.ok(p.ok, `g1 still carries traffic: ${p.out}`)
      ok(['del', '--netns', pair!.a, 'g2'])
      writeFileSync(rec, 'garbage')
      ok(['del', '--netns', pair!.a, 'g1'])
      assert.is(tuns(pair!.a).size, 0)
      await until('no engine', () => engines(pair!.a).length === 0)
      assert.equal(records(pair!.a), [])
    })

    t('state and stats files lost, engine dead: the marked TUN device is still tunctl\'s; apply replaces it; del works', async () => {
      ok(['apply', '--netns', pair!.a, file])
      const [pid] = engines(pair!.a)
      process.kill(pid!, 'SIGKILL')
      await until('engine gone', () => engines(pair!.a).length === 0)
      for (const f of [recordPath(nsDir(pair!.a)), statsPath('g1', pair!.a)]) unlinkSync(f)
      const g = showJson(pair!.a).find((x) => x.name === 'g1')
      assert.ok(g?.owned, 'owned')
      assert.is(g.mode, 'unknown')
      const plan = ok(['plan', '--netns', pair!.a, file])
      assert.match(plan.out, /g1/)
      ok(['apply', '--netns', pair!.a, file])
      assert.is(engines(pair!.a).length, 1)
      const p = ping(pair!.a, '10.78.1.2')
      assert.ok(p.ok, p.out)
      // lost again, this time with the engine alive: del still removes the device, and the engine exits
      for (const f of [recordPath(nsDir(pair!.a)), statsPath('g1', pair!.a)]) unlinkSync(f)
      ok(['del', '--netns', pair!.a, 'g1'])
      assert.is(tuns(pair!.a).size, 0)
      await until('no engine', () => engines(pair!.a).length === 0)
    })

    t('a batch line failing after a userspace create (TUNCTL_FAIL_AT_LINE=1): no device, engine tunnel or state is left', async () => {
      assert.is(tuns(pair!.a).size, 0)
      // the engine configures the device it creates (addresses, up: no batch lines); the route is the batch's one line
      const routed = join(scratch, 'one-routed.yaml')
      writeFileSync(routed, yaml({version: 1, tunnels: {g1: {...spec.g1, routes: [{to: '203.0.113.0/24'}]}}}))
      const cmds = JSON.parse(tunctl(['plan', '--json', '--show-commands', '--netns', pair!.a, routed]).out).commands
      assert.is(cmds.length, 1, JSON.stringify(cmds))
      assert.match(JSON.stringify(cmds[0]), /route add 203\.0\.113\.0\/24 dev g1/)
      const r = tunctl(['apply', '--netns', pair!.a, routed], {TUNCTL_FAIL_AT_LINE: '1'})
      assert.is.not(r.code, 0, r.out + r.err)
      assert.match(r.out + r.err, /restored|rolled back/i)
      assert.is(tuns(pair!.a).size, 0, [...tuns(pair!.a).keys()].join(' '))
      await until('no engine', () => engines(pair!.a).length === 0)
      assert.equal(records(pair!.a), [])
      ok(['apply', '--netns', pair!.a, file])
      assert.is(tuns(pair!.a).size, 1)
    })

    t('a device refusing what the engine sets on it fails its tunnel: exit 1, restored, no device, engine tunnel or state of the new ones', async () => {
      // new devices of the namespace get no IPv6 (disable_ipv6): the engine's RTM_NEWADDR for g3's IPv6 address is
      // refused (EACCES); g2 (IPv4 only) was created and configured in the same commit and goes with the rollback
      assert.equal([...tuns(pair!.a).keys()], ['g1'])
      const before = showJson(pair!.a).map((x) => [x.name, x.alive, x.addresses])
      const two = join(scratch, 'refused.yaml')
      const g2 = {...spec.g1, key: 2, addresses: ['10.78.2.1/30']}
      writeFileSync(two, yaml({version: 1, tunnels: {...spec, g2, g3: {...spec.g1, key: 3, addresses: ['10.78.3.1/30', '2001:db8:78::1/64']}}}))
      run('ip', ['netns', 'exec', pair!.a, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1'])
      try {
        const r = tunctl(['apply', '--netns', pair!.a, two])
        assert.is(r.code, 1, r.out + r.err)
        assert.match(r.err, /g3.*configuring its device: addr 2001:db8:78::1\/64: Permission denied/)
        assert.match(r.err, /restored/)
        assert.equal([...tuns(pair!.a).keys()], ['g1'], 'g2 and g3 gone, g1 kept')
        assert.equal(showJson(pair!.a).map((x) => [x.name, x.alive, x.addresses]), before)
        assert.equal(records(pair!.a).filter((f) => /^g[23]\./.test(f)), [], 'no state of g2, g3')
        const log = readFileSync(join(nsDir(pair!.a), '.engine.log'), 'utf8')
        assert.match(log, /adding g3 failed: configuring its device: addr 2001:db8:78::1\/64: Permission denied/)
      } finally {
        run('ip', ['netns', 'exec', pair!.a, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=0'])
      }
      // IPv6 back: the same apply passes, the devices as the batch would have made them
      ok(['apply', '--netns', pair!.a, two])
      const addrs = JSON.parse(run('ip', ['-n', pair!.a, '-j', 'addr', 'show', 'dev', 'g3']).out)[0]
      assert.equal(addrs.addr_info.filter((a: any) => a.scope === 'global').map((a: any) => `${a.local}/${a.prefixlen}`).sort(), ['10.78.3.1/30', '2001:db8:78::1/64'])
      assert.equal(tuns(pair!.a).get('g3'), {up: true, alias: 'tunctl', persist: true})
      ok(['apply', '--prune', '--netns', pair!.a, file])
      assert.equal([...tuns(pair!.a).keys()], ['g1'])
    })

    t('the CLI signals no process it cannot prove is the namespace\'s engine (a reused pid in the state file)', async () => {
      // a process that looks like a userspace engine, but of another namespace (another run directory)
      const decoy = spawn(process.execPath, ['-e', 'setTimeout(()=>{},30000)', '/x/dist/userspace/engine.js', nsDir(pair!.a + '-other')], {stdio: 'ignore'})
      await until('decoy running', () => {
        try {
          return readFileSync(`/proc/${decoy.pid}/cmdline`, 'utf8').includes('engine.js')
        } catch {
          return false
        }
      })
      try {
        const [pid] = engines(pair!.a)
        process.kill(pid!, 'SIGKILL')
        await until('engine gone', () => engines(pair!.a).length === 0)
        const rec = JSON.parse(readFileSync(recordPath(nsDir(pair!.a)), 'utf8'))
        writeFileSync(recordPath(nsDir(pair!.a)), JSON.stringify({...rec, pid: decoy.pid, startTicks: undefined}))
        writeFileSync(statsPath('g1', pair!.a), JSON.stringify({name: 'g1', pid: decoy.pid, generation: rec.tunnels.g1.generation}))
        ok(['del', '--netns', pair!.a, 'g1'])
        assert.is(decoy.exitCode, null)
        assert.is(decoy.signalCode, null)
        process.kill(decoy.pid!, 0) // still running
        assert.is(tuns(pair!.a).size, 0)
      } finally {
        decoy.kill('SIGKILL')
      }
    })

    t('an older release\'s engine (it reads per-tunnel files, not the record): the next change stops it and a new engine takes its tunnels over', async () => {
      ok(['apply', '--netns', pair!.a, file])
      const [old] = engines(pair!.a)
      const files = join(nsDir(pair!.a), '.engine.json')
      const {stateRecord, ...rec} = JSON.parse(readFileSync(files, 'utf8'))
      assert.is(stateRecord, 1, 'this release\'s engine says it reads the record')
      writeFileSync(files, JSON.stringify(rec)) // what an older release's engine wrote
      const two = join(scratch, 'two.yaml')
      writeFileSync(two, yaml({version: 1, tunnels: {...spec, g2: {...spec.g1, key: 2, addresses: ['10.78.2.1/30']}}}))
      ok(['apply', '--netns', pair!.a, two])
      const now = engines(pair!.a)
      assert.is(now.length, 1)
      assert.is.not(now[0], old, 'a new engine')
      assert.equal(Object.keys(readRecord(nsDir(pair!.a))!.tunnels), ['g1', 'g2'])
      const p = ping(pair!.a, '10.78.1.2')
      assert.ok(p.ok, `g1 carries traffic after the handover: ${p.out}`)
      assert.match(ok(['apply', '--netns', pair!.a, two]).out, /No changes/)
      ok(['del', '--netns', pair!.a, 'g1', 'g2'])
      assert.is(tuns(pair!.a).size, 0)
      await until('no engine', () => engines(pair!.a).length === 0)
      assert.equal(records(pair!.a), [])
    })

    t('an older release\'s per-tunnel state file (engine dead): show reads it; apply moves it into the record; del works', async () => {
      ok(['apply', '--netns', pair!.a, file])
      const [pid] = engines(pair!.a)
      process.kill(pid!, 'SIGKILL')
      await until('engine gone', () => engines(pair!.a).length === 0)
      // what the release before the state record wrote: <name>.json per tunnel, naming its engine
      const dir = nsDir(pair!.a)
      const rec = readRecord(dir)!
      const old = join(dir, 'g1.json')
      writeFileSync(old, JSON.stringify({...rec.tunnels.g1, netns: pair!.a, pid, startTicks: rec.startTicks}))
      unlinkSync(recordPath(dir))
      const g = showJson(pair!.a).find((x) => x.name === 'g1')
      assert.is(g?.mode, 'gre')
      assert.is(g?.alive, false)
      ok(['apply', '--netns', pair!.a, file])
      assert.is(existsSync(old), false, 'the per-tunnel file is gone')
      const now = readRecord(dir)
      assert.is(now?.tunnels.g1?.params.mode, 'gre')
      assert.equal(engines(pair!.a), [now!.pid!], 'the record names the new engine')
      const p = ping(pair!.a, '10.78.1.2')
      assert.ok(p.ok, p.out)
      assert.match(ok(['apply', '--netns', pair!.a, file]).out, /No changes/)
      ok(['del', '--netns', pair!.a, 'g1'])
      assert.is(tuns(pair!.a).size, 0)
      await until('no engine', () => engines(pair!.a).length === 0)
      assert.equal(records(pair!.a), [])
    })
  }
  t.run()
}

// ---- an engine launched ahead of the journal (as soon as the plan starts userspace tunnels) for an apply that
// fails before its commit: stopped by the apply, not left to its 30 s idle exit ----
{
  const t = suite('crash: an engine launched early for an apply that fails before the commit')
  let pair: Pair | undefined
  const file = join(scratch, 'early.yaml')
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('kerl')
      writeFileSync(file, yaml({version: 1, tunnels: manyGre()}))
    })
    t.after(() => removePair(pair))

    t('the starts cannot be journaled: exit 1, and at its exit no engine, socket, record, state or device', async () => {
      const dir = nsDir(pair!.a)
      // the journal's started-log cannot be appended to (a directory holds its name): the apply fails after its
      // plan (the engine launched) and before the engine's commit (the starts are journaled first)
      mkdirSync(join(dir, 'journal.started'), {recursive: true})
      try {
        const r = tunctl(['apply', '--netns', pair!.a, file])
        assert.is(r.code, 1, `${r.out}\n${r.err}`)
        assert.match(r.err, /journal\.started/)
        // at once, not after the engine's idle exit: the apply stopped the engine it launched
        assert.equal(engines(pair!.a), [], 'no engine left')
        const log = readFileSync(join(dir, '.engine.log'), 'utf8')
        assert.match(log, /engine listening/, 'an engine was launched (and answered) for the apply')
        assert.match(log, /SIGTERM: stopping \(0 tunnels/, 'and stopped by it, running nothing')
        for (const f of ['.engine.json', '.engine.sock', 'journal.json']) assert.not.ok(existsSync(join(dir, f)), `${f} left`)
        assert.not.ok(existsSync(recordPath(dir)), 'no state record')
        assert.equal(records(pair!.a), [])
        assert.is(tuns(pair!.a).size, 0)
      } finally {
        rmSync(join(dir, 'journal.started'), {recursive: true, force: true})
      }
      // and the next apply works
      ok(['apply', '--netns', pair!.a, file])
      assert.is(tuns(pair!.a).size, N)
      const running = engines(pair!.a)
      assert.is(running.length, 1)
      // an apply with nothing to do launches no engine (the log counts every engine that started listening)
      const launched = () => readFileSync(join(dir, '.engine.log'), 'utf8').split('\n').filter((l) => /engine listening/.test(l)).length
      const before = launched()
      assert.match(ok(['apply', '--netns', pair!.a, file]).out, /No changes/)
      assert.is(launched(), before, 'no engine launched for "No changes"')
      assert.equal(engines(pair!.a), running)
    })
  }
  t.run()
}

// ---- bad input while the namespace is observed ahead of the parse (apply's early observation and lock) ----
{
  const t = suite('crash: bad input with the early observation: nothing written, launched or changed')
  let pair: Pair | undefined
  const bad = join(scratch, 'bad-syntax.yaml')
  const conflict = join(scratch, 'bad-conflict.yaml')
  const good = join(scratch, 'good-one.yaml')
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('kbad')
      writeFileSync(bad, 'version: 1\ntunnels:\n  g1:\n    mode: gre\n    local: [1\n')
      // valid YAML and schema; its plan is refused (a route ul0's kernel route holds): a ConflictError after parsing
      writeFileSync(conflict, yaml({version: 1, tunnels: {c1: {mode: 'gre', driver: 'userspace', local: '198.51.100.1', remote: '198.51.100.2', routes: [{to: '198.51.100.0/24'}]}}}))
      writeFileSync(good, yaml({version: 1, tunnels: {g1: {mode: 'gre', local: '198.51.100.1', remote: '198.51.100.2', key: 1, addresses: ['10.79.1.1/30']}}}))
    })
    t.after(() => removePair(pair))

    /** the namespace's links as a comparison cares: name, flags, alias, mtu, kind */
    const links = (ns: string) =>
      (JSON.parse(run('ip', ['-n', ns, '-j', '-d', 'link', 'show']).out || '[]') as any[]).map((l) => `${l.ifname} ${l.flags?.join(',')} ${l.ifalias ?? ''} ${l.mtu} ${l.linkinfo?.info_kind ?? ''}`).sort()
    const refused = (file: string, at: RegExp, ns = pair!.a) => {
      const r = tunctl(['apply', '--netns', ns, file])
      assert.is(r.code, 65, `${r.out}\n${r.err}`)
      assert.match(r.err, at)
      assert.not.match(r.err, /Unhandled|unhandled/)
    }

    t('a fresh namespace: no run dir, lock file, engine or link appears', () => {
      const dir = nsDir(pair!.a)
      assert.not.ok(existsSync(dir), 'fresh: no run dir yet')
      const before = links(pair!.a)
      refused(bad, new RegExp(`${bad.replace(/[.]/g, '\\.')}:5:14: YAML syntax error`))
      assert.not.ok(existsSync(dir), 'no run dir (no lock file) made')
      assert.equal(engines(pair!.a), [])
      assert.equal(links(pair!.a), before)
      // (a plan is made holding the lock: its file exists then, as before the early observation; nothing else)
      refused(conflict, /bad-conflict\.yaml:\d+:\d+: tunnel "c1": route to 198\.51\.100\.0\/24/)
      assert.equal(readdirSync(dir), ['lock'])
      assert.equal(engines(pair!.a), [], 'no engine launched for a refused plan')
      assert.equal(links(pair!.a), before)
    })

    t('a namespace with a lock file and a running engine: the lock file, the run dir and the links stay as they were; the lock is free after', async () => {
      ok(['apply', '--netns', pair!.a, good])
      const dir = nsDir(pair!.a)
      const lock = join(dir, 'lock')
      const text = readFileSync(lock, 'utf8')
      const mtime = statSync(lock).mtimeMs
      const files = readdirSync(dir).sort()
      const record = readFileSync(recordPath(dir), 'utf8')
      const before = links(pair!.a)
      const engine = engines(pair!.a)
      assert.is(engine.length, 1)
      refused(bad, /bad-syntax\.yaml:5:14: YAML syntax error/)
      assert.is(readFileSync(lock, 'utf8'), text, 'the lock file keeps the last holder\'s pid')
      assert.is(statSync(lock).mtimeMs, mtime, 'the lock file is not written')
      refused(conflict, /bad-conflict\.yaml:\d+:\d+: tunnel "c1": route to/)
      assert.equal(readdirSync(dir).sort().filter((f) => !f.endsWith('.stats.json')), files.filter((f) => !f.endsWith('.stats.json')))
      assert.is(readFileSync(recordPath(dir), 'utf8'), record)
      assert.equal(links(pair!.a), before)
      assert.equal(engines(pair!.a), engine, 'the same engine, no other')
      assert.is(run('flock', ['-n', lock, 'true']).code, 0, 'the lock is free')
      assert.match(ok(['apply', '--netns', pair!.a, good]).out, /No changes/)
    })

    t('a namespace that does not exist: the file\'s error first, as before (the early observation\'s failure stays silent)', () => {
      const gone = `tunctl-t-kbad-p${process.pid}-none`
      refused(bad, /bad-syntax\.yaml:5:14: YAML syntax error/, gone)
      const r = tunctl(['apply', '--netns', gone, good])
      assert.is.not(r.code, 0)
      assert.match(r.err, /no (such )?network namespace|does not exist|not found/i)
      assert.not.match(r.err, /Unhandled|unhandled/)
      assert.not.ok(existsSync(nsDir(gone)))
    })

    t('a spec on standard input that arrives late is planned from what the namespace holds then, not before', async () => {
      // a link named like the file's tunnel appears while tunctl waits for its input: the plan must see it (the
      // early observation is only for regular files, whose read cannot wait; it would plan a create here)
      const proc = spawn(process.execPath, [bin, 'apply', '--netns', pair!.b, '-'], {env: cliEnv({}), stdio: ['pipe', 'pipe', 'pipe']})
      let out = ''
      let err = ''
      proc.stdout!.on('data', (d) => (out += d))
      proc.stderr!.on('data', (d) => (err += d))
      const done = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)))
      try {
        // (the input arrives late by design: tunctl is started and running before the link and the file exist)
        await sleep(1500)
        assert.is(run('ip', ['-n', pair!.b, 'link', 'add', 'g1', 'type', 'veth', 'peer', 'name', 'g1p']).code, 0)
        proc.stdin!.end(readFileSync(good, 'utf8'))
        const code = await done
        assert.is(code, 65, `${out}\n${err}`)
        assert.match(err, /<stdin>:\d+:\d+: tunnel "g1": a non-tunnel link of that name exists \(kind veth\)/)
        assert.not.ok(existsSync(join(nsDir(pair!.b), '.engine.json')), 'no engine launched')
      } finally {
        proc.kill('SIGKILL')
        run('ip', ['-n', pair!.b, 'link', 'del', 'g1'])
      }
    })
  }
  t.run()
}
