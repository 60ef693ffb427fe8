// The per-namespace userspace engine (issue #6 items 1 and 4): one engine process holds every userspace tunnel of
// a namespace with a fixed pool of packet threads; an in-place change of one tunnel does not disturb another's
// traffic; the engine killed (SIGKILL) at any moment of an apply leaves a namespace the next apply converges.
import {spawn} from 'node:child_process'
import {connect} from 'node:net'
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {yaml} from '../uml/lib/spec.js'
import {type Pair, ipn, makePair, removePair, run, whyNoUserspaceCli} from './lib/netns.js'
import {nsDir} from '../../src/userspace/paths.js'
import {daemonsOf, exited, leftovers, showJson, tunctlChild, until, tunctlOk as ok} from './lib/cli.js'

const scratch = mkdtempSync(join(tmpdir(), 'tunctl-engine-'))
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))

const why = whyNoUserspaceCli() ?? (existsSync('/sys/module/ip_gre') ? 'this kernel has ip_gre: auto would not pick userspace' : undefined)


/** n gre tunnels g1..gn from local to remote, key i, address 10.88.<i>.<side>/30 */
function gres(n: number, local: string, remote: string, side: 1 | 2, extra: (i: number) => Record<string, unknown> = () => ({})): Record<string, any> {
  const t: Record<string, any> = {}
  for (let i = 1; i <= n; i++) t[`g${i}`] = {mode: 'gre', local, remote, key: i, ttl: 64, addresses: [`10.88.${i}.${side}/30`], ...extra(i)}
  return t
}
function specFile(name: string, tunnels: Record<string, any>): string {
  const f = join(scratch, name)
  writeFileSync(f, yaml({version: 1, tunnels}))
  return f
}
function threads(pid: number): number {
  const m = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  assert.ok(m, `threads of ${pid}`)
  return Number(m![1])
}

{
  const t = suite('engine: one per namespace, fixed threads')
  let pair: Pair | undefined
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('eng')
    })
    t.after(() => removePair(pair))

    t('5 then 50 userspace tunnels: exactly one engine process, the same thread count; del of all: the engine exits', async () => {
      ok(['apply', '--netns', pair!.a, specFile('five.yaml', gres(5, '198.51.100.1', '198.51.100.2', 1))])
      const [pid, ...more] = daemonsOf(pair!.a)
      assert.ok(pid, 'an engine runs')
      assert.equal(more, [], 'one engine')
      const t5 = threads(pid!)
      ok(['apply', '--netns', pair!.a, specFile('fifty.yaml', gres(50, '198.51.100.1', '198.51.100.2', 1))])
      assert.equal(daemonsOf(pair!.a), [pid], 'the same single engine holds all 50')
      const shown = showJson(pair!.a).filter((x) => x.driver === 'userspace')
      assert.is(shown.length, 50)
      for (const x of shown) assert.is(x.alive, true, `${x.name} alive`)
      assert.is(threads(pid!), t5, `threads with 50 tunnels (${threads(pid!)}) = with 5 (${t5})`)
      assert.equal(leftovers(pair!.a, shown), [])
      ok(['del', '--netns', pair!.a, ...Object.keys(gres(50, '', '', 1))])
      await until('the engine exits with its last tunnel', () => daemonsOf(pair!.a).length === 0, 10_000)
      assert.equal(leftovers(pair!.a, []), [])
    })

    t('a second engine started for the namespace leaves at once: the running one keeps its socket and tunnels', async () => {
      ok(['apply', '--netns', pair!.a, specFile('two.yaml', gres(2, '198.51.100.1', '198.51.100.2', 1))])
      const [pid] = daemonsOf(pair!.a)
      assert.ok(pid, 'an engine runs')
      const dir = nsDir(pair!.a)
      const engineJs = join(process.cwd(), 'dist', 'userspace', 'engine.js')
      // as the CLI starts it (what it logs goes to the engine log, here to this pipe; fd 3: its ready pipe)
      const second = spawn('ip', ['netns', 'exec', pair!.a, process.execPath, engineJs, dir], {stdio: ['ignore', 'pipe', 'ignore', 'pipe'], env: {...process.env, TUNCTL_ENGINE_READY_FD: '3'}})
      let logged = ''
      let said = ''
      second.stdout!.on('data', (d) => (logged += d))
      second.stdio[3]!.on('data', (d) => (said += d))
      const code = await new Promise<number | null>((res) => second.on('close', (c) => res(c)))
      assert.is(code, 0, 'the second engine exits 0')
      assert.match(logged, /another engine answers on the control socket/)
      assert.is(said, '', 'it never says it is ready (the CLI then finds the running engine by its record)')
      assert.equal(daemonsOf(pair!.a), [pid], 'the first engine still runs, alone')
      const shown = showJson(pair!.a)
      for (const x of shown) assert.is(x.alive, true, `${x.name} alive`)
      assert.equal(leftovers(pair!.a, shown), [], 'its socket and record are intact')
      // and it still answers a commit
      ok(['del', '--netns', pair!.a, 'g1', 'g2'])
      await until('the engine exits with its last tunnel', () => daemonsOf(pair!.a).length === 0, 10_000)
    })

    t('an engine started through a wrapper that closes the ready pipe (TUNCTL_DAEMON_NODE): the CLI finds it the old way', async () => {
      assert.equal(daemonsOf(pair!.a), [])
      const wrapper = join(scratch, 'node-closing-fd3')
      writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} "$@" 3>&-\n`, {mode: 0o755})
      const f = specFile('one.yaml', gres(1, '198.51.100.1', '198.51.100.2', 1))
      ok(['apply', '--netns', pair!.a, f], {TUNCTL_DAEMON_NODE: wrapper})
      const [pid] = daemonsOf(pair!.a)
      assert.ok(pid, 'an engine runs')
      assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /engine\.js/)
      const shown = showJson(pair!.a)
      assert.is(shown.find((x) => x.name === 'g1')?.alive, true)
      assert.equal(leftovers(pair!.a, shown), [])
      ok(['del', '--netns', pair!.a, 'g1'])
      await until('the engine exits with its last tunnel', () => daemonsOf(pair!.a).length === 0, 10_000)
    })

    t('a launched engine writes its pid on the ready pipe once its control socket answers (the CLI does not poll)', async () => {
      assert.equal(daemonsOf(pair!.a), [])
      const dir = nsDir(pair!.a)
      const engineJs = join(process.cwd(), 'dist', 'userspace', 'engine.js')
      const e = spawn('ip', ['netns', 'exec', pair!.a, process.execPath, engineJs, dir], {stdio: ['ignore', 'ignore', 'ignore', 'pipe'], env: {...process.env, TUNCTL_ENGINE_READY_FD: '3'}})
      try {
        const line = await new Promise<string>((res, rej) => {
          let buf = ''
          e.stdio[3]!.on('data', (d) => {
            buf += d
            if (buf.includes('\n')) res(buf)
          })
          e.stdio[3]!.on('close', () => rej(new Error(`the ready pipe closed after ${JSON.stringify(buf)}`)))
        })
        assert.is(line, `${e.pid}\n`, 'its pid (ip netns exec execs the engine: the spawned pid)')
        // at that moment the socket answers at the first try
        const reply = await new Promise<string>((res, rej) => {
          const c = connect(join(dir, '.engine.sock'))
          let r = ''
          c.on('connect', () => c.write('{"op":"ping"}\n'))
          c.on('data', (d) => {
            r += d
            if (r.includes('\n')) (c.destroy(), res(r))
          })
          c.on('error', rej)
        })
        assert.is(JSON.parse(reply).pid, e.pid)
        assert.equal(daemonsOf(pair!.a), [e.pid!])
      } finally {
        e.kill('SIGTERM')
        await new Promise((r) => (e.exitCode !== null ? r(null) : e.on('exit', r)))
      }
      await until('no engine', () => daemonsOf(pair!.a).length === 0, 10_000)
    })
  }
  t.run()
}

{
  const t = suite('engine: an in-place change of one tunnel while another carries a ping flood')
  let pair: Pair | undefined
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('engf')
    })
    t.after(() => removePair(pair))

    t('g1 floods (ping -f) while g2 changes key, ttl and tos in place three times: g1 loses no packet', async () => {
      ok(['apply', '--netns', pair!.a, specFile('a.yaml', gres(2, '198.51.100.1', '198.51.100.2', 1))])
      ok(['apply', '--netns', pair!.b, specFile('b.yaml', gres(2, '198.51.100.2', '198.51.100.1', 2))])
      const [engine] = daemonsOf(pair!.a)
      const flood = spawn('ip', ['netns', 'exec', pair!.a, 'ping', '-f', '-c', '4000', '-W', '1', '10.88.1.2'], {stdio: ['ignore', 'pipe', 'pipe']})
      let out = ''
      flood.stdout!.on('data', (d) => (out += d))
      flood.stderr!.on('data', (d) => (out += d))
      const done = new Promise<number>((r) => flood.on('close', (c) => r(c ?? -1)))
      try {
        for (const [i, extra] of [{ttl: 32}, {ttl: 16, tos: 16}, {key: 7, ttl: 8}].entries()) {
          const spec = gres(2, '198.51.100.1', '198.51.100.2', 1, (n) => (n === 2 ? extra : {}))
          ok(['apply', '--netns', pair!.a, specFile(`a${i}.yaml`, spec)])
        }
      } finally {
        const code = await done
        assert.is(code, 0, out)
      }
      assert.match(out, /4000 packets transmitted, 4000 received/, out)
      assert.match(out, / 0% packet loss/, out)
      assert.equal(daemonsOf(pair!.a), [engine], 'the same engine throughout')
    })
  }
  t.run()
}

{
  const t = suite('engine: SIGKILL of the engine at random moments of an apply')
  let pair: Pair | undefined
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('engk')
    })
    t.after(() => removePair(pair))

    t('an apply of 20 tunnels, its engine killed 4 times at random points: the next apply converges, del works', async () => {
      const N = 20
      const file = specFile('k.yaml', gres(N, '198.51.100.1', '198.51.100.2', 1))
      for (let round = 0; round < 4; round++) {
        if (round % 2) ok(['del', '--netns', pair!.a, '--ignore-missing', ...Object.keys(gres(N, '', '', 1))])
        const cli = tunctlChild(['apply', '--netns', pair!.a, file])
        // the engine appears once the first userspace start begins; kill it 0-400 ms later
        const engine = await until('an engine', () => daemonsOf(pair!.a)[0], 60_000)
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)))
        try {
          process.kill(engine, 'SIGKILL')
        } catch {}
        const r = await exited(cli, 'the apply whose engine was killed', 120_000)
        // the apply either finished before the kill, or failed and restored the namespace; it never hangs
        assert.ok(r.code === 0 || /The host was restored/.test(r.err), `apply exit ${r.code}\n${r.err}`)
        await until('the killed engine gone', () => !daemonsOf(pair!.a).includes(engine), 10_000)
        ok(['apply', '--netns', pair!.a, file])
        const shown = showJson(pair!.a).filter((x) => x.driver === 'userspace')
        assert.is(shown.length, N, `round ${round}: ${shown.map((x) => x.name).join(' ')}`)
        for (const x of shown) assert.is(x.alive, true, `round ${round}: ${x.name} alive`)
        assert.equal(leftovers(pair!.a, shown), [], `round ${round}`)
        assert.match(ok(['apply', '--netns', pair!.a, file]).out, /No changes/)
      }
      ok(['del', '--netns', pair!.a, ...Object.keys(gres(N, '', '', 1))])
      await until('no engine', () => daemonsOf(pair!.a).length === 0, 10_000)
      assert.equal(leftovers(pair!.a, []), [])
    })
  }
  t.run()
}

{
  // ipgre_open / ipgre_close (native/engroute.c): the group is joined on the device the route to it leaves by while a
  // tunnel with that multicast remote is up, shared by reference count, and left when the last one goes down or away
  const t = suite('engine: multicast gre joins and leaves its group')
  let pair: Pair | undefined
  const member = (ns: string) => (ipn(ns, 'maddr', 'show', 'dev', 'ul0').match(/ 239\.1\.1\.1\b/g) ?? []).length
  const mc = (local: string, side: 1 | 2, m2: Record<string, unknown> | undefined, m1: Record<string, unknown> = {}) => ({
    m1: {mode: 'gre', local, remote: '239.1.1.1', ttl: 64, addresses: [`10.66.0.${side}/24`], ...m1},
    ...(m2 ? {m2: {mode: 'gre', local, remote: '239.1.1.1', key: 77, ttl: 64, ...m2}} : {}),
  })
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('engm')
    })
    t.after(() => removePair(pair))

    t('joined while up (two tunnels share it), left with the last one; packets to the group arrive both ways', async () => {
      assert.is(member(pair!.a), 0, 'no membership before')
      ok(['apply', '--netns', pair!.a, specFile('ma.yaml', mc('198.51.100.1', 1, {}))])
      await until('a joins 239.1.1.1 on ul0', () => member(pair!.a) === 1, 5000)
      ok(['apply', '--netns', pair!.b, specFile('mb.yaml', mc('198.51.100.2', 2, undefined))])
      await until('b joins', () => member(pair!.b) === 1, 5000)
      // both tunnels keyed by the group (the gre driver's normalization), no multicast route in either namespace (the
      // group is sent out of the device owning the local address, as ip_tunnel_xmit's route does): ping a → b and
      // back, both through the group
      const p = run('ip', ['netns', 'exec', pair!.a, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.66.0.2'])
      assert.match(p.out, /3 packets transmitted, 3 received/, p.out + p.err)
      ok(['apply', '--netns', pair!.a, specFile('ma1.yaml', mc('198.51.100.1', 1, {}, {up: false}))])
      // a membership that must stay has no event to wait for: give the engine's link notification 300 ms (it acts
      // within milliseconds), then assert it is still there
      await new Promise((r) => setTimeout(r, 300))
      assert.is(member(pair!.a), 1, 'm1 down, m2 up: still a member')
      ok(['apply', '--netns', pair!.a, specFile('ma2.yaml', mc('198.51.100.1', 1, {up: false}, {up: false}))])
      await until('a leaves with the last up tunnel', () => member(pair!.a) === 0, 5000)
      const q = run('ip', ['netns', 'exec', pair!.b, 'ping', '-c', '2', '-i', '0.2', '-W', '1', '10.66.0.1'])
      assert.match(q.out, /2 packets transmitted, 0 received/, q.out + q.err)
      ok(['apply', '--netns', pair!.a, specFile('ma3.yaml', mc('198.51.100.1', 1, {}))])
      await until('a joins again', () => member(pair!.a) === 1, 5000)
      ok(['del', '--netns', pair!.a, 'm1'])
      await new Promise((r) => setTimeout(r, 300))
      assert.is(member(pair!.a), 1, 'm1 removed, m2 up: still a member')
      ok(['del', '--netns', pair!.a, 'm2'])
      await until('a leaves when the last tunnel is removed', () => member(pair!.a) === 0, 5000)
      ok(['del', '--netns', pair!.b, 'm1'])
      await until('b leaves', () => member(pair!.b) === 0, 5000)
    })
  }
  t.run()
}
