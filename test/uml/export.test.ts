// `tunctl export` → `tunctl apply` round trip in a real kernel: every mode at once, deleted, re-applied
// from the export (read from stdin), ends in the same state.
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {A_ADDR, makePair, removePair, linkExists, type Pair} from './lib/ns.js'
import {assertInUml, ipn} from './lib/sh.js'
import {snapshot, snapshotDiff, type Snapshot} from './lib/snapshot.js'
import {allExamples, yaml} from './lib/spec.js'
import {assertDrivers, json, show, shownTunnels, specFile, tunctl, tunctlOk} from './lib/tunctl.js'

interface State {
  pair?: Pair
  names: string[]
  before?: Snapshot
  shown?: Record<string, any>
  exported?: string
}

const s = suite<State>('kernel export round trip', {names: Object.keys(allExamples().tunnels)})
s.after((st) => removePair(st.pair))

/** show --json entries without what differs between two incarnations of the same tunnel. */
function comparable(t: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = {}
  for (const [name, x] of Object.entries(t)) {
    const {ifindex: _i, counters: _c, stats: _s, operstate: _o, ...rest} = x
    if (rest.ipsec) rest.ipsec = {...rest.ipsec, counters: undefined} // ESP counters restart with new SAs
    out[name] = rest
  }
  return out
}

s('set up: one tunnel of every mode, plus one made by hand', (st) => {
  assertInUml()
  st.pair = makePair('export')
  const a = st.pair.a
  tunctlOk(['apply', '--netns', a, specFile('export-all', yaml(allExamples()))])
  assertDrivers(a, 'kernel')
  ipn(a, 'link', 'add', 'hand1', 'type', 'gre', 'local', A_ADDR, 'remote', '198.51.100.9', 'key', '99')
  st.before = snapshot(a)
  st.shown = comparable(shownTunnels(json(tunctlOk(['show', '--json', '--netns', a]))))
  for (const n of st.names) assert.ok(st.shown[n], `show lists ${n}`)
})

s('export is a valid spec listing the owned tunnels only', (st) => {
  const a = st.pair!.a
  const r = tunctlOk(['export', '--netns', a])
  st.exported = r.stdout
  for (const n of st.names) assert.match(r.stdout, new RegExp(`^\\s+${n}:`, 'm'), `export lists ${n}` + show(r))
  assert.not.match(r.stdout, /hand1/, 'export without --all leaves out foreign tunnels')
  tunctlOk(['validate', '-'], {input: r.stdout})
  // applying the export to the state it came from changes nothing
  tunctlOk(['plan', '--detailed-exitcode', '--netns', a, '-'], {input: r.stdout, code: 0})
})

s('delete everything, apply the export from stdin: the same state', (st) => {
  const a = st.pair!.a
  tunctlOk(['del', '--netns', a, ...st.names])
  for (const n of st.names) assert.not.ok(linkExists(a, n), `${n} deleted`)
  tunctlOk(['apply', '--netns', a, '-'], {input: st.exported!})
  const diff = snapshotDiff(st.before!, snapshot(a))
  assert.is(diff, '', `state after re-applying the export differs:\n${diff}`)
  const now = comparable(shownTunnels(json(tunctlOk(['show', '--json', '--netns', a]))))
  assert.equal(now, st.shown, 'show --json reports the same tunnels')
  const again = tunctlOk(['apply', '--verbose', '--netns', a, '-'], {input: st.exported!})
  assert.not.match(again.stderr, /^\[#\] ip /m, 'a second apply of the export runs nothing' + show(again))
})

s('export --all includes the hand-made tunnel', (st) => {
  const r = tunctlOk(['export', '--all', '--netns', st.pair!.a])
  assert.match(r.stdout, /^\s+hand1:/m, show(r))
  tunctlOk(['validate', '-'], {input: r.stdout})
})

s.run()
