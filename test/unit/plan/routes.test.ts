// Routes never replace another device's route: plan refuses a route whose (table, prefix, metric) a surviving
// route holds, at the route's place in the file; routes freed by the same plan are not conflicts.
import {test} from '#test/uvu'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readRtTables, tableNumber} from '../../../src/lib/rttables.js'
import * as assert from 'uvu/assert'
import {computePlan, ConflictError} from '../../../src/plan/diff.js'
import {parseSpec} from '../../../src/spec/load.js'
import {buildObserved, routeKeysOf} from '../../../src/observe/parse.js'
import type {ObservedState, RouteHolder} from '../../../src/model/types.js'
import {ALL_KERNEL, FAKE_DRIVERS, desired, observed, state} from '../../lib/fakes.mjs'

const plan = (d: any, o: ObservedState, extra = {}) => computePlan(d, o, {prune: false, support: ALL_KERNEL, ...extra}, FAKE_DRIVERS)
const withKeys = (o: ObservedState, keys: RouteHolder[]): ObservedState => ({...o, routeKeys: keys})
const SPEC = `version: 1
tunnels:
  gre1:
    mode: gre
    local: 192.0.2.1
    remote: 198.51.100.7
    addresses: [10.0.0.1/30]
    routes:
      - to: 10.9.0.0/16
      - to: default
        via: 10.0.0.2
`

function conflict(fn: () => unknown): ConflictError {
  try {
    fn()
  } catch (e) {
    if (e instanceof ConflictError) return e
    throw e
  }
  throw new Error('no ConflictError')
}

test('a default route on another device: refused at the route in the file (65), with a caret', () => {
  const d = parseSpec('t.yaml', SPEC, {rtTables: new Map()})
  const o = withKeys(state([]), [{table: 254, to: '0.0.0.0/0', metric: 0, dev: 'eth0'}])
  const e = conflict(() => plan(d, o))
  assert.is(e.exitCode, 65)
  assert.is(e.conflicts.length, 1)
  assert.match(e.message, /^t\.yaml:10:9: tunnel "gre1": route to 0\.0\.0\.0\/0 \(table main, metric 0\) is already held by a route on "eth0"/)
  assert.match(e.message, /\n {8}- to: default\n {10}\^/)
  assert.is(e.conflicts[0]!.pointer, '/tunnels/gre1/routes/1')
})

test('another metric or table is not a conflict; neither is no route dump', () => {
  const d = parseSpec('t.yaml', SPEC.replace('via: 10.0.0.2', 'via: 10.0.0.2\n        metric: 50'), {rtTables: new Map()})
  const o = withKeys(state([]), [
    {table: 254, to: '0.0.0.0/0', metric: 0, dev: 'eth0'},
    {table: 100, to: '10.9.0.0/16', metric: 0, dev: 'eth0'},
  ])
  assert.is(plan(d, o).steps.length, 1)
  assert.is(plan(parseSpec('t.yaml', SPEC, {rtTables: new Map()}), state([])).steps.length, 1)
})

test('routes without a device (blackhole) and IPv6 default metric 1024 are holders too', () => {
  const t = desired('g', 'gre', {addresses: ['2001:db8::1/64'], routes: [{to: '::/0', table: 254}, {to: '10.5.0.0/16', table: 254}]})
  const o = withKeys(state([]), [
    {table: 254, to: '::/0', metric: 1024, dev: 'eth0'},
    {table: 254, to: '10.5.0.0/16', metric: 0, type: 'blackhole'},
  ])
  const e = conflict(() => plan({file: 'x', tunnels: [t]}, o))
  assert.is(e.conflicts.length, 2)
  assert.match(e.message, /::\/0 \(table main, metric 1024\) is already held by a route on "eth0"/)
  assert.match(e.message, /10\.5\.0\.0\/16 \(table main, metric 0\) is already held by a blackhole route/)
})

test('routes freed by the same plan: a deleted tunnel, or an update that removes it (its route del runs first)', () => {
  const a = observed('a', 'gre', {owned: true, routes: [{to: '10.7.0.0/16', table: 254, metric: 0}]})
  const keys = [{table: 254, to: '10.7.0.0/16', metric: 0, dev: 'a'}]
  const b = desired('b', 'gre', {p: {local: '192.0.2.9'}, routes: [{to: '10.7.0.0/16', table: 254}]})
  // a is pruned
  assert.is(plan({file: 'x', tunnels: [b]}, withKeys(state([a]), keys), {prune: true}).steps.length, 2)
  // a stays but no longer lists the route
  const a2 = desired('a', 'gre', {routes: []})
  const p = plan({file: 'x', tunnels: [b, a2]}, withKeys(state([a]), keys))
  assert.equal(p.steps.map((s) => `${s.kind} ${s.name}`), ['update a', 'create b'])
  // a keeps it: a conflict (validate catches two tunnels of one file; this is a tunnel outside the file)
  const e = conflict(() => plan({file: 'x', tunnels: [b]}, withKeys(state([a]), keys)))
  assert.match(e.message, /held by a route on "a"/)
})

test('observe: every route of the dump is a holder, names printed raw never reach a message', () => {
  const keys = routeKeysOf([
    {dst: 'default', gateway: '192.0.2.1', dev: 'eth0', protocol: 'static', flags: []},
    {type: 'blackhole', dst: '10.5.0.0/16', flags: []},
    {dst: '2001:db8::/64', dev: 'x\u001b[2J', metric: 256, protocol: 'kernel', pref: 'medium', flags: []},
    {dst: 'fe80::/64', table: 'vpn', dev: 'y', metric: 256, flags: []},
    {dst: '0x10', dev: 'z'},
  ], new Map([['vpn', 100]]))
  assert.equal(keys, [
    {table: 254, to: '0.0.0.0/0', metric: 0, dev: 'eth0'},
    {table: 254, to: '10.5.0.0/16', metric: 0, type: 'blackhole'},
    {table: 254, to: '2001:db8::/64', metric: 256, dev: 'x\u001b[2J'},
    {table: 100, to: 'fe80::/64', metric: 256, dev: 'y'},
  ])
  const st = buildObserved({links: [], addrs: [], routes: [{dst: 'default', dev: 'eth0'}]})
  assert.equal(st.routeKeys, [{table: 254, to: '0.0.0.0/0', metric: 0, dev: 'eth0'}])
  assert.is(buildObserved({links: [], addrs: [], routes: [], routesObserved: false}).routeKeys, undefined)
  const t = desired('g', 'gre', {routes: [{to: '2001:db8::/64', table: 254, metric: 256}]})
  const e = conflict(() => plan({file: 'x', tunnels: [t]}, withKeys(state([]), keys)))
  assert.not.ok(/\x1b/.test(e.message))
  assert.match(e.message, /"x\\e\[2J"/)
})

test('one table-name reading for spec and observe: rt_tables.d, hex ids, first definition wins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tunctl-rt-'))
  try {
    const etc = join(dir, 'etc', 'rt_tables')
    const usr = join(dir, 'usr', 'rt_tables')
    mkdirSync(etc + '.d', {recursive: true})
    mkdirSync(join(dir, 'usr'))
    writeFileSync(etc, '100 vpn\n')
    writeFileSync(join(etc + '.d', 'a.conf'), '0x20 hexed # comment\n')
    writeFileSync(usr, '7 vpn\n8 other\n')
    const names = readRtTables([etc, usr])
    assert.is(names.get('vpn'), 100)
    assert.is(names.get('hexed'), 32)
    assert.is(names.get('other'), 8)
    // observe reads what ip prints with the same names
    assert.is(tableNumber('hexed', names), 32)
    assert.is(tableNumber('0x20', names), 32)
    assert.is(tableNumber('unknown', names), -1)
    // the spec resolves the same names
    const d = parseSpec('t.yaml', SPEC.replace('- to: 10.9.0.0/16', '- {to: 10.9.0.0/16, table: hexed}'), {rtTables: names})
    assert.equal(d.tunnels[0]!.routes.map((r) => r.table), [32, 254])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test.run()
