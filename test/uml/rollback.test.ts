// A failure injected at every line of a mixed apply batch (update, replace, delete, create) leaves the
// namespace exactly as it was (see lib/snapshot.ts for what "exactly" means) and exits 1.
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {A_ADDR, ifindex, makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml, ipn} from './lib/sh.js'
import {ifindexes, snapshot, snapshotDiff, type Snapshot} from './lib/snapshot.js'
import {example, yaml, type Spec} from './lib/spec.js'
import {assertDrivers, json, planCommands, planCounts, show, specFile, tunctl, tunctlOk} from './lib/tunctl.js'

interface State {
  pair?: Pair
  s0?: string
  s1?: string
  before?: Snapshot
  index?: Record<string, number>
  lines?: string[]
}

const s = suite<State>('kernel rollback on a failed batch line', {})
s.after((st) => removePair(st.pair))

/** Before: gre1 (example), gre2 (with a route), ipip1 (example, with a route), and a foreign gre made by hand. */
function specBefore(): Spec {
  const spec: Spec = {version: 1, tunnels: {...example('gre').tunnels, ...example('ipip').tunnels}}
  spec.tunnels.gre2 = {
    mode: 'gre', local: A_ADDR, remote: '198.51.100.3', key: 2, ttl: 64,
    addresses: ['10.10.9.1/30'], routes: [{to: '10.30.0.0/16', via: '10.10.9.2', metric: 10}],
  }
  return spec
}

/** After: gre1 updated in place (ttl, mtu, one address swapped), gre2 replaced (remote any), ipip1 deleted, gre3 and sit9 created. */
function specAfter(): Spec {
  const spec = specBefore()
  spec.tunnels.gre1 = {...spec.tunnels.gre1, ttl: 32, mtu: 1300, addresses: ['10.10.2.5/30', '2001:db8:2::1/64']}
  spec.tunnels.gre2 = {...spec.tunnels.gre2, remote: 'any'}
  spec.tunnels.ipip1 = {...spec.tunnels.ipip1, state: 'absent'}
  spec.tunnels.gre3 = {
    mode: 'gre', local: A_ADDR, remote: '198.51.100.4', key: 3, mtu: 1400,
    addresses: ['10.10.10.1/30'], routes: [{to: '10.40.0.0/16', via: '10.10.10.2', table: 100}],
  }
  spec.tunnels.sit9 = {mode: 'sit', local: A_ADDR, remote: '198.51.100.5', ttl: 64, addresses: ['2001:db8:9::1/64']}
  return spec
}

s('set up: applied tunnels plus a hand-made one', (st) => {
  assertInUml()
  st.pair = makePair('rollback')
  const a = st.pair.a
  st.s0 = specFile('rollback-before', yaml(specBefore()))
  st.s1 = specFile('rollback-after', yaml(specAfter()))
  tunctlOk(['apply', '--netns', a, st.s0])
  assertDrivers(a, 'kernel')
  ipn(a, 'link', 'add', 'hand1', 'type', 'gre', 'local', A_ADDR, 'remote', '198.51.100.9', 'key', '99')
  ipn(a, 'addr', 'add', '10.99.0.1/30', 'dev', 'hand1')
  ipn(a, 'link', 'set', 'hand1', 'up')
  st.before = snapshot(a)
  st.index = ifindexes(a)
})

s('the plan mixes every kind of step', (st) => {
  const p = tunctlOk(['plan', '--show-commands', '--netns', st.pair!.a, st.s1!])
  assert.equal(planCounts(p.stdout), {create: 2, update: 1, replace: 1, delete: 1}, p.stdout)
  st.lines = planCommands(p.stdout)
  assert.ok(st.lines.length >= 8, `expected a batch of several lines:\n${p.stdout}`)
})

s('a failure at any batch line: exit 1, namespace exactly as before', (st) => {
  const a = st.pair!.a
  const n = st.lines!.length
  // every line of the batch: each is a different point inside a different step
  for (let line = 1; line <= n; line++) {
    const r = tunctl(['apply', '--netns', a, st.s1!], {env: {TUNCTL_FAIL_AT_LINE: String(line)}})
    assert.is(r.code, 1, `failure injected at line ${line} (${st.lines![line - 1]}) should exit 1` + show(r))
    const diff = snapshotDiff(st.before!, snapshot(a))
    assert.is(diff, '', `after a failure at line ${line} (${st.lines![line - 1]}) the namespace changed:\n${diff}` + show(r))
    // links that only an in-place update touched, and links tunctl does not own, keep their ifindex
    for (const name of ['gre1', 'hand1', 'ul0', 'lo']) {
      assert.is(ifindex(a, name), st.index![name], `${name} keeps its ifindex after a failure at line ${line}`)
    }
  }
})

s('--json on failure says rolled back', (st) => {
  const a = st.pair!.a
  const r = tunctl(['apply', '--json', '--netns', a, st.s1!], {env: {TUNCTL_FAIL_AT_LINE: '2'}})
  assert.is(r.code, 1, show(r))
  const j = json(r)
  assert.is(j.ok, false, show(r))
  assert.is(j.rolledBack, true, show(r))
  assert.is(snapshotDiff(st.before!, snapshot(a)), '')
})

s('without the injected failure the same file applies (so the failures above were the injected ones)', (st) => {
  const a = st.pair!.a
  tunctlOk(['apply', '--netns', a, st.s1!])
  tunctlOk(['plan', '--detailed-exitcode', '--netns', a, st.s1!], {code: 0})
  assert.is(ifindex(a, 'gre1'), st.index!.gre1, 'gre1 updated in place')
  assert.is(ifindex(a, 'ipip1'), undefined, 'ipip1 deleted')
  assert.ok(ifindex(a, 'gre3') && ifindex(a, 'sit9'), 'gre3 and sit9 created')
  assert.ok(ifindex(a, 'hand1'), 'the hand-made tunnel is untouched')
  const routes = ipn(a, 'route', 'show', 'table', '100')
  assert.match(routes, /10\.40\.0\.0\/16 via 10\.10\.10\.2 dev gre3/)
})

s.run()
