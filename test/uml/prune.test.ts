// Ownership in a real kernel: --prune deletes only tunnels tunctl created; hand-made tunnels survive
// prune, are hidden from `show` without --all, and `del` refuses them without --force.
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {A_ADDR, ifindex, makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml, ipn} from './lib/sh.js'
import {example, yaml, type Spec} from './lib/spec.js'
import {assertDrivers, json, param, planCounts, show, shownTunnels, specFile, tunctl, tunctlOk} from './lib/tunctl.js'
import {assertPlan} from './lib/scenario.js'

interface State {
  pair?: Pair
  both?: string
  one?: string
  none?: string
  gre1?: number
}

const s = suite<State>('kernel ownership and --prune', {})
s.after((st) => removePair(st.pair))

function both(): Spec {
  const spec: Spec = {version: 1, tunnels: {...example('gre').tunnels}}
  spec.tunnels.gre2 = {mode: 'gre', local: A_ADDR, remote: '198.51.100.3', key: 2, addresses: ['10.10.9.1/30']}
  return spec
}

s('set up: two owned tunnels and two made by hand', (st) => {
  assertInUml()
  st.pair = makePair('prune')
  const a = st.pair.a
  st.both = specFile('prune-both', yaml(both()))
  st.one = specFile('prune-one', yaml({version: 1, tunnels: example('gre').tunnels}))
  st.none = specFile('prune-none', 'version: 1\ntunnels: {}\n')
  tunctlOk(['apply', '--netns', a, st.both])
  assertDrivers(a, 'kernel')
  ipn(a, 'link', 'add', 'hand1', 'type', 'gre', 'local', A_ADDR, 'remote', '198.51.100.9', 'key', '99')
  ipn(a, 'link', 'add', 'hand2', 'type', 'ipip', 'local', A_ADDR, 'remote', '198.51.100.8')
  ipn(a, 'addr', 'add', '10.99.0.1/30', 'dev', 'hand1')
  st.gre1 = ifindex(a, 'gre1')
})

s('show lists owned tunnels; --all adds the hand-made ones as not owned', (st) => {
  const a = st.pair!.a
  const r = tunctlOk(['show', '--json', '--netns', a])
  const t = shownTunnels(json(r))
  assert.ok(t.gre1 && t.gre2, 'owned tunnels listed' + show(r))
  assert.not.ok(t.hand1 || t.hand2, 'show without --all hides tunnels tunctl does not own' + show(r))
  const all = tunctlOk(['show', '--all', '--json', '--netns', a])
  const ta = shownTunnels(json(all))
  assert.is(ta.hand1?.owned, false, 'hand1 listed, not owned' + show(all))
  assert.is(ta.hand2?.owned, false, 'hand2 listed, not owned' + show(all))
  assert.is(param(ta.hand1, 'mode'), 'gre', show(all))
  assert.is(param(ta.hand2, 'mode'), 'ipip', show(all))
})

s('without --prune an unlisted owned tunnel stays', (st) => {
  const a = st.pair!.a
  const p = tunctlOk(['plan', '--detailed-exitcode', '--netns', a, st.one!], {code: 0})
  assert.equal(planCounts(p.stdout), {create: 0, update: 0, replace: 0, delete: 0}, p.stdout)
  tunctlOk(['apply', '--netns', a, st.one!])
  assert.ok(ifindex(a, 'gre2'), 'gre2 still there')
})

s('plan --prune deletes the owned unlisted tunnel only', (st) => {
  const a = st.pair!.a
  const p = tunctlOk(['plan', '--prune', '--netns', a, st.one!])
  assertPlan(p.stdout, '-', 'gre2', {create: 0, update: 0, replace: 0, delete: 1})
  assert.not.match(p.stdout, /hand[12]/, 'hand-made tunnels are not part of the plan')
  tunctlOk(['apply', '--prune', '--netns', a, st.one!])
  assert.is(ifindex(a, 'gre2'), undefined, 'gre2 pruned')
  assert.is(ifindex(a, 'gre1'), st.gre1, 'gre1 untouched')
  assert.ok(ifindex(a, 'hand1') && ifindex(a, 'hand2'), 'hand-made tunnels survive --prune')
  assert.match(ipn(a, 'addr', 'show', 'dev', 'hand1'), /10\.99\.0\.1\/30/, "hand1's address survives")
})

s('--prune with an empty file removes every owned tunnel and nothing else', (st) => {
  const a = st.pair!.a
  tunctlOk(['apply', '--prune', '--netns', a, st.none!])
  assert.is(ifindex(a, 'gre1'), undefined, 'gre1 pruned')
  assert.ok(ifindex(a, 'hand1') && ifindex(a, 'hand2'), 'hand-made tunnels survive')
  tunctlOk(['plan', '--prune', '--detailed-exitcode', '--netns', a, st.none!], {code: 0})
})

s('del refuses a tunnel tunctl does not own unless --force', (st) => {
  const a = st.pair!.a
  const r = tunctl(['del', '--netns', a, 'hand1'])
  assert.is.not(r.code, 0, 'del of a foreign tunnel without --force must fail' + show(r))
  assert.ok(ifindex(a, 'hand1'), 'hand1 still there')
  tunctlOk(['del', '--force', '--netns', a, 'hand1'])
  assert.is(ifindex(a, 'hand1'), undefined, 'hand1 deleted with --force')
})

s('del of a missing tunnel fails, and succeeds with --ignore-missing', (st) => {
  const a = st.pair!.a
  const r = tunctl(['del', '--netns', a, 'nosuch1'])
  assert.is.not(r.code, 0, show(r))
  tunctlOk(['del', '--ignore-missing', '--netns', a, 'nosuch1'])
  assert.ok(ifindex(a, 'hand2'), 'unrelated foreign tunnel untouched')
})

s.run()
