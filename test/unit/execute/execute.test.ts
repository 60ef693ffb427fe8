// Execute: batch line generation and line→step mapping, verify, injected failures and rollback (in-memory kernel).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {CommandError, InterruptedError, RollbackError, VerifyError} from '../../../src/lib/errors.js'
import {computePlan} from '../../../src/plan/diff.js'
import {compilePlan, stepForLine} from '../../../src/plan/lines.js'
import {batchLines, executeWith, failAtLineFromEnv, INJECTED_FAILURE_LINE, rollbackPlan} from '../../../src/execute/run.js'
import {ALL_KERNEL, FAKE_DRIVERS, FakeSystem, desired, observed, state} from '../../lib/fakes.mjs'

const D = FAKE_DRIVERS
const planFor = async (sys: FakeSystem, tunnels: any[], extra = {}) =>
  computePlan({file: 't.yaml', tunnels}, await sys.observe(), {prune: false, support: ALL_KERNEL, ...extra}, D)
const text = (lines: string[][]) => lines.map((l) => l.join(' '))
/** what a rollback must restore (ifindex of a recreated link naturally differs) */
const essence = (o: {tunnels: any[]}) =>
  o.tunnels.map((t) => ({name: t.name, driver: t.driver, params: t.params, addresses: t.addresses, routes: t.routes, owned: t.owned}))

test('create: encodeCreate, alias, addresses, up, then routes', () => {
  const t = desired('gre1', 'gre', {addresses: ['10.0.0.1/30'], routes: [{to: '10.1.0.0/16', via: '10.0.0.2', metric: 100, table: 254}]})
  const p = computePlan({file: 'x', tunnels: [t]}, state([]), {prune: false, support: ALL_KERNEL}, D)
  assert.equal(text(compilePlan(p, D).lines), [
    'link add gre1 type gre local 192.0.2.1 remote 198.51.100.7 ttl 0',
    'link set dev gre1 alias tunctl',
    'addr add 10.0.0.1/30 dev gre1',
    'link set dev gre1 up',
    'route add 10.1.0.0/16 dev gre1 via 10.0.0.2 metric 100 table 254',
  ])
})

test('update: params via encodeUpdate, address and route deltas; delete and replace lines; line → step map', () => {
  const o = state([
    observed('a', 'gre', {addresses: ['10.0.0.1/30'], routes: [{to: '10.9.0.0/16', table: 254}]}),
    observed('b', 'ipip', {p: {mtu: 1480}}),
    observed('c', 'gre', {p: {remote: 'any'}}),
  ])
  const p = computePlan(
    {file: 'x', tunnels: [desired('a', 'gre', {p: {ttl: 64}, addresses: ['10.0.0.5/30'], routes: [{to: '10.8.0.0/16', table: 100}]}), desired('b', 'ipip', {state: 'absent'}), desired('c', 'gre')]},
    o,
    {prune: false, support: ALL_KERNEL},
    D,
  )
  const c = compilePlan(p, D)
  assert.equal(text(c.lines), [
    // the routes updates remove go first (another tunnel of the plan may add one with the same key)
    'route del 10.9.0.0/16 dev a table 254',
    'link del dev b',
    'link del dev c',
    'link add c type gre local 192.0.2.1 remote 198.51.100.7 ttl 0',
    'link set dev c alias tunctl',
    'link set dev c up',
    'link set dev a type gre ttl 64',
    'addr del 10.0.0.1/30 dev a',
    'addr add 10.0.0.5/30 dev a',
    'route add 10.8.0.0/16 dev a table 100',
  ])
  assert.is(stepForLine(c, 1)!.name, 'a')
  assert.is(stepForLine(c, 2)!.name, 'b')
  assert.is(stepForLine(c, 4)!.name, 'c')
  assert.is(stepForLine(c, 4)!.kind, 'replace')
  assert.is(stepForLine(c, 10)!.name, 'a')
  assert.is(stepForLine(c, 11), undefined)
})

test('failure injection replaces exactly line N', () => {
  assert.is(failAtLineFromEnv({TUNCTL_FAIL_AT_LINE: '3'}), 3)
  assert.is(failAtLineFromEnv({TUNCTL_FAIL_AT_LINE: 'x'}), undefined)
  assert.is(failAtLineFromEnv({}), undefined)
  const p = computePlan({file: 'x', tunnels: [desired('g', 'gre', {addresses: ['10.0.0.1/30']})]}, state([]), {prune: false, support: ALL_KERNEL}, D)
  const l = batchLines(compilePlan(p, D), 2)
  assert.equal(l[1], INJECTED_FAILURE_LINE)
  assert.is(l[0]![0], 'link')
  assert.is(l.length, 4)
})

test('apply creates, verifies; second apply of the same file runs nothing', async () => {
  const sys = new FakeSystem()
  const spec = [desired('g', 'gre', {addresses: ['10.0.0.1/30'], routes: [{to: '10.1.0.0/16', table: 254}]}), desired('i', 'ipip', {p: {ttl: 64, mtu: 1400}})]
  const r = await executeWith(sys, await planFor(sys, spec), {drivers: D})
  assert.equal(r, {applied: true, lines: 9, verified: true, rolledBack: false})
  assert.is(sys.batches.length, 1)
  const p2 = await planFor(sys, spec)
  assert.is(p2.steps.length, 0)
  const r2 = await executeWith(sys, p2, {drivers: D})
  assert.is(r2.applied, false)
  assert.is(sys.batches.length, 1)
})

test('injected failure at each line → original error, host restored to the snapshot', async () => {
  const initial = [observed('keep', 'gre', {p: {local: '192.0.2.50'}, addresses: ['10.5.0.1/30']}), observed('old', 'ipip', {p: {mtu: 1480, local: '192.0.2.60'}}), observed('foreign', 'gre', {owned: false, p: {local: '203.0.113.1'}})]
  const spec = [desired('keep', 'gre', {p: {local: '192.0.2.50', ttl: 64}, addresses: ['10.5.0.2/30']}), desired('old', 'ipip', {state: 'absent'}), desired('new', 'gre', {addresses: ['10.0.0.1/30']})]
  const probe = new FakeSystem(initial)
  const n = compilePlan(await planFor(probe, spec), D).lines.length
  assert.ok(n >= 6)
  for (let line = 1; line <= n; line++) {
    const sys = new FakeSystem(initial)
    const before = await sys.observe()
    try {
      await executeWith(sys, await planFor(sys, spec), {drivers: D, failAtLine: line})
      assert.unreachable()
    } catch (e: any) {
      assert.instance(e, CommandError, `line ${line}`)
      assert.is(e.exitCode, 1)
      assert.is(e.batchLine, line)
      assert.ok(e.step, 'step named')
      assert.match(e.message, /restored/)
    }
    const after = await sys.observe()
    assert.equal(essence(after), essence(before), `state after rollback (fail at ${line})`)
    assert.is(sys.batches.length, line === 1 ? 1 : 2, 'apply batch + one rollback batch (none when nothing changed)')
  }
})

test('kernel ignoring a change → VerifyError with residual, rolled back', async () => {
  const sys = new FakeSystem([observed('g', 'gre')])
  sys.ignoreField = 'ttl'
  try {
    await executeWith(sys, await planFor(sys, [desired('g', 'gre', {p: {ttl: 64}})]), {drivers: D})
    assert.unreachable()
  } catch (e: any) {
    assert.instance(e, VerifyError)
    assert.equal(e.residual, [{name: 'g', changes: [{field: 'ttl', from: 0, to: 64}]}])
    assert.match(e.message, /restored/)
  }
})

test('rollback that cannot restore → RollbackError (exit 3) listing leftovers', async () => {
  const sys = new FakeSystem([observed('g', 'gre', {addresses: ['10.0.0.1/30']})])
  sys.failLine = /^addr add 10\.0\.0\.1/ // the rollback cannot re-add the old address
  try {
    await executeWith(sys, await planFor(sys, [desired('g', 'gre', {addresses: ['10.0.0.2/30']}), desired('n', 'gre', {p: {local: '192.0.2.77'}})]), {drivers: D, failAtLine: 4})
    assert.unreachable()
  } catch (e: any) {
    assert.instance(e, RollbackError)
    assert.is(e.exitCode, 3)
    assert.ok(e.leftovers.length > 0)
    assert.match(e.message, /left behind/)
  }
})

test('rollbackPlan: created (even alias-less) deleted, changed restored, deleted recreated, foreign untouched', () => {
  const snapshot = state([observed('a', 'gre', {p: {ttl: 0}}), observed('gone', 'ipip', {p: {mtu: 1480, local: '192.0.2.9'}}), observed('f', 'gre', {owned: false, p: {local: '203.0.113.1'}})])
  const current = state([
    observed('a', 'gre', {p: {ttl: 64}}),
    observed('half', 'gre', {owned: false, p: {local: '192.0.2.33'}}),
    observed('f', 'gre', {owned: false, p: {local: '203.0.113.1'}}),
  ])
  const p = rollbackPlan(current, snapshot, D)
  assert.equal(
    p.steps.map((s) => [s.kind, s.name]),
    [['delete', 'half'], ['update', 'a'], ['create', 'gone']],
  )
  assert.equal(p.steps[1]!.changes, [{field: 'ttl', from: 64, to: 0}])
  assert.is(p.steps[2]!.desired!.params.mtu, 1480)
  // an alias-less link the failed plan did not touch (made by someone else meanwhile) is left alone
  const p2 = rollbackPlan(current, snapshot, D, new Set(['a', 'gone']))
  assert.equal(p2.steps.map((s) => [s.kind, s.name]), [['update', 'a'], ['create', 'gone']])
})

test('userspace: start before the batch for creates, stop after it for deletes; failed start rolls back', async () => {
  const sys = new FakeSystem([observed('old', 'gre', {driver: 'userspace', pid: 7, alive: true, p: {local: '192.0.2.70'}})])
  const spec = [desired('u', 'gre', {driver: 'userspace', addresses: ['10.0.0.1/30']}), desired('old', 'gre', {state: 'absent'})]
  await executeWith(sys, await planFor(sys, spec), {drivers: D})
  assert.equal(sys.log, ['start u', 'stop old'])
  // the engine gives the device it creates its mark, addresses and up state (CreatedDevice): no batch lines for u
  assert.equal(text(sys.batches[0]!), ['link del dev old'])
  const t = (await sys.observe()).tunnels.find((x) => x.name === 'u')!
  assert.is(t.owned, true)
  assert.equal([t.addresses, t.params.up], [['10.0.0.1/30'], true])

  const sys2 = new FakeSystem([observed('k', 'gre', {p: {local: '192.0.2.71'}})])
  sys2.startFails = true
  const before = await sys2.observe()
  try {
    await executeWith(sys2, await planFor(sys2, [desired('u', 'gre', {driver: 'userspace'}), desired('k', 'gre', {state: 'absent'})]), {drivers: D})
    assert.unreachable()
  } catch (e: any) {
    assert.match(e.message, /start encapsulator for u/)
    assert.match(e.message, /restored/)
  }
  assert.equal(essence(await sys2.observe()), essence(before))
  assert.is(sys2.batches.length, 0, 'nothing ran: the start failed before the batch')
})

test('dead encapsulator → restart update restores it', async () => {
  const sys = new FakeSystem([observed('u', 'gre', {driver: 'userspace', pid: 7, alive: false})])
  const p = await planFor(sys, [desired('u', 'gre', {driver: 'userspace'})])
  assert.is(p.steps[0]!.kind, 'update')
  const r = await executeWith(sys, p, {drivers: D})
  assert.is(r.verified, true)
  assert.equal(sys.log, ['start u'])
})

test('userspace parameter change → update that reloads the running encapsulator', async () => {
  const sys = new FakeSystem([observed('u', 'gre', {driver: 'userspace', pid: 7, alive: true, p: {mtu: 1500}})])
  const p = await planFor(sys, [desired('u', 'gre', {driver: 'userspace', p: {ttl: 64, mtu: 1400}})])
  assert.is(p.steps[0]!.kind, 'update')
  const c = compilePlan(p, D)
  assert.equal(c.programs[0]!.pre.map((a) => a.op), ['start'])
  assert.equal(text(c.lines), ['link set dev u mtu 1400'])
  const r = await executeWith(sys, p, {drivers: D})
  assert.is(r.verified, true)
})

test('--adopt: a foreign tunnel gets the alias; a failed apply restores it and hands it back', async () => {
  const initial = [observed('legacy', 'gre', {owned: false, addresses: ['10.0.0.1/30']})]
  const spec = [desired('legacy', 'gre', {p: {ttl: 64}, addresses: ['10.0.0.2/30']})]
  const sys = new FakeSystem(initial)
  const adopt = new Set(['legacy'])
  const p = await planFor(sys, spec, {adopt})
  assert.is(p.steps[0]!.kind, 'update')
  assert.equal(p.steps[0]!.changes.map((c) => c.field), ['ttl', 'addresses', 'owned'])
  assert.ok(text(compilePlan(p, D).lines).includes('link set dev legacy alias tunctl'))
  const before = await sys.observe()
  try {
    await executeWith(sys, p, {drivers: D, failAtLine: 4, adopted: adopt})
    assert.unreachable()
  } catch (e: any) {
    assert.match(e.message, /restored/)
  }
  assert.equal(essence(await sys.observe()), essence(before))
  assert.ok(text(sys.batches[1]!).includes('link set dev legacy alias '), 'alias cleared by the rollback')
  // and the successful path
  const r = await executeWith(sys, await planFor(sys, spec, {adopt}), {drivers: D, adopted: adopt})
  assert.is(r.verified, true)
  assert.is((await sys.observe()).tunnels[0]!.owned, true)
  assert.is((await planFor(sys, spec)).steps.length, 0, 'owned now: no --adopt needed any more')
})

test('verification skips the route dump only when no step has routes before or after', async () => {
  // run with the snapshot given, so the only observe after planning is verification's
  const run = async (sys: FakeSystem, tunnels: any[]) => {
    const snapshot = await sys.observe()
    const plan = await planFor(sys, tunnels)
    sys.observeRoutes = []
    await executeWith(sys, plan, {drivers: D, verifyRetryMs: [], snapshot})
    return sys.observeRoutes
  }
  const none = new FakeSystem([observed('a', 'gre', {addresses: ['10.0.0.1/30']})])
  assert.equal(await run(none, [desired('a', 'gre', {p: {ttl: 64}, addresses: ['10.0.0.1/30']}), desired('b', 'ipip')]), [false], 'verify observed without routes')
  // a route only in the desired state, or only in the observed one: routes are verified
  for (const [obs, want] of [
    [[], [{to: '10.9.0.0/16', table: 254}]],
    [[{to: '10.9.0.0/16', table: 254}], []],
  ]) {
    const sys = new FakeSystem([observed('a', 'gre', {routes: obs})])
    assert.equal(await run(sys, [desired('a', 'gre', {p: {ttl: 64}, routes: want})]), [true], JSON.stringify({obs, want}))
  }
})

test('a batch line failing after userspace creates stops their encapsulators and removes their TUN devices', async () => {
  // the rollback must not rely on observe listing a fresh userspace tunnel's TUN device (one without the mark is no
  // tunnel to it: it used to be left behind, "restored"). The creates' batch lines are their routes (the engine
  // sets the rest: CreatedDevice); failing at each of them
  const sys = new FakeSystem([observed('k', 'gre', {p: {local: '192.0.2.71'}})])
  sys.hideUnownedTun = true
  const before = await sys.observe()
  const spec = [1, 2].map((i) => desired(`u${i}`, 'gre', {driver: 'userspace', p: {local: `192.0.2.8${i}`}, addresses: [`10.0.${i}.1/30`], routes: [{to: `10.${i}.0.0/16`, table: 254}]}))
  assert.equal(text(compilePlan(await planFor(sys, spec), D).lines), ['route add 10.1.0.0/16 dev u1 table 254', 'route add 10.2.0.0/16 dev u2 table 254'])
  for (const line of [1, 2]) {
    sys.log = []
    try {
      await executeWith(sys, await planFor(sys, spec), {drivers: D, failAtLine: line})
      assert.unreachable()
    } catch (e: any) {
      assert.instance(e, CommandError)
      assert.match(e.message, /restored/)
      assert.is(e.applied, true, 'the batch ran')
    }
    assert.equal(sys.log.filter((l) => l.startsWith('stop')).sort(), ['stop u1', 'stop u2'], `line ${line}: ${sys.log}`)
    const after = await sys.observe()
    assert.equal(after.links.sort(), before.links.sort(), `line ${line}: no TUN device left`)
    assert.equal(essence(after), essence(before))
  }
})

test('a name someone else took between observe and batch is left alone by the rollback', async () => {
  const sys = new FakeSystem([])
  const snapshot = await sys.observe()
  const plan = await planFor(sys, [desired('a', 'gre', {p: {local: '192.0.2.1'}}), desired('n', 'gre', {p: {local: '192.0.2.2'}})])
  // meanwhile another tool creates a tunnel named n (no tunctl alias)
  sys.tunnels.set('n', observed('n', 'gre', {owned: false, p: {local: '203.0.113.9'}}))
  try {
    await executeWith(sys, plan, {drivers: D, snapshot})
    assert.unreachable()
  } catch (e: any) {
    assert.instance(e, CommandError)
    assert.match(e.message, /restored/)
  }
  const after = await sys.observe()
  assert.equal(after.tunnels.map((t) => [t.name, t.owned, t.params.local]), [['n', false, '203.0.113.9']], 'a (ours) deleted, n (foreign) kept')
})

test('interrupt before the batch → InterruptedError (exit 1), started encapsulators stopped, no batch', async () => {
  const sys = new FakeSystem([])
  sys.hideUnownedTun = true
  const before = await sys.observe()
  let sig: string | undefined
  const phases: string[] = []
  const spec = [desired('u1', 'gre', {driver: 'userspace', p: {local: '192.0.2.81'}}), desired('u2', 'gre', {driver: 'userspace', p: {local: '192.0.2.82'}})]
  try {
    await executeWith(sys, await planFor(sys, spec), {
      drivers: D,
      hooks: {
        interrupted: () => sig,
        started: async () => void (sig = 'SIGTERM'), // the signal arrives after the first start
        phase: async (p) => void phases.push(p),
      },
    })
    assert.unreachable()
  } catch (e: any) {
    assert.instance(e, InterruptedError)
    assert.is(e.exitCode, 1)
    assert.is(e.applied, false)
    assert.match(e.message, /SIGTERM.*\n.*restored/s)
  }
  assert.is(sys.batches.length, 0)
  assert.equal(sys.log, ['start u1', 'stop u1'])
  assert.equal(phases, ['rollback'])
  assert.equal(essence(await sys.observe()), essence(before))
})

test('interrupt while the batch runs → the batch finishes, is verified and stands (result.interrupted)', async () => {
  const sys = new FakeSystem([])
  let sig: string | undefined
  const calls: string[] = []
  const r = await executeWith(sys, await planFor(sys, [desired('g', 'gre', {addresses: ['10.0.0.1/30']})]), {
    drivers: D,
    hooks: {
      interrupted: () => sig,
      phase: async (p) => {
        calls.push(p)
        if (p === 'batch') sig = 'SIGINT'
      },
      created: async (names) => void calls.push(`created ${names}`),
    },
  })
  assert.equal(r, {applied: true, lines: 4, verified: true, rolledBack: false, interrupted: 'SIGINT'})
  assert.equal(calls, ['before-batch', 'batch', 'created g', 'after-batch', 'verify'])
})

test('hooks: starting/started around each encapsulator start; created = link adds before the failing line', async () => {
  const sys = new FakeSystem([])
  const calls: string[] = []
  const spec = [desired('a', 'gre', {p: {local: '192.0.2.1'}}), desired('b', 'gre', {p: {local: '192.0.2.2'}}), desired('u', 'gre', {driver: 'userspace', p: {local: '192.0.2.3'}})]
  const plan = await planFor(sys, spec)
  const c = compilePlan(plan, D)
  const bAdd = c.lines.findIndex((l) => l[1] === 'add' && l[2] === 'b') + 1
  try {
    await executeWith(sys, plan, {
      drivers: D,
      failAtLine: bAdd,
      hooks: {
        starting: async (n) => void calls.push(`starting ${n}`),
        started: async (n) => void calls.push(`started ${n}`),
        created: async (names) => void calls.push(`created ${names.join(',')}`),
      },
    })
    assert.unreachable()
  } catch {}
  assert.equal(calls, ['starting u', 'started u', 'created a'])
})

test('engine transactions (encapBatch): all of one commit\'s starts are journaled in one call before the commit, their completions in one after', async () => {
  const sys = new FakeSystem([])
  const calls: string[] = []
  const batched = Object.assign(sys, {
    encapBatch: async (b: {start?: Array<{name: string; params: any; device?: {addresses: string[]; up: boolean}}>}) => {
      calls.push(`commit ${(b.start ?? []).map((s) => s.name).join(',')}`)
      const r = new Map<string, string | undefined>()
      for (const s of b.start ?? []) {
        await sys.startEncap(s.name, s.params, undefined, s.device)
        r.set(s.name, undefined)
      }
      return r
    },
  })
  const spec = ['u1', 'u2', 'u3'].map((n, i) => desired(n, 'gre', {driver: 'userspace', p: {local: `192.0.2.${i + 1}`}}))
  const plan = await planFor(sys, spec)
  await executeWith(batched, plan, {
    drivers: D,
    hooks: {
      starting: async (n) => void calls.push(`starting ${n.join(',')}`),
      started: async (n) => void calls.push(`started ${n.join(',')}`),
    },
  })
  assert.equal(calls, ['starting u1,u2,u3', 'commit u1,u2,u3', 'started u1,u2,u3'])
})

test('many userspace deletions: each device moved to a group no link uses, then ONE `link del group` before any other step', async () => {
  const G = 0x74756e63 // freeGroup's first candidate: taken by a foreign link here, so the next one is used
  const us = (n: string, local: string) => observed(n, 'gre', {driver: 'userspace', pid: 7, alive: true, p: {local}})
  const sys = new FakeSystem([us('u1', '192.0.2.71'), us('u2', '192.0.2.72'), us('u3', '192.0.2.73'), observed('k', 'gre', {p: {local: '192.0.2.74'}})])
  sys.others.veth9 = 'veth'
  sys.withGroups({veth9: String(G), u2: '7'})
  const absent = (n: string) => desired(n, 'gre', {state: 'absent'})
  const spec = [absent('u1'), absent('u2'), absent('k'), absent('u3'), desired('n', 'gre', {addresses: ['10.0.0.1/30']})]
  const r = await executeWith(sys, await planFor(sys, spec), {drivers: D})
  assert.is(r.verified, true)
  const g = String(G + 1)
  assert.equal(text(sys.batches[0]!).slice(0, 5), [
    `link set dev u1 group ${g}`,
    `link set dev u2 group ${g}`,
    'link del dev k',
    `link set dev u3 group ${g}`,
    `link del group ${g}`,
  ])
  assert.match(text(sys.batches[0]!)[5]!, /^link add n /)
  assert.equal(sys.log, ['stop u1', 'stop u2', 'stop u3'])
  assert.equal((await sys.observe()).tunnels.map((t) => t.name), ['n'])
  assert.ok('veth9' in sys.others, 'the foreign link of group G is not touched')

  // the plan shown (compiled without groups) keeps one `link del dev` per tunnel; a single userspace deletion too
  const one = new FakeSystem([us('u1', '192.0.2.71'), observed('k', 'gre', {p: {local: '192.0.2.74'}})]).withGroups()
  await executeWith(one, await planFor(one, [absent('u1'), absent('k')]), {drivers: D})
  assert.equal(text(one.batches[0]!), ['link del dev u1', 'link del dev k'])
})

test('a batch stopping before the group deletion gives the moved devices their group back, then rolls back', async () => {
  const us = (n: string, local: string) => observed(n, 'gre', {driver: 'userspace', pid: 7, alive: true, p: {local}})
  const absent = (n: string) => desired(n, 'gre', {state: 'absent'})
  // at the group deletion itself (line 4), and at the second device's move (line 2)
  for (const [at, moved] of [[4, ['u1', 'u2', 'u3']], [2, ['u1']]] as const) {
    const sys = new FakeSystem([us('u1', '192.0.2.71'), us('u2', '192.0.2.72'), us('u3', '192.0.2.73')]).withGroups({u2: '7', u1: '3'})
    const before = await sys.observe()
    try {
      await executeWith(sys, await planFor(sys, [absent('u1'), absent('u2'), absent('u3')]), {drivers: D, failAtLine: at})
      assert.unreachable()
    } catch (e: any) {
      assert.instance(e, CommandError)
      assert.match(e.message, new RegExp(`batch line ${at}`))
      assert.match(e.message, /restored/)
    }
    assert.equal(text(sys.batches[1]!), moved.map((n) => `link set dev ${n} group ${{u1: '3', u2: '7', u3: 'default'}[n]}`), `failure at line ${at}`)
    assert.equal(essence(await sys.observe()), essence(before))
    assert.equal(['u1', 'u2', 'u3'].map((n) => sys.groups.get(n) ?? 'default'), ['3', '7', 'default'], 'each device in its own group again')
    assert.equal(sys.log, [], 'no encapsulator stopped')
  }
})

test('the rollback deletes the TUN devices of the encapsulators it started as one group before stopping them', async () => {
  // (failing at batch line 2: u2's route; the engine configured both devices before the batch)
  const spec = [1, 2].map((i) => desired(`u${i}`, 'gre', {driver: 'userspace', p: {local: `192.0.2.8${i}`}, routes: [{to: `10.${i}.0.0/16`, table: 254}]}))
  // the group deletion works; or it fails (the devices get their group back and the engine's stop deletes them)
  for (const failGroup of [false, true]) {
    const sys = new FakeSystem([observed('k', 'gre', {p: {local: '192.0.2.71'}})]).withGroups()
    sys.hideUnownedTun = true
    const before = await sys.observe()
    if (failGroup) sys.failLine = /^link del group/
    try {
      await executeWith(sys, await planFor(sys, spec), {drivers: D, failAtLine: 2})
      assert.unreachable()
    } catch (e: any) {
      assert.instance(e, CommandError)
      assert.match(e.message, /restored/)
    }
    const g = String(0x74756e63)
    assert.equal(text(sys.batches[1]!), [`link set dev u1 group ${g}`, `link set dev u2 group ${g}`, `link del group ${g}`])
    if (failGroup) assert.equal(text(sys.batches[2]!), ['link set dev u1 group default', 'link set dev u2 group default'])
    assert.equal(sys.log.filter((l) => l.startsWith('stop')).sort(), ['stop u1', 'stop u2'], 'the engine is still told to stop them')
    const after = await sys.observe()
    assert.equal(after.links.sort(), before.links.sort(), 'no TUN device left')
    assert.equal(essence(after), essence(before))
    assert.equal(sys.groups.size, 0)
  }
})

test.run()
