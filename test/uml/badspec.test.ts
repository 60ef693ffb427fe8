// Invalid specs are rejected with exit 65 before anything runs: the namespace is unchanged, and the
// message points at file:line:col.
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {A_ADDR, makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml, ipn} from './lib/sh.js'
import {snapshot, snapshotDiff, type Snapshot} from './lib/snapshot.js'
import {examplePath} from './lib/spec.js'
import {json, show, specFile, tunctl, tunctlOk} from './lib/tunctl.js'

interface State {
  pair?: Pair
  before?: Snapshot
}

const s = suite<State>('kernel: invalid specs change nothing (exit 65)', {})
s.after((st) => removePair(st.pair))

const head = 'version: 1\ntunnels:\n'
/** [what, spec text, lines an error may point at (either key of a two-key rule)] */
const BAD: Array<[string, string, number[]]> = [
  ['unknown key', head + '  g1:\n    mode: gre\n    remote: 198.51.100.2\n    colour: red\n', [6]],
  ['key on ipip', head + '  i1:\n    mode: ipip\n    remote: 198.51.100.2\n    key: 5\n', [6]],
  ['fixed ttl with pmtudisc false', head + '  g1:\n    mode: gre\n    remote: 198.51.100.2\n    ttl: 64\n    pmtudisc: false\n', [6, 7]],
  ['ignore-df without pmtudisc false', head + '  g1:\n    mode: gre\n    remote: 198.51.100.2\n    ignore-df: true\n', [6]],
  ['name longer than 15 bytes', head + '  abcdefghijklmnop:\n    mode: gre\n    remote: 198.51.100.2\n', [3]],
  ['reserved fallback name', head + '  gre0:\n    mode: gre\n    remote: 198.51.100.2\n', [3]],
  ['isatap with a remote', head + '  is1:\n    mode: isatap\n    local: 198.51.100.1\n    remote: 198.51.100.2\n', [6]],
  ['two tunnels the kernel cannot tell apart', head +
    '  g1:\n    mode: gre\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    key: 5\n' +
    '  g2:\n    mode: gre\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    key: 5\n', [3, 8, 12]],
  ['bad CIDR', head + '  g1:\n    mode: gre\n    remote: 198.51.100.2\n    addresses: [10.0.0.300/30]\n', [6]],
  ['wrong version', 'version: 2\ntunnels: {}\n', [1]],
  ['not YAML', 'version: 1\ntunnels: [\n', [2, 3]],
]

s('set up: a namespace with an applied tunnel and a hand-made one', (st) => {
  assertInUml()
  st.pair = makePair('badspec')
  const a = st.pair.a
  tunctlOk(['apply', '--netns', a, examplePath('gre')])
  ipn(a, 'link', 'add', 'hand1', 'type', 'gre', 'local', A_ADDR, 'remote', '198.51.100.9', 'key', '99')
  st.before = snapshot(a)
})

for (const [what, text, lines] of BAD) {
  s(`apply rejects: ${what}`, (st) => {
    const a = st.pair!.a
    const f = specFile('bad', text)
    const r = tunctl(['apply', '--netns', a, f])
    assert.is(r.code, 65, `exit 65 expected` + show(r))
    const at = lines.some((l) => new RegExp(`${f.replace(/[.]/g, '\\.')}:${l}:\\d+`).test(r.stderr))
    assert.ok(at, `the error should point at ${f}:${lines.join('|')}:COL` + show(r))
    assert.is(snapshotDiff(st.before!, snapshot(a)), '', 'nothing changed')
  })
}

s('all errors are reported at once (validate --json: every diagnostic with line and column)', () => {
  const text = head + '  i1:\n    mode: ipip\n    remote: 198.51.100.2\n    key: 5\n  g1:\n    mode: gre\n    remote: 198.51.100.2\n    colour: red\n'
  const f = specFile('bad-many', text)
  const r = tunctl(['validate', '--json', f])
  assert.is(r.code, 65, show(r))
  const j = json(r)
  const diags: any[] = j.diagnostics ?? j.error?.diagnostics ?? []
  const lines = diags.map((d) => d.line).sort((x, y) => x - y)
  assert.equal(lines, [6, 10], 'one diagnostic per problem, at lines 6 and 10' + show(r))
  for (const d of diags) assert.ok(d.column >= 1, 'every diagnostic has a column' + show(r))
})

// hand1 exists (foreign: gre 198.51.100.1 → .9, key 99); gre1 exists (owned: → .2, key 42) and is not in these files
const CLASHES: Array<[string, string, string]> = [
  ['a hand-made tunnel', 'g9', '  g9:\n    mode: gre\n    local: 198.51.100.1\n    remote: 198.51.100.9\n    key: 99\n'],
  ['an owned tunnel the file does not list', 'g8', '  g8:\n    mode: gre\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    key: 42\n'],
]
for (const [what, name, body] of CLASHES) {
  s(`a tunnel with the same mode, endpoints and key as ${what} is rejected by plan and apply`, (st) => {
    const a = st.pair!.a
    const f = specFile('bad-clash', head + body)
    for (const cmd of ['plan', 'apply']) {
      const r = tunctl([cmd, '--netns', a, f])
      assert.is(r.code, 65, `${cmd}: a clash with an existing tunnel is an invalid spec` + show(r))
      assert.match(r.stderr, new RegExp(`${f.replace(/[.]/g, '\\.')}:3:\\d+`), `${cmd} points at ${name}'s entry` + show(r))
    }
    assert.is(snapshotDiff(st.before!, snapshot(a)), '', 'nothing changed')
  })
}

s('a missing file exits 66 and changes nothing', (st) => {
  const a = st.pair!.a
  const r = tunctl(['apply', '--netns', a, '/run/tunctl-tests/does-not-exist.yaml'])
  assert.is(r.code, 66, show(r))
  assert.is(snapshotDiff(st.before!, snapshot(a)), '', 'nothing changed')
})

s('an unknown flag exits 64', (st) => {
  const r = tunctl(['apply', '--no-such-flag', '--netns', st.pair!.a, examplePath('gre')])
  assert.is(r.code, 64, show(r))
})

s.run()
