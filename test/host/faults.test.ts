// Fault matrix (userspace driver): a plan of 20 new tunnels plus an update of an existing one, with a failure
// injected at several batch lines and SIGTERM / SIGKILL at each phase (TUNCTL_PAUSE_AT stops the apply at a known
// point). Every case must end converged after the interrupted command and at most one following command: the
// namespace holds exactly the prior state or exactly the planned one, with no TUN device, encapsulator daemon,
// journal or state file of tunctl beyond that state, and the foreign link and route untouched.
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {essence, exited, leftovers, REPO, showJson, tunctl, tunctlChild, until} from './lib/cli.js'
import {type Pair, ipn, makePair, removePair, whyNoUserspaceCli} from './lib/netns.js'

const N = 20
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-faults-'))
const PRIOR = join(scratch, 'prior.yaml')
const FULL = join(scratch, 'full.yaml')

function gre(name: string, key: number, addr: string, route?: string): string {
  return `  ${name}:\n    mode: gre\n    driver: userspace\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    key: ${key}\n    addresses: [${addr}]\n${route ? `    routes:\n      - to: ${route}\n` : ''}`
}
// each new tunnel has a route: its one batch line (the engine sets its device's addresses and up state in the commit)
writeFileSync(PRIOR, `version: 1\ntunnels:\n${gre('pre0', 1000, '10.78.0.1/30')}`)
writeFileSync(FULL, `version: 1\ntunnels:\n${gre('pre0', 1000, '10.78.0.5/30')}${Array.from({length: N}, (_, i) => gre(`ft${i}`, i + 1, `10.77.${i}.1/30`, `10.76.${i}.0/24`)).join('')}`)

const whyNot = whyNoUserspaceCli

const t = suite('fault matrix: 20 userspace tunnels, failures and signals at every phase')
const why = whyNot()
let pair: Pair | undefined
let ns = ''
let priorState: Record<string, unknown> = {}
let fullState: Record<string, unknown> | undefined
let foreignIndex = 0
const matrix: Array<{case: string; exit: string; next: string; outcome: string}> = []

function links(): string[] {
  return (JSON.parse(ipn(ns, '-j', 'link', 'show')) as any[]).map((l) => l.ifname).sort()
}

function foreignIntact(): void {
  const l = JSON.parse(ipn(ns, '-j', 'link', 'show', 'dev', 'fveth0'))[0]
  assert.is(l.ifindex, foreignIndex, 'foreign link fveth0 is the same link')
  assert.ok(!l.ifalias, 'foreign link has no alias')
  const routes = JSON.parse(ipn(ns, '-j', 'route', 'show', '203.0.113.0/24')) as any[]
  assert.equal(routes.map((r) => [r.dst, r.dev]), [['203.0.113.0/24', 'fveth0']], 'foreign route intact')
}

/** prior or full, exactly; nothing of tunctl beyond it; foreign things intact. */
function converged(label: string): 'prior' | 'full' {
  const tunnels = showJson(ns)
  const now = essence(tunnels)
  const which = JSON.stringify(now) === JSON.stringify(priorState) ? 'prior' : fullState && JSON.stringify(now) === JSON.stringify(fullState) ? 'full' : undefined
  assert.ok(which, `${label}: neither the prior nor the planned state:\n${JSON.stringify(now, null, 1).slice(0, 3000)}`)
  const left = leftovers(ns, tunnels)
  assert.equal(left, [], `${label}: ${left.join('; ')}`)
  const expectLinks = ['fveth0', 'fveth1', 'lo', 'ul0', ...tunnels.map((x) => x.name)].sort()
  assert.equal(links(), expectLinks, `${label}: links (no stray TUN device)`)
  foreignIntact()
  return which!
}

function resetToPrior(): void {
  const r = tunctl(['apply', '--prune', '--netns', ns, PRIOR])
  assert.is(r.code, 0, `reset: ${r.err}`)
  assert.is(converged('after reset'), 'prior')
}

if (why) {
  t.skip(`fault matrix: skipped: ${why}`, () => {})
} else {
  t.before(() => {
    pair = makePair('flt')
    ns = pair.a
    ipn(ns, 'link', 'add', 'fveth0', 'type', 'veth', 'peer', 'name', 'fveth1')
    ipn(ns, 'link', 'set', 'fveth0', 'up')
    ipn(ns, 'link', 'set', 'fveth1', 'up')
    ipn(ns, 'route', 'add', '203.0.113.0/24', 'dev', 'fveth0')
    foreignIndex = JSON.parse(ipn(ns, '-j', 'link', 'show', 'dev', 'fveth0'))[0].ifindex
  })
  t.after(() => {
    removePair(pair)
    if (matrix.length) {
      const w = [28, 10, 34, 7]
      const row = (c: string[]) => c.map((x, i) => x.padEnd(w[i]!)).join(' | ')
      process.stdout.write(`\n\nFAULT MATRIX (${N}-tunnel userspace plan)\n${row(['case', 'exit', 'next command', 'outcome'])}\n${w.map((n) => '-'.repeat(n)).join('-|-')}\n`)
      for (const m of matrix) process.stdout.write(row([m.case, m.exit, m.next, m.outcome]) + '\n')
    }
  })

  const lines = 2 + N // pre0: addr del + addr add; each new tunnel: its route add (checked in the baseline)
  // the first batch line of every step: pre0's update, then each create (checked against the plan in the baseline)
  const firstLines = [1, ...Array.from({length: N}, (_, i) => 3 + i)]

  t('baseline: prior state applied; the full plan applies, verifies, and is recorded; back to prior', () => {
    const r = tunctl(['apply', '--netns', ns, PRIOR])
    assert.is(r.code, 0, r.err)
    priorState = essence(showJson(ns))
    const cmds = JSON.parse(tunctl(['plan', '--json', '--show-commands', '--netns', ns, FULL]).out).commands
    assert.is(cmds.length, lines, 'batch lines of the full plan')
    assert.match(JSON.stringify(cmds[0]), /pre0/, 'line 1 is pre0\'s update')
    for (let i = 0; i < N; i++) {
      assert.match(JSON.stringify(cmds[firstLines[i + 1]! - 1]), new RegExp(`\\bft${i}\\b`), `line ${firstLines[i + 1]} starts ft${i}'s create`)
      if (i > 0) assert.not.match(JSON.stringify(cmds[firstLines[i + 1]! - 2]), new RegExp(`\\bft${i}\\b`), `line ${firstLines[i + 1]} is the first of ft${i}`)
    }
    assert.equal(Object.keys(priorState), ['pre0'])
    const f = tunctl(['apply', '--netns', ns, FULL])
    assert.is(f.code, 0, f.err)
    assert.match(f.out, new RegExp(`Applied: ${N} created, 1 updated`))
    fullState = essence(showJson(ns))
    assert.is(Object.keys(fullState).length, N + 1)
    assert.is(converged('full apply'), 'full')
    resetToPrior()
  })

  // ---- failures injected into the batch: rolled back by the apply itself (exit 1) ----
  for (const at of new Set([...firstLines, lines])) {
    t(`TUNCTL_FAIL_AT_LINE=${at}: exit 1, prior state, nothing left`, () => {
      const r = tunctl(['apply', '--netns', ns, FULL], {TUNCTL_FAIL_AT_LINE: String(at)})
      assert.is(r.code, 1, r.out + r.err)
      assert.match(r.err, /restored/)
      assert.is(converged(`fail at ${at}`), 'prior')
      matrix.push({case: `batch line ${at} fails`, exit: String(r.code), next: '-', outcome: 'prior'})
    })
  }

  // ---- signals at each phase ----
  const phases = ['before-batch', 'batch', 'after-batch', 'verify', 'rollback'] as const
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    for (const phase of phases) {
      t(`${sig} at ${phase}: converged`, async () => {
        // start from the prior state even if an earlier case failed half-way (no cascade of failures)
        tunctl(['apply', '--prune', '--netns', ns, PRIOR])
        const pause = join(scratch, `pause-${sig}-${phase}`)
        const env: Record<string, string> = {TUNCTL_PAUSE_AT: phase, TUNCTL_PAUSE_FILE: pause}
        if (phase === 'rollback') env.TUNCTL_FAIL_AT_LINE = '20' // something to roll back (ft17's route)
        const child = tunctlChild(['apply', '--netns', ns, FULL], env)
        await until(`apply to reach ${phase}`, () => existsSync(`${pause}.reached`), 60_000)
        child.proc.kill(sig)
        const r = await exited(child, `apply after ${sig} at ${phase}`)
        let next = '-'
        let outcome: 'prior' | 'full'
        if (sig === 'SIGTERM') {
          // before the batch (and during a rollback): rolled back, exit 1; once the batch runs: it stands, exit 0
          const stands = phase === 'batch' || phase === 'after-batch' || phase === 'verify'
          assert.is(r.code, stands ? 0 : 1, `exit of the interrupted apply\n${r.out}\n${r.err}`)
          assert.match(r.err, new RegExp(`SIGTERM`))
          outcome = converged(`${sig} at ${phase}`)
          assert.is(outcome, stands ? 'full' : 'prior')
          const s = tunctl(['show', '--netns', ns])
          assert.is(s.code, 0)
          assert.not.match(s.err, /unfinished|did not finish|whose process is gone/, 'no journal left')
          next = 'show: nothing to report'
        } else {
          assert.is(r.signal, 'SIGKILL')
          // the journal stays; a read-only command reports it, the next apply rolls it back first
          const s = tunctl(['show', '--netns', ns])
          assert.match(s.err, /whose process is gone/, `show reports the unfinished apply: ${s.err}`)
          const a = tunctl(['apply', '--netns', ns, FULL])
          assert.is(a.code, 0, a.out + a.err)
          assert.match(a.err, /found an apply of .* rolling back to the state before it/)
          assert.match(a.err, /rolled back the unfinished apply/)
          outcome = converged(`${sig} at ${phase}, then apply`)
          assert.is(outcome, 'full')
          next = 'apply: rolled back, then applied'
        }
        matrix.push({case: `${sig} at ${phase}`, exit: sig === 'SIGKILL' ? 'killed' : String(r.code), next, outcome})
        rmSync(pause, {force: true})
        rmSync(`${pause}.reached`, {force: true})
        resetToPrior()
      })
    }
  }

  t('SIGKILL before the batch, then del (a mutating command) converges to the prior state', async () => {
    tunctl(['apply', '--prune', '--netns', ns, PRIOR])
    const pause = join(scratch, 'pause-del')
    const child = tunctlChild(['apply', '--netns', ns, FULL], {TUNCTL_PAUSE_AT: 'before-batch', TUNCTL_PAUSE_FILE: pause})
    await until('apply to reach before-batch', () => existsSync(`${pause}.reached`), 60_000)
    child.proc.kill('SIGKILL')
    await exited(child, 'killed apply')
    const d = tunctl(['del', '--ignore-missing', '--netns', ns, 'no-such-tunnel'])
    assert.is(d.code, 0, d.err)
    assert.match(d.err, /rolled back the unfinished apply/)
    assert.is(converged('SIGKILL then del'), 'prior')
    matrix.push({case: 'SIGKILL at before-batch', exit: 'killed', next: 'del: rolled back', outcome: 'prior'})
  })
}

t.run()

process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))
