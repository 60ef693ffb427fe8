// Fault matrix on the kernel driver (issue #8 item 7, the kernel half of test/host/faults.test.ts): one
// namespace, a prior state applied first plus a foreign gre tunnel and a foreign route made by hand, and a
// 20-step plan (creates of all five modes, in-place updates, replaces, deletes). Then
//   1. a failure injected at the first batch line of every step → exit 1, the namespace exactly the prior
//      state (lib/snapshot.ts), in-place-updated and foreign links keep their ifindex, kernel drivers;
//   2. SIGTERM and SIGKILL at each phase (TUNCTL_PAUSE_AT stops the apply at a known point) → after the
//      interrupted apply and at most one following apply of the same file the namespace is exactly the
//      prior or exactly the planned state, with no journal left and the foreign link and route unchanged.
// The outcomes expected are those of tunctl(8), "Interrupts and crashes". The matrix is printed at the end.
import {spawn} from 'node:child_process'
import {existsSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import * as assert from 'uvu/assert'
import {suite} from '#test/uvu'
import {waitFor} from '../lib/wait.js'
import {A_ADDR, makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml, ipn, ipnJson, type Run} from './lib/sh.js'
import {ifindexes, normaliseAddrs, normaliseLinks, normaliseRoutes, snapshot, snapshotDiff, type Snapshot} from './lib/snapshot.js'
import {example, yaml, type Spec} from './lib/spec.js'
import {assertDrivers, planCommands, planCounts, REPO, SCRATCH, show, specFile, tunctl, tunctlOk} from './lib/tunctl.js'

const BIN = process.env.TUNCTL_BIN ?? join(REPO, 'bin', 'run')
const RUN_ROOT = process.env.TUNCTL_RUN_DIR ?? '/run/tunctl'
const FOREIGN_ROUTE = '203.0.113.0/24'

const secs = (t0: number) => ((Date.now() - t0) / 1000).toFixed(1)
const ep = (n: number) => `198.51.100.${n}`

/** Prior state: the tunnels the plan will update in place, replace and delete (every field the plan changes
 * is set here too, so that `apply --prune` of this file is a complete reset). */
function priorSpec(): Spec {
  return {
    version: 1,
    tunnels: {
      uipip: {mode: 'ipip', local: A_ADDR, remote: ep(21), ttl: 64, addresses: ['10.81.1.1/30']},
      ugre: {
        mode: 'gre', local: A_ADDR, remote: ep(22), key: 22, ttl: 64, mtu: 1400, addresses: ['10.81.2.1/30'],
        routes: [{to: '10.91.2.0/24', via: '10.81.2.2', metric: 10}],
      },
      usit: {mode: 'sit', local: A_ADDR, remote: ep(23), ttl: 64, addresses: ['2001:db8:81:3::1/64']},
      uvti: {mode: 'vti', local: A_ADDR, remote: ep(24), key: 24, mtu: 1400, addresses: ['10.81.4.1/30']},
      rgre: {mode: 'gre', local: A_ADDR, remote: ep(25), key: 25, addresses: ['10.81.5.1/30']},
      ripip: {mode: 'ipip', local: A_ADDR, remote: ep(26), addresses: ['10.81.6.1/30']},
      dipip: {mode: 'ipip', local: A_ADDR, remote: ep(27), ttl: 64, addresses: ['10.81.7.1/30']},
      dsit: {mode: 'sit', local: A_ADDR, remote: ep(28), ttl: 64, addresses: ['2001:db8:81:8::1/64']},
      dgre: {
        mode: 'gre', local: A_ADDR, remote: ep(29), key: 29, addresses: ['10.81.9.1/30'],
        routes: [{to: '10.91.9.0/24', via: '10.81.9.2', table: 100}],
      },
    },
  }
}

/** The planned state: 4 updates, 2 replaces, 3 deletes, 11 creates (all five modes) = 20 steps. */
function fullSpec(): Spec {
  const s = priorSpec()
  const t = s.tunnels
  t.uipip = {...t.uipip, ttl: 32, addresses: ['10.81.1.5/30']}
  t.ugre = {...t.ugre, key: 23, ttl: 32, mtu: 1300}
  t.usit = {...t.usit, ttl: 32}
  t.uvti = {...t.uvti, mtu: 1300}
  t.rgre = {...t.rgre, remote: 'any'}
  t.ripip = {...t.ripip, remote: 'any'}
  for (const n of ['dipip', 'dsit', 'dgre']) t[n] = {...t[n], state: 'absent'}
  t.cipip1 = {mode: 'ipip', local: A_ADDR, remote: ep(31), ttl: 64, addresses: ['10.82.1.1/30']}
  t.cipip2 = {
    mode: 'ipip', local: A_ADDR, remote: ep(32), addresses: ['10.82.2.1/30'],
    routes: [{to: '10.92.2.0/24', via: '10.82.2.2', metric: 50}],
  }
  t.cipip3 = {mode: 'ipip', local: A_ADDR, remote: ep(40), addresses: ['10.82.10.1/30']}
  t.cgre1 = {mode: 'gre', local: A_ADDR, remote: ep(33), key: 33, csum: true, addresses: ['10.82.3.1/30', '2001:db8:82:3::1/64']}
  t.cgre2 = {
    mode: 'gre', local: A_ADDR, remote: ep(34), key: 34, mtu: 1400, addresses: ['10.82.4.1/30'],
    routes: [{to: '10.92.4.0/24', via: '10.82.4.2', table: 100}],
  }
  t.cgre3 = {mode: 'gre', local: A_ADDR, remote: ep(39), key: 39, ttl: 64, addresses: ['10.82.9.1/30']}
  t.csit1 = {mode: 'sit', local: A_ADDR, remote: ep(35), ttl: 64, addresses: ['2001:db8:82:5::1/64']}
  t.csit2 = {mode: 'sit', local: A_ADDR, remote: ep(36), ttl: 64, addresses: ['2001:db8:82:6::1/64']}
  t.cisatap = Object.values(example('isatap').tunnels)[0]!
  t.cvti1 = {mode: 'vti', local: A_ADDR, remote: ep(37), key: 37, addresses: ['10.82.7.1/30']}
  t.cvti2 = {mode: 'vti', local: A_ADDR, remote: ep(38), key: 38, mtu: 1300, addresses: ['10.82.8.1/30']}
  return s
}

const IN_PLACE = ['uipip', 'ugre', 'usit', 'uvti']
/** links that keep their ifindex through everything: updated in place (and back), foreign, underlay */
const STABLE = [...IN_PLACE, 'hand1', 'ul0', 'lo']
const KERNEL_KINDS = new Set(['ipip', 'gre', 'sit', 'vti'])
const PHASES = ['before-batch', 'batch', 'after-batch', 'verify', 'rollback'] as const

interface State {
  pair?: Pair
  ns: string
  prior: string
  full: string
  before?: Snapshot
  planned?: Snapshot
  index?: Record<string, number>
  foreign?: string
  /** step name → its first batch line */
  firstLine: Array<{step: string; line: number}>
  matrix: Array<{case: string; exit: string; next: string; outcome: string; s: string}>
  started: number
}

const s = suite<State>('kernel fault matrix: 20-step plan, a failure at every step, signals at every phase', {
  ns: '', prior: '', full: '', firstLine: [], matrix: [], started: 0,
})

s.after((st) => {
  removePair(st.pair)
  if (st.matrix.length) {
    const w = [34, 7, 32, 7, 5]
    const row = (c: string[]) => c.map((x, i) => x.padEnd(w[i]!)).join(' | ')
    process.stdout.write(`\n\nKERNEL FAULT MATRIX (20-step plan, UML)\n${row(['case', 'exit', 'next command', 'outcome', 'sec'])}\n${w.map((n) => '-'.repeat(n)).join('-|-')}\n`)
    for (const m of st.matrix) process.stdout.write(row([m.case, m.exit, m.next, m.outcome, m.s]) + '\n')
    process.stdout.write(`(${st.matrix.length} cases, ${((Date.now() - st.started) / 1000).toFixed(1)} s in this file)\n\n`)
  }
})

interface Observed {
  snap: Snapshot
  index: Record<string, number>
  /** the foreign tunnel (link, addresses) and route, as ip reports them: must stay byte for byte the same */
  foreign: string
}

/** One look at the namespace (three ip calls: each costs in UML) for every check below. */
function observe(ns: string): Observed {
  const links = ipnJson<any[]>(ns, '-d', 'link', 'show')
  const addrs = ipnJson<any[]>(ns, 'addr', 'show')
  const routes = ipnJson<any[]>(ns, 'route', 'show', 'table', 'all')
  const index: Record<string, number> = {}
  for (const l of links) index[l.ifname] = l.ifindex
  const hand = links.filter((l) => l.ifname === 'hand1')
  const foreign = JSON.stringify({
    ifindex: hand[0]?.ifindex,
    link: normaliseLinks(hand),
    addrs: normaliseAddrs(addrs.filter((a) => a.ifname === 'hand1')),
    routes: routes.filter((r) => r.dst === FOREIGN_ROUTE),
  })
  // every link tunctl made is a kernel tunnel (no TUN device of the userspace driver)
  for (const l of links) {
    if (['lo', 'ul0', 'hand1'].includes(l.ifname) || /^(tunl0|gre0|gretap0|erspan0|sit0|ip_vti0)$/.test(l.ifname)) continue
    const kind = l.linkinfo?.info_kind
    assert.ok(KERNEL_KINDS.has(kind), `${l.ifname} is a ${kind ?? 'plain'} link, expected a kernel tunnel`)
  }
  return {snap: {links: normaliseLinks(links), addrs: normaliseAddrs(addrs), routes: normaliseRoutes(routes)}, index, foreign}
}

function journalLeft(ns: string): boolean {
  return existsSync(join(RUN_ROOT, 'ns', ns, 'journal.json'))
}

/** Exactly the prior or exactly the planned state, no journal, stable ifindexes, foreign things unchanged. */
function converged(st: State, label: string): 'prior' | 'planned' {
  const now = observe(st.ns)
  const dPrior = snapshotDiff(st.before!, now.snap)
  const dPlanned = snapshotDiff(st.planned!, now.snap)
  const which = dPrior === '' ? 'prior' : dPlanned === '' ? 'planned' : undefined
  assert.ok(which, `${label}: neither the prior nor the planned state.\nvs prior:\n${dPrior}\nvs planned:\n${dPlanned}`)
  assert.not.ok(journalLeft(st.ns), `${label}: a journal is left in ${RUN_ROOT}/ns/${st.ns}`)
  for (const n of STABLE) assert.is(now.index[n], st.index![n], `${label}: ${n} keeps its ifindex`)
  assert.fixture(now.foreign, st.foreign!, `${label}: foreign tunnel hand1 and route ${FOREIGN_ROUTE} unchanged`)
  return which!
}

function resetToPrior(st: State, label: string): void {
  const r = tunctl(['apply', '--prune', '--netns', st.ns, st.prior])
  assert.is(r.code, 0, `${label}: reset to the prior state` + show(r))
  assert.is(converged(st, `${label}, reset`), 'prior')
}

/** The CLI in the background with its pid (the PATH's node wrapper execs node, so the pid is tunctl's). */
function tunctlChild(args: string[], env: Record<string, string>): {pid: number; done: Promise<Run & {signal: string | null}>} {
  const e: Record<string, string | undefined> = {...process.env, NO_COLOR: '1', ...env}
  delete e.FORCE_COLOR
  const c = spawn('node', [BIN, ...args], {env: e, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = '', stderr = ''
  c.stdout.on('data', (d) => (stdout += d))
  c.stderr.on('data', (d) => (stderr += d))
  const done = new Promise<Run & {signal: string | null}>((resolve, reject) => {
    c.on('error', reject)
    c.on('close', (code, signal) => resolve({code: code ?? 128, signal, stdout, stderr, argv: ['node', BIN, ...args]}))
  })
  return {pid: c.pid!, done}
}

s('set up: prior state applied, a foreign gre tunnel and route made by hand', (st) => {
  assertInUml()
  st.started = Date.now()
  st.pair = makePair('kflt')
  st.ns = st.pair.a
  st.prior = specFile('kfaults-prior', yaml(priorSpec()))
  st.full = specFile('kfaults-full', yaml(fullSpec()))
  tunctlOk(['apply', '--netns', st.ns, st.prior])
  ipn(st.ns, 'link', 'add', 'hand1', 'type', 'gre', 'local', A_ADDR, 'remote', ep(99), 'key', '99')
  ipn(st.ns, 'addr', 'add', '10.99.0.1/30', 'dev', 'hand1')
  ipn(st.ns, 'link', 'set', 'hand1', 'up')
  ipn(st.ns, 'route', 'add', FOREIGN_ROUTE, 'dev', 'hand1', 'metric', '77')
  assertDrivers(st.ns, 'kernel')
  const o = observe(st.ns)
  st.before = o.snap
  process.stdout.write(`\n[faults] set up after ${secs(st.started)} s\n`)
  st.index = o.index
  st.foreign = o.foreign
  // observe() sees what the shared helpers see
  assert.is(snapshotDiff(snapshot(st.ns), o.snap), '')
  assert.equal(ifindexes(st.ns), o.index)
  const f = JSON.parse(st.foreign)
  assert.equal(f.routes.map((r: any) => [r.dev, r.metric]), [['hand1', 77]], st.foreign)
  assert.ok(f.addrs[0].addr_info.some((a: any) => a.local === '10.99.0.1'), st.foreign)
})

s('the plan has 20 steps of every kind and all five modes; each step has batch lines', (st) => {
  const p = tunctlOk(['plan', '--show-commands', '--netns', st.ns, st.full])
  assert.equal(planCounts(p.stdout), {create: 11, update: 4, replace: 2, delete: 3}, p.stdout)
  const lines = planCommands(p.stdout)
  let cur: {step: string; line: number} | undefined
  const modes = new Set<string>()
  for (const l of p.stdout.split('\n')) {
    const head = /^(\+|~|-\/\+|-) (\S+) \((\w+), (\w+)\)/.exec(l)
    if (head) {
      assert.is(head[4], 'kernel', `driver of ${head[2]}: ${l}`)
      if (head[1] === '+') modes.add(head[3]!)
      cur = {step: `${head[1]} ${head[2]}`, line: Infinity}
      st.firstLine.push(cur)
      continue
    }
    const cmd = /^\s*\$ \[(\d+)\] ip /.exec(l)
    if (cmd) {
      assert.ok(cur, `a batch line before any step:\n${p.stdout}`)
      cur!.line = Math.min(cur!.line, Number(cmd[1]))
    }
  }
  assert.is(st.firstLine.length, 20, p.stdout)
  assert.equal([...modes].sort(), ['gre', 'ipip', 'isatap', 'sit', 'vti'], 'creates of all five modes')
  for (const f of st.firstLine) assert.ok(Number.isFinite(f.line), `step ${f.step} has no batch line:\n${p.stdout}`)
  assert.is(new Set(st.firstLine.map((f) => f.line)).size, 20, `each step starts at its own line:\n${p.stdout}`)
  assert.ok(lines.length >= 40, `a batch of ${lines.length} lines`)
})

s('baseline: the plan applies and verifies (so the failures below are the injected ones); back to prior', (st) => {
  const r = tunctlOk(['apply', '--netns', st.ns, st.full])
  assert.match(r.stdout, /Applied: 11 created, 4 updated, 2 replaced, 3 deleted/)
  tunctlOk(['plan', '--detailed-exitcode', '--netns', st.ns, st.full], {code: 0})
  assertDrivers(st.ns, 'kernel')
  st.planned = observe(st.ns).snap
  assert.ok(snapshotDiff(st.before!, st.planned) !== '', 'the planned state differs from the prior one')
  assert.is(converged(st, 'full apply'), 'planned')
  resetToPrior(st, 'baseline')
  process.stdout.write(`\n[faults] baseline done after ${secs(st.started)} s\n`)
})

s('a failure at the first batch line of every step: exit 1, exactly the prior state', (st) => {
  for (const {step, line} of st.firstLine) {
    const t0 = Date.now()
    const r = tunctl(['apply', '--netns', st.ns, st.full], {env: {TUNCTL_FAIL_AT_LINE: String(line)}})
    assert.is(r.code, 1, `failure at line ${line} (step ${step}) should exit 1` + show(r))
    const outcome = converged(st, `failure at line ${line} (step ${step})`)
    assert.is(outcome, 'prior', `failure at line ${line} (step ${step})`)
    st.matrix.push({case: `fail at line ${line} (${step})`, exit: String(r.code), next: '-', outcome, s: secs(t0)})
  }
  assertDrivers(st.ns, 'kernel')
})

for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
  for (const phase of PHASES) {
    s(`${sig} at ${phase}: converged`, async (st) => {
      const label = `${sig} at ${phase}`
      const t0 = Date.now()
      // start from the prior state even if an earlier case failed half-way (no cascade of failures)
      if (journalLeft(st.ns) || snapshotDiff(st.before!, observe(st.ns).snap) !== '') tunctl(['apply', '--prune', '--netns', st.ns, st.prior])
      const pause = join(SCRATCH, `kfaults-pause-${sig}-${phase}-${process.pid}`)
      rmSync(pause, {force: true})
      rmSync(`${pause}.reached`, {force: true})
      const env: Record<string, string> = {TUNCTL_PAUSE_AT: phase, TUNCTL_PAUSE_FILE: pause}
      // for rollback: a failure in the middle of the batch, so that there is something to roll back
      if (phase === 'rollback') env.TUNCTL_FAIL_AT_LINE = String(st.firstLine[10]!.line)
      const child = tunctlChild(['apply', '--netns', st.ns, st.full], env)
      try {
        await waitFor(() => existsSync(`${pause}.reached`), Boolean, {what: `the apply to reach ${phase}`, timeoutMs: 90_000, intervalMs: 50})
      } catch (e) {
        process.kill(child.pid, 'SIGKILL') // no apply left waiting behind a failed case
        const r = await child.done
        throw new Error(`${(e as Error).message}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`)
      }
      process.kill(child.pid, sig)
      const r = await child.done
      const out = `\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`
      let next = '-'
      let outcome: 'prior' | 'planned'
      if (sig === 'SIGTERM') {
        // before the batch and during a rollback: rolled back, exit 1; once the batch ran: it stands, exit 0
        const stands = phase === 'batch' || phase === 'after-batch' || phase === 'verify'
        assert.is(r.code, stands ? 0 : 1, `${label}: exit of the interrupted apply` + out)
        assert.match(r.stderr, /SIGTERM/, `${label}: says why` + out)
        outcome = converged(st, label)
        assert.is(outcome, stands ? 'planned' : 'prior', label)
      } else {
        assert.is(r.signal, 'SIGKILL', `${label}: killed` + out)
        assert.ok(journalLeft(st.ns), `${label}: the journal of the killed apply stays`)
        const a = tunctl(['apply', '--netns', st.ns, st.full])
        assert.is(a.code, 0, `${label}: the next apply` + show(a))
        assert.match(a.stderr, /rolled back the unfinished apply/, `${label}: the next apply rolls back first` + show(a))
        outcome = converged(st, `${label}, then apply`)
        assert.is(outcome, 'planned', label)
        next = 'apply: rolled back, applied (0)'
      }
      rmSync(pause, {force: true})
      rmSync(`${pause}.reached`, {force: true})
      if (outcome !== 'prior') resetToPrior(st, label)
      st.matrix.push({case: label, exit: sig === 'SIGKILL' ? 'killed' : String(r.code), next, outcome, s: secs(t0)})
    })
  }
}

s.run()
