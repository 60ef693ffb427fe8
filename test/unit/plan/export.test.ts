// export round trip: every observed tunnel of the golden cases → YAML → parseSpec → plan against the same state = no changes.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join, dirname} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseSpec} from '../../../src/spec/load.js'
import {makePlan} from '../../../src/plan/index.js'
import {exportSpec, exportEntry} from '../../../src/plan/export.js'
import type {ModeSupport} from '../../../src/plan/diff.js'
import type {Mode, ObservedState, ObservedTunnel} from '../../../src/model/types.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/plans')
const support = Object.fromEntries(
  (['ipip', 'gre', 'sit', 'isatap', 'vti'] as Mode[]).map((m) => [m, {kernel: true, userspace: m !== 'vti' && m !== 'isatap', reason: 'test'}]),
) as Record<Mode, ModeSupport>

test('defaults are left out', () => {
  const e = exportEntry({
    name: 'g', ifindex: 1, driver: 'kernel', owned: true, operstate: 'UNKNOWN', addresses: ['10.0.0.1/30'], routes: [{to: '0.0.0.0/0', table: 254}],
    params: {mode: 'gre', local: '192.0.2.1', remote: 'any', ttl: 0, tos: 1, pmtudisc: true, ignoreDf: false, ikey: 5, okey: 5, icsum: false, ocsum: false, iseq: false, oseq: false, fwmark: 0, mtu: 1472, up: true},
  })
  assert.equal(e, {mode: 'gre', local: '192.0.2.1', key: 5, addresses: ['10.0.0.1/30'], routes: [{to: 'default'}]})
})

test('a default route is written "default" only where the spec reads "default" back as its family, else as the prefix', () => {
  let n = 0
  const gre = (name: string, addresses: string[], routes: ObservedTunnel['routes']): ObservedTunnel => ({
    name, ifindex: ++n, driver: 'kernel', owned: true, operstate: 'UNKNOWN', addresses, routes,
    params: {mode: 'gre', local: '192.0.2.1', remote: 'any', ttl: 0, tos: 1, pmtudisc: true, ignoreDf: false, icsum: false, ocsum: false, iseq: false, oseq: false, fwmark: 0, mtu: 1472, up: true, ikey: n, okey: n},
  })
  const both = () => [{to: '0.0.0.0/0', table: 100 + n}, {to: '::/0', table: 100 + n}]
  const tunnels = [
    gre('g4', ['10.0.0.1/30'], both()), // the addresses say IPv4: "default" is 0.0.0.0/0
    gre('gboth', ['10.0.1.1/30', '2001:db8:1::1/64'], both()), // they do not tell
    gre('gnone', [], both()),
    gre('gvia', ['10.0.2.1/30', '2001:db8:2::1/64'], [{to: '::/0', table: 200, via: '2001:db8:2::2'}]), // via tells
    {...gre('s1', [], [{to: '::/0', table: 254}]), params: {mode: 'sit', local: '192.0.2.1', remote: 'any', ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, proto: 'ip6ip', mtu: 1480, up: true}}, // the mode tells
  ]
  const tos = (name: string) => (exportEntry(tunnels.find((t) => t.name === name)!).routes as Array<{to: string}>).map((r) => r.to)
  assert.equal(tos('g4'), ['default', '::/0'])
  assert.equal(tos('gboth'), ['0.0.0.0/0', '::/0'])
  assert.equal(tos('gnone'), ['0.0.0.0/0', '::/0'])
  assert.equal(tos('gvia'), ['default'])
  assert.equal(tos('s1'), ['default'])
  // and the spec reads every one back as the same route
  const desired = parseSpec('export.yaml', exportSpec(tunnels), {rtTables: new Map()})
  assert.equal(desired.tunnels.map((t) => [t.name, t.routes]), tunnels.map((t) => [t.name, t.routes]))
})

for (const c of readdirSync(root).filter((d) => existsSync(join(root, d, 'observed.json'))).sort()) {
  test(`export round trip: ${c}`, () => {
    const observed: ObservedState = JSON.parse(readFileSync(join(root, c, 'observed.json'), 'utf8'))
    const yaml = exportSpec(observed.tunnels)
    const desired = parseSpec('export.yaml', yaml, {rtTables: new Map()})
    // foreign tunnels are exported too here; plan them as if owned
    const owned = {...observed, tunnels: observed.tunnels.map((t) => ({...t, owned: true, alive: true}))}
    const plan = makePlan(desired, owned, {prune: true, support})
    assert.equal(plan.steps.map((s) => `${s.kind} ${s.name} ${JSON.stringify(s.changes)}`), [], yaml)
  })
}

test.run()
