// The per-mode kernel scenario: two namespaces, the example applied on both sides, traffic, show, no-op
// re-apply, an in-place update (same ifindex), a replace (new ifindex), delete by `state: absent` and by `del`.
import * as assert from 'uvu/assert'
import {suite} from '#test/uvu'
import {A_ADDR, B_ADDR, ifindex, linkExists, makePair, pingOk, removePair, type Pair} from './ns.js'
import {assertInUml} from './sh.js'
import {snapshot, snapshotDiff} from './snapshot.js'
import {example, exampleName, examplePath, mirror, patched, yaml, type Mode, type Spec} from './spec.js'
import {echoedIpLines, json, param, planCounts, show, shownTunnels, specFile, tunctl, tunctlOk} from './tunctl.js'
import {disablePolicy, installEsp} from './xfrm.js'

export interface ModeCase {
  mode: Mode
  /** inner addresses of the peer (B) to ping from A */
  pingB: string[]
  /** a change the kernel can make in place, and how `show --json` then reports it */
  inPlace: {patch: Record<string, any>; expect: Record<string, any>}
  /** a change that forces a replace, and how `show --json` then reports it */
  replace: {patch: Record<string, any>; expect: Record<string, any>}
  /** expected `show --json` params right after applying the example */
  shown: Record<string, any>
}

interface State {
  pair?: Pair
  name: string
  spec: Spec
  ifindex?: number
}

/** Asserts that a `plan` text lists `name` with symbol sym and the given counts. */
export function assertPlan(text: string, sym: string, name: string, counts: Partial<Record<'create' | 'update' | 'replace' | 'delete', number>>) {
  const esc = sym.replace(/[-/+~]/g, (c) => '\\' + c)
  assert.ok(new RegExp(`^${esc} ${name}\\b`, 'm').test(text), `plan should show "${sym} ${name}":\n${text}`)
  const c = planCounts(text)
  assert.ok(c, `plan should end with "Plan: N to create, …":\n${text}`)
  for (const [k, v] of Object.entries(counts)) assert.is((c as any)[k], v, `plan ${k} count:\n${text}`)
}

function assertShown(ns: string, name: string, expect: Record<string, any>) {
  const r = tunctlOk(['show', '--json', '--netns', ns])
  const t = shownTunnels(json(r))[name]
  assert.ok(t, `show --json should list ${name}` + show(r))
  assert.is(t.owned, true, `${name} should be owned by tunctl` + show(r))
  // a kernel scenario must run on the kernel driver: if the module were missing, auto would fall back to userspace
  assert.is(t.driver, 'kernel', `${name} should run on the kernel driver` + show(r))
  for (const [k, v] of Object.entries(expect)) {
    if (k === 'addresses') {
      const got: string[] = t.addresses ?? []
      for (const a of v as string[]) assert.ok(got.includes(a), `show --json ${name}.addresses should include ${a}` + show(r))
      continue
    }
    assert.equal(param(t, k), v, `show --json ${name}.${k}` + show(r))
  }
  return t
}

export function modeSuite(c: ModeCase) {
  const s = suite<State>(`kernel ${c.mode}`, {name: exampleName(c.mode), spec: example(c.mode)})

  s.after((st) => removePair(st.pair))

  s('namespaces joined by a veth', (st) => {
    assertInUml()
    st.pair = makePair(c.mode)
  })

  s(`apply examples/${c.mode}.yaml in A and its mirror in B`, (st) => {
    const {a, b} = st.pair!
    const ra = tunctlOk(['apply', '--netns', a, examplePath(c.mode)])
    assertPlan(ra.stdout, '+', st.name, {create: 1, update: 0, replace: 0, delete: 0})
    tunctlOk(['apply', '--netns', b, specFile(`${c.mode}-mirror`, yaml(mirror(st.spec)))])
    assert.ok(linkExists(a, st.name), `${st.name} exists in A`)
    assert.ok(linkExists(b, st.name), `${st.name} exists in B`)
    st.ifindex = ifindex(a, st.name)
  })

  s('show --json lists it, owned, with the spec parameters', (st) => {
    assertShown(st.pair!.a, st.name, c.shown)
  })

  s('traffic crosses the tunnel', (st) => {
    const {a, b} = st.pair!
    if (c.mode === 'vti' && !st.spec.tunnels[st.name]!.ipsec) {
      // without an ipsec block the SAs are someone else's (an IKE daemon's): installed by hand here
      const key = Number(st.spec.tunnels[st.name]!.key)
      installEsp(a, A_ADDR, B_ADDR, key)
      installEsp(b, B_ADDR, A_ADDR, key)
      disablePolicy(a, st.name)
      disablePolicy(b, st.name)
    }
    for (const addr of c.pingB) assert.ok(pingOk(a, addr), `ping from A to ${addr} through ${st.name}`)
  })

  s('a second apply changes nothing and runs no mutating command', (st) => {
    const {a} = st.pair!
    const before = snapshot(a)
    const r = tunctlOk(['apply', '--verbose', '--netns', a, examplePath(c.mode)])
    assert.equal(echoedIpLines(r.stderr), [], 'no "[#] ip" line expected' + show(r))
    assert.ok(/No changes/.test(r.stdout), 'should say "No changes"' + show(r))
    assert.is(snapshotDiff(before, snapshot(a)), '', 'namespace unchanged')
    tunctlOk(['plan', '--detailed-exitcode', '--netns', a, examplePath(c.mode)], {code: 0})
  })

  s('an in-place change: plan shows ~, apply keeps the ifindex', (st) => {
    const {a} = st.pair!
    const f = specFile(`${c.mode}-inplace`, yaml(patched(st.spec, st.name, c.inPlace.patch)))
    const p = tunctlOk(['plan', '--detailed-exitcode', '--netns', a, f], {code: 2})
    assertPlan(p.stdout, '~', st.name, {create: 0, update: 1, replace: 0, delete: 0})
    tunctlOk(['apply', '--netns', a, f])
    assert.is(ifindex(a, st.name), st.ifindex, 'ifindex unchanged by an in-place update')
    assertShown(a, st.name, c.inPlace.expect)
    tunctlOk(['plan', '--detailed-exitcode', '--netns', a, f], {code: 0})
  })

  s('a change that cannot be made in place: plan shows -/+, apply recreates', (st) => {
    const {a} = st.pair!
    const f = specFile(`${c.mode}-replace`, yaml(patched(st.spec, st.name, c.replace.patch)))
    const p = tunctlOk(['plan', '--detailed-exitcode', '--netns', a, f], {code: 2})
    assertPlan(p.stdout, '-/+', st.name, {create: 0, update: 0, replace: 1, delete: 0})
    tunctlOk(['apply', '--netns', a, f])
    const now = ifindex(a, st.name)
    assert.ok(now !== undefined, `${st.name} exists after the replace`)
    assert.is.not(now, st.ifindex, 'a replaced tunnel is a new link (new ifindex)')
    assertShown(a, st.name, c.replace.expect)
    tunctlOk(['plan', '--detailed-exitcode', '--netns', a, f], {code: 0})
  })

  s('state: absent deletes it', (st) => {
    const {a, b} = st.pair!
    const f = specFile(`${c.mode}-absent`, yaml(patched(st.spec, st.name, {state: 'absent'})))
    const p = tunctlOk(['plan', '--detailed-exitcode', '--netns', a, f], {code: 2})
    assertPlan(p.stdout, '-', st.name, {create: 0, update: 0, replace: 0, delete: 1})
    tunctlOk(['apply', '--netns', a, f])
    assert.not.ok(linkExists(a, st.name), `${st.name} gone from A`)
    assert.ok(linkExists(b, st.name), 'the peer namespace is untouched')
    tunctlOk(['plan', '--detailed-exitcode', '--netns', a, f], {code: 0})
  })

  s('tunctl del deletes it (with its addresses and routes)', (st) => {
    const {a} = st.pair!
    tunctlOk(['apply', '--netns', a, examplePath(c.mode)])
    assert.ok(linkExists(a, st.name))
    const before = snapshot(a)
    tunctlOk(['del', '--netns', a, st.name])
    assert.not.ok(linkExists(a, st.name), `${st.name} gone after del`)
    const after = snapshot(a)
    const left = JSON.stringify(after).includes(`"${st.name}"`)
    assert.not.ok(left, `nothing in A still refers to ${st.name}:\n${snapshotDiff(before, after)}`)
    const r = tunctl(['show', '--json', '--netns', a])
    assert.is(r.code, 0, show(r))
    assert.not.ok(shownTunnels(json(r))[st.name], 'show no longer lists it')
  })

  return s
}
