// spec/semantic, spec/suggest, spec/schema helpers, and the schema ↔ drivers key agreement.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {mkdtempSync, mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {defaultRtTables, interfaceNameProblem, parseRtTables} from '../../../src/spec/semantic.js'
import {innerFamilies, networkOf, parseAddress, parseCidr} from '../../../src/net/addr.js'
import {parseKey} from '../../../src/net/key.js'
import {compareRoutes} from '../../../src/net/route.js'
import {closest, editDistance} from '../../../src/spec/suggest.js'
import {describePointer, joinPointer, splitPointer} from '../../../src/spec/pointer.js'
import {loadSchema, schemaAt} from '../../../src/spec/schema.js'
import {ALL_KEYS, COMMON_KEYS, DRIVERS} from '../../../src/drivers/index.js'
import {MODES} from '../../../src/model/types.js'

test('interface names', () => {
  assert.is(interfaceNameProblem('gre1', 'tunnel name'), undefined)
  assert.is(interfaceNameProblem('a'.repeat(15), 'x'), undefined)
  assert.match(interfaceNameProblem('a'.repeat(16), 'x')!, 'is 16 bytes long')
  assert.match(interfaceNameProblem('ü'.repeat(8), 'x')!, 'is 16 bytes long')
  for (const bad of ['a b', 'a/b', 'a:1', 'a\tb']) assert.match(interfaceNameProblem(bad, 'x')!, "must not contain '/', ':' or whitespace")
  assert.match(interfaceNameProblem('', 'x')!, 'must not be empty')
  assert.match(interfaceNameProblem('..', 'x')!, 'not a valid interface name')
})

test('parseCidr: strict IPv4, canonical IPv6, prefix bounds, bare addresses only when allowed', () => {
  assert.is(parseCidr('10.0.0.1/30')!.text, '10.0.0.1/30')
  assert.is(parseCidr('2001:DB8:0:0:0::1/64')!.text, '2001:db8::1/64')
  assert.is(parseCidr('2001:db8:0:1:0:0:0:1/64')!.text, '2001:db8:0:1::1/64')
  assert.is(parseCidr('10.0.0.1')!.text, '10.0.0.1/32')
  assert.is(parseCidr('10.0.0.1', false), undefined)
  for (const bad of ['10.0.0.1/33', '2001:db8::1/129', '010.0.0.1/8', '10.0.1/24', '1.2.3.4/-1', '1.2.3.4/ 8', 'fe80::1%eth0/64', 'x', '', '::/0x10']) {
    assert.is(parseCidr(bad), undefined, bad)
  }
  assert.equal(parseAddress('::ffff:192.0.2.1')?.family, 6)
  assert.is(parseAddress('192.0.2'), undefined)
})

test('networkOf clears host bits', () => {
  assert.is(networkOf(parseCidr('10.1.2.3/16')!), '10.1.0.0/16')
  assert.is(networkOf(parseCidr('10.1.2.3/32')!), '10.1.2.3/32')
  assert.is(networkOf(parseCidr('2001:db8:1:2::5/48')!), '2001:db8:1::/48')
  assert.is(networkOf(parseCidr('10.255.255.255/0')!), '0.0.0.0/0')
})

test('innerFamilies follows the kernel per mode and inner protocol', () => {
  assert.equal(innerFamilies('ipip', undefined).families, [4])
  assert.equal(innerFamilies('ipip', 'any').families, [4])
  assert.equal(innerFamilies('gre', undefined).families, [4, 6])
  assert.equal(innerFamilies('vti', undefined).families, [4, 6])
  assert.equal(innerFamilies('isatap', undefined).families, [6])
  assert.equal(innerFamilies('sit', undefined).families, [6])
  assert.equal(innerFamilies('sit', 'ip6ip').families, [6])
  assert.equal(innerFamilies('sit', 'ipip').families, [4])
  assert.equal(innerFamilies('sit', 'any').families, [4, 6])
})

test('rt_tables: parsing, .d directory, built-ins always win', () => {
  const m = parseRtTables('# comment\n255\tlocal\n100 vpn # trailing\n0x65 hex\nbogus line\n')
  assert.equal([...m], [['local', 255], ['vpn', 100], ['hex', 101]])
  const dir = mkdtempSync(join(tmpdir(), 'tunctl-rt-'))
  try {
    const f = join(dir, 'rt_tables')
    writeFileSync(f, '200 main\n100 vpn\n')
    mkdirSync(f + '.d')
    writeFileSync(join(f + '.d', 'x.conf'), '300 extra\n')
    writeFileSync(join(f + '.d', 'ignored.txt'), '400 nope\n')
    const t = defaultRtTables([f, join(dir, 'missing')])
    assert.is(t.get('vpn'), 100)
    assert.is(t.get('extra'), 300)
    assert.is(t.get('nope'), undefined)
    assert.is(t.get('main'), 254)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('parseKey (the identity check reads keys like the drivers): numbers, decimal strings, dotted quads (big-endian like iproute2)', () => {
  assert.is(parseKey(42), 42)
  assert.is(parseKey('42'), 42)
  assert.is(parseKey('0.0.0.42'), 42)
  assert.is(parseKey('1.0.0.0'), 16777216)
  assert.is(parseKey('255.255.255.255'), 4294967295)
  assert.is(parseKey(undefined), undefined)
})

test('compareRoutes: table, destination, metric, via', () => {
  const rs = [
    {to: '10.0.0.0/8', table: 254, metric: 5},
    {to: '10.0.0.0/8', table: 100},
    {to: '10.0.0.0/8', table: 254},
    {to: '0.0.0.0/0', table: 254},
  ]
  assert.equal([...rs].sort(compareRoutes), [rs[1], rs[3], rs[2], rs[0]])
})

test('suggestions: typos, transpositions, underscores; nothing for unrelated words', () => {
  assert.is(editDistance('kye', 'key'), 1)
  assert.is(closest('kye', ['key', 'mode']), 'key')
  assert.is(closest('ignore_df', ['ignore-df', 'ttl']), 'ignore-df')
  assert.is(closest('remtoe', ['remote', 'local']), 'remote')
  assert.is(closest('colour', ['key', 'mode', 'mtu']), undefined)
  assert.is(closest('x', []), undefined)
})

test('pointers: escaping and labels', () => {
  assert.is(joinPointer('tunnels', 'a/b~c', 0), '/tunnels/a~1b~0c/0')
  assert.equal(splitPointer('/tunnels/a~1b~0c/0'), ['tunnels', 'a/b~c', '0'])
  assert.equal(describePointer('/tunnels/g/routes/0/via'), {tunnel: 'g', label: 'routes[0].via'})
  assert.equal(describePointer('/version'), {tunnel: undefined, label: 'version'})
})

test('the schema knows exactly the keys the drivers accept', () => {
  const {schema} = loadSchema()
  const tunnel = schemaAt(schema, ['tunnels', 'x'])
  const schemaKeys = Object.keys(tunnel.properties).sort()
  assert.equal(schemaKeys, [...ALL_KEYS].sort())
  for (const k of COMMON_KEYS) assert.ok(schemaKeys.includes(k), k)
  assert.equal(tunnel.properties.mode.enum, [...MODES])
  for (const m of MODES) for (const k of DRIVERS[m].keys) assert.ok(schemaKeys.includes(k), `${m}: ${k}`)
})

test('every schema node a value error can land on has an x-expect message', () => {
  const {schema} = loadSchema()
  const missing: string[] = []
  const walk = (node: any, path: string[]) => {
    const n = schemaAt(schema, path)
    if (!n) return
    if (!n['x-expect']) missing.push('/' + path.join('/'))
    for (const k of Object.keys(n.properties ?? {})) walk(n.properties[k], [...path, k])
    if (n.items) walk(n.items, [...path, '0'])
  }
  walk(schema, [])
  walk(schema, ['tunnels', 'x'])
  assert.equal(missing, [])
})

test.run()
