// spec/load + spec/parse: positions, every error kind, all errors at once, stdin, missing file, normalisation per mode.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parseSpec, readInput, loadSpec, STDIN_NAME} from '../../../src/spec/load.js'
import {parseSpecWith} from '../../../src/spec/parse.js'
import {EXIT, InputError, SpecError, type Diagnostic} from '../../../src/lib/errors.js'
import type {DesiredTunnel} from '../../../src/model/types.js'
import {fakeDrivers} from '../../lib/fakes.mjs'
import {DRIVERS} from '../../../src/drivers/index.js'

const NO_TABLES = new Map<string, number>()

/** The diagnostics parseSpec throws for `text` (fails the test if it does not throw a SpecError). */
function diags(text: string, opts: {fake?: boolean; rtTables?: Map<string, number>} = {}): Diagnostic[] {
  try {
    if (opts.fake) parseSpecWith('t.yaml', text, {drivers: fakeDrivers(), rtTables: opts.rtTables ?? NO_TABLES})
    else parseSpec('t.yaml', text, {rtTables: opts.rtTables ?? NO_TABLES})
  } catch (e) {
    if (e instanceof SpecError) return e.diagnostics
    throw e
  }
  assert.unreachable(`expected a SpecError for:\n${text}`)
  return []
}

/** [line, column, message] triples, in the order reported */
const where = (ds: Diagnostic[]) => ds.map((d) => [d.line, d.column, d.message])

function one(text: string, fake = false): Diagnostic {
  const ds = diags(text, {fake})
  assert.is(ds.length, 1, `expected exactly one diagnostic, got:\n${ds.map((d) => d.message).join('\n')}`)
  return ds[0]
}

const tunnels = (body: string) => `version: 1\ntunnels:\n${body}`

// ---------- positions ----------

test('value error points at the value: line and column exact, excerpt with caret', () => {
  const d = one(tunnels('  gre1:\n    mode: gre\n    local: 192.0.2.1\n    ttl: 300\n'))
  assert.equal([d.file, d.line, d.column, d.pointer], ['t.yaml', 6, 10, '/tunnels/gre1/ttl'])
  assert.is(d.message, 'tunnel "gre1": ttl must be 1..255 or "inherit"')
  assert.is(d.excerpt, '      ttl: 300\n           ^')
})

test('unknown key points at the key, with a did-you-mean', () => {
  const d = one(tunnels('  gre1:\n    mode: gre\n    local: 192.0.2.1\n    kye: 42\n'))
  assert.equal([d.line, d.column, d.pointer], [6, 5, '/tunnels/gre1/kye'])
  assert.is(d.message, 'tunnel "gre1": unknown key "kye" (did you mean "key"?)')
})

test('underscores for dashes are suggested too; far-off keys get no suggestion', () => {
  const ds = diags(tunnels('  gre1:\n    mode: gre\n    local: 192.0.2.1\n    ignore_df: true\n    colour: blue\n'))
  assert.equal(where(ds), [
    [6, 5, 'tunnel "gre1": unknown key "ignore_df" (did you mean "ignore-df"?)'],
    [7, 5, 'tunnel "gre1": unknown key "colour"'],
  ])
})

test('missing required key points at the entry key', () => {
  const d = one(tunnels('  gre1:\n    local: 192.0.2.1\n'))
  assert.equal([d.line, d.column, d.pointer, d.message], [3, 3, '/tunnels/gre1', 'tunnel "gre1": missing required key "mode"'])
})

test('flow style: positions inside [..] and {..}', () => {
  const ds = diags(tunnels('  t1: {mode: gre, local: 192.0.2.1, seq: {input: yes}, addresses: [10.0.0.1/30, 10.0.0.256/24]}\n'))
  assert.equal(where(ds), [
    [3, 50, 'tunnel "t1": seq.input must be true or false'],
    [3, 81, 'tunnel "t1": address "10.0.0.256/24" is not a valid IPv4 or IPv6 address with prefix length (CIDR)'],
  ])
  assert.is(ds[1].excerpt, '    t1: {mode: gre, local: 192.0.2.1, seq: {input: yes}, addresses: [10.0.0.1/30, 10.0.0.256/24]}\n' + ' '.repeat(2 + 80) + '^')
})

test('tabs before the column are kept in the caret line', () => {
  const d = one('version: 1\ntunnels:\n  g: {mode: gre,\t\tlocal: 192.0.2.1, mtu: 20}\n')
  assert.equal([d.line, d.column], [3, 42])
  assert.is(d.excerpt, '    g: {mode: gre,\t\tlocal: 192.0.2.1, mtu: 20}\n  ' + ' '.repeat(16) + '\t\t' + ' '.repeat(23) + '^')
})

test('CRLF line endings: positions and excerpts without \\r', () => {
  const d = one('version: 1\r\ntunnels:\r\n  gre1:\r\n    mode: gre\r\n    local: 192.0.2.1\r\n    mtu: 10\r\n')
  assert.equal([d.line, d.column], [6, 10])
  assert.is(d.excerpt, '      mtu: 10\n           ^')
})

test('anchors and aliases: a bad value used through an alias is reported where each tunnel uses it', () => {
  const ds = diags(tunnels('  a:\n    mode: gre\n    local: 192.0.2.1\n    mtu: &m 20\n  b:\n    mode: gre\n    local: 192.0.2.2\n    mtu: *m\n'))
  assert.equal(where(ds), [
    [6, 13, 'tunnel "a": mtu must be an integer 68..65535'],
    [10, 10, 'tunnel "b": mtu must be an integer 68..65535'],
  ])
})

test('positions of tunnels, key files and routes: worked out when read, and read, copy and serialise as if assigned', () => {
  // file order with an integer-like name (an object lists those first); a route through an alias (of a tunnel to
  // delete: two present tunnels cannot have the same route)
  const text = tunnels(
    '  zeta:\n    mode: gre\n    local: 192.0.2.1\n    remote: 198.51.100.2\n    routes: &r [{to: 10.1.0.0/16}]\n' +
      '  "10":\n    mode: vti\n    local: 192.0.2.1\n    remote: 198.51.100.3\n    key: 5\n    ipsec:\n      spi-out: 0x1001\n      spi-in: 0x1002\n' +
      '      aead: aes-gcm-128\n      key-file:   \tk.keys\n    routes:\n      - {to: 10.3.0.0/16, metric: 5}\n      - to: 10.2.0.0/16\n' +
      '  alias:\n    mode: ipip\n    state: absent\n    local: 192.0.2.2\n    remote: 198.51.100.4\n    routes: *r\n',
  )
  const s = parseSpec('t.yaml', text, {rtTables: NO_TABLES})
  assert.equal(s.tunnels.map((t) => t.name), ['zeta', '10', 'alias'])
  const [zeta, ten, alias] = s.tunnels as [DesiredTunnel, DesiredTunnel, DesiredTunnel]
  // own enumerable properties in the order they always had (after the normalised fields)
  assert.equal(Object.keys(ten).slice(-3), ['at', 'keyFileAt', 'routeAt'])
  assert.equal(Object.keys(zeta).slice(-2), ['at', 'routeAt'])
  assert.not.ok('keyFileAt' in zeta)
  const expected = {
    zeta: {at: {line: 3, column: 3, excerpt: '    zeta:\n    ^'}, routeAt: [{line: 7, column: 17, excerpt: '      routes: &r [{to: 10.1.0.0/16}]\n' + ' '.repeat(18) + '^'}]},
    ten: {
      at: {line: 8, column: 3, excerpt: '    "10":\n    ^'},
      keyFileAt: {line: 17, column: 20, excerpt: '        key-file:   \tk.keys\n                    \t^'},
      routeAt: [
        {line: 20, column: 9, excerpt: '        - to: 10.2.0.0/16\n          ^'},
        {line: 19, column: 9, excerpt: '        - {to: 10.3.0.0/16, metric: 5}\n          ^'},
      ],
    },
    // what lies behind an alias is reported where the alias is used
    alias: {at: {line: 21, column: 3, excerpt: '    alias:\n    ^'}, routeAt: [{line: 26, column: 13, excerpt: '      routes: *r\n' + ' '.repeat(14) + '^'}]},
  }
  // serialised (JSON, structuredClone) and spread before any was read: the same values
  assert.equal(JSON.parse(JSON.stringify(ten)).keyFileAt, expected.ten.keyFileAt)
  assert.equal(structuredClone(zeta).routeAt, expected.zeta.routeAt)
  assert.equal({...alias}.at, expected.alias.at)
  assert.equal({at: zeta.at, routeAt: zeta.routeAt}, expected.zeta)
  assert.equal({at: ten.at, keyFileAt: ten.keyFileAt, routeAt: ten.routeAt}, expected.ten)
  assert.equal({at: alias.at, routeAt: alias.routeAt}, expected.alias)
  // read once: the same object each time, a plain data property afterwards
  assert.is(ten.at, ten.at)
  assert.ok(Object.getOwnPropertyDescriptor(ten, 'at')!.writable)
  // assignable like any property, also before it was read
  const other = {line: 1, column: 1, excerpt: 'x'}
  zeta.keyFileAt = other
  alias.at = other
  assert.is(alias.at, other)
  assert.is(zeta.keyFileAt, other)
})

// ---------- every error kind ----------

test('top level: version, missing tunnels, unknown top-level key', () => {
  assert.equal(where(diags('version: 2\ntunnel:\n  a: {mode: gre}\n')), [
    [1, 1, 'missing required key "tunnels" at the top level'],
    [1, 10, 'version must be 1 (the only file format version)'],
    [2, 1, 'unknown key "tunnel" at the top level (did you mean "tunnels"?)'],
  ])
})

test('empty file and non-mapping document', () => {
  assert.equal(where(diags('')), [[1, 1, 'the file is empty; it must be a mapping with "version: 1" and "tunnels:"']])
  assert.equal(where(diags('- a\n- b\n')), [[1, 1, 'the file must be a mapping with "version: 1" and "tunnels:"']])
})

test('tunnels: null and a tunnel without settings', () => {
  assert.equal(where(diags('version: 1\ntunnels:\n')), [[2, 1, 'tunnels must be a mapping of tunnel name to settings (use "tunnels: {}" for none)']])
  assert.equal(where(diags(tunnels('  gre1:\n'))), [[3, 3, 'tunnel "gre1" must be a mapping of settings with at least "mode"']])
})

test('enum with did-you-mean, wrong types', () => {
  assert.equal(
    where(diags(tunnels('  g:\n    mode: gree\n    up: yes\n    state: gone\n    driver: kernal\n    key: 1.2.3\n    fwmark: -1\n'))),
    [
      [4, 11, 'tunnel "g": mode must be one of ipip, gre, sit, isatap, vti (did you mean "gre"?)'],
      [5, 9, 'tunnel "g": up must be true or false'],
      [6, 12, 'tunnel "g": state must be present or absent'],
      [7, 13, 'tunnel "g": driver must be one of auto, kernel, userspace (did you mean "kernel"?)'],
      [8, 10, 'tunnel "g": key must be a number 0..4294967295 or a dotted quad like 0.0.0.42'],
      [9, 13, 'tunnel "g": fwmark must be an integer 0..4294967295'],
    ],
  )
})

test('nested objects: routers and routes', () => {
  const ds = diags(tunnels('  i:\n    mode: isatap\n    local: 192.0.2.1\n    routers: [192.0.2.300, {address: 192.0.2.1, prio: 1}, {default: true}]\n    routes:\n      - via: 10.0.0.1\n      - {to: 10.0.0.0/8, metric: x}\n'))
  assert.equal(where(ds), [
    [6, 15, 'tunnel "i": routers[0] must be an IPv4 address or {address: IPV4, default: BOOL}'],
    [6, 49, 'tunnel "i": unknown key "prio" in routers[1]'],
    [6, 59, 'tunnel "i": missing required key "address" in routers[2]'],
    [8, 9, 'tunnel "i": missing required key "to" in routes[0]'],
    [9, 14, 'tunnel "i": IPv4 route to 10.0.0.0/8 cannot be used: an isatap tunnel carries IPv6 only'],
    [9, 34, 'tunnel "i": routes[1].metric must be an integer 0..4294967295'],
  ])
})

test('interface names: too long (bytes, not chars), forbidden characters, reserved, dev', () => {
  const ds = diags(tunnels('  abcdefghijklmnop:\n    mode: gre\n    local: 192.0.2.1\n  "a/b":\n    mode: gre\n    local: 192.0.2.2\n  sit0:\n    mode: sit\n    local: 192.0.2.3\n  tünnelxxxxxxx:\n    mode: gre\n    local: 192.0.2.4\n    dev: "eth 0"\n'))
  assert.equal(where(ds), [
    [3, 3, 'tunnel name "abcdefghijklmnop" is 16 bytes long; interface names are at most 15 bytes'],
    [6, 3, 'tunnel name "a/b" must not contain \'/\', \':\' or whitespace'],
    [9, 3, 'tunnel name "sit0" is reserved: the kernel\'s sit module creates it as its fallback device'],
    [15, 10, 'tunnel "tünnelxxxxxxx": dev "eth 0" must not contain \'/\', \':\' or whitespace'],
  ])
})

test('a 14-character name of 15 bytes is fine, 15 characters of 16 bytes is not', () => {
  parseSpec('t.yaml', tunnels('  tünnelxxxxxxxx:\n    mode: gre\n    local: 192.0.2.1\n'), {rtTables: NO_TABLES})
  const d = one(tunnels('  tünnelxxxxxxxxx:\n    mode: gre\n    local: 192.0.2.1\n'))
  assert.is(d.message, 'tunnel name "tünnelxxxxxxxxx" is 16 bytes long; interface names are at most 15 bytes')
})

test('addresses and route destinations need a prefix length', () => {
  const ds = diags(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    addresses: [10.0.0.1]\n    routes: [{to: "2001:db8::5"}]\n'))
  assert.equal(where(ds), [
    [6, 17, 'tunnel "g": address "10.0.0.1" needs a prefix length (e.g. 10.0.0.1/32)'],
    [7, 19, 'tunnel "g": route destination "2001:db8::5" needs a prefix length (e.g. 2001:db8::5/128)'],
  ])
})

test('addresses: bad CIDR, wrong family for the mode, listed twice, shared between tunnels', () => {
  const ds = diags(tunnels('  s:\n    mode: sit\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    addresses: [10.0.0.1/24, 2001:db8::1/129, 2001:db8::1/64, 2001:DB8::1/64]\n  g:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.3\n    addresses: [2001:db8:0::1/120]\n'))
  assert.equal(where(ds), [
    [7, 17, 'tunnel "s": IPv4 address 10.0.0.1/24 cannot be used: a sit tunnel carries IPv6 only unless "encapsulated: ipip" or "encapsulated: any"'],
    [7, 30, 'tunnel "s": address "2001:db8::1/129" is not a valid IPv4 or IPv6 address with prefix length (CIDR)'],
    [7, 63, 'tunnel "s": address 2001:db8::1 is listed twice'],
    [12, 17, 'tunnel "g": address 2001:db8::1 is also assigned to tunnel "s"'],
  ])
})

test('address families per mode: ipip IPv4 only, isatap IPv6 only, sit ipip/any may carry IPv4', () => {
  assert.match(one(tunnels('  t:\n    mode: ipip\n    local: 192.0.2.1\n    addresses: [2001:db8::1/64]\n')).message, 'IPv6 address 2001:db8::1/64 cannot be used: an ipip tunnel carries IPv4')
  assert.match(one(tunnels('  t:\n    mode: isatap\n    local: 192.0.2.1\n    addresses: [10.0.0.1/24]\n')).message, 'an isatap tunnel carries IPv6 only')
  for (const enc of ['ipip', 'any']) {
    parseSpec('t.yaml', tunnels(`  t:\n    mode: sit\n    local: 192.0.2.1\n    encapsulated: ${enc}\n    addresses: [10.0.0.1/24]\n`), {rtTables: NO_TABLES})
  }
  assert.match(one(tunnels('  t:\n    mode: sit\n    local: 192.0.2.1\n    encapsulated: ipip\n    addresses: [2001:db8::1/64]\n')).message, 'carries IPv4 only')
})

test('routes: bad destination, host bits, via family, unknown table, route twice, route in two tunnels', () => {
  const ds = diags(
    tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    routes:\n      - to: 10.1.2.3/16\n      - to: 10.2.0.0/16\n        via: 2001:db8::1\n      - to: nowhere\n      - to: 10.3.0.0/16\n        table: vpn\n      - to: 10.4.0.0/16\n      - to: 10.4.0.0/16\n        via: 10.0.0.9\n  h:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.3\n    routes: [{to: 10.4.0.0/16, table: main}]\n'),
    {rtTables: new Map([['mgmt', 100]])},
  )
  assert.equal(where(ds), [
    [8, 13, 'tunnel "g": route destination 10.1.2.3/16 has host bits set (did you mean 10.1.0.0/16?)'],
    [10, 14, 'tunnel "g": via 2001:db8::1 is IPv6 but the route to 10.2.0.0/16 is IPv4'],
    [11, 13, 'tunnel "g": route destination "nowhere" is not a CIDR prefix or "default"'],
    [13, 16, 'tunnel "g": unknown routing table "vpn" (known: main, local, default, mgmt; or use a number 1..4294967295)'],
    [15, 9, 'tunnel "g": route to 10.4.0.0/16 (table 254, metric 0) is listed twice'],
    [21, 14, 'tunnel "h": route to 10.4.0.0/16 (table 254, metric 0) is also defined in tunnel "g"; the kernel keeps one'],
  ])
})

test('route metric 0: an IPv6 route is stored by the kernel with 1024 (so the spec says 1024), an IPv4 one keeps 0', () => {
  const t = only(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    routes:\n      - {to: 2001:db8:9::/48, metric: 0}\n      - {to: 10.9.0.0/16, metric: 0}\n      - {to: 2001:db8:8::/48, metric: 5}\n'))
  assert.equal(t.routes, [
    {to: '10.9.0.0/16', table: 254, metric: 0},
    {to: '2001:db8:8::/48', table: 254, metric: 5},
    {to: '2001:db8:9::/48', table: 254, metric: 1024},
  ])
  // the same (table, prefix, metric) as the kernel sees it: metric 0 and 1024 on IPv6 are one route
  const d = one(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    routes:\n      - {to: 2001:db8:9::/48, metric: 0}\n      - {to: 2001:db8:9::/48, metric: 1024}\n'))
  assert.is(d.message, 'tunnel "g": route to 2001:db8:9::/48 (table 254, metric 1024) is listed twice')
})

test('routes on a tunnel with up: false are refused at the routes key (the kernel refuses a route on a down device)', () => {
  const d = one(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    up: false\n    routes:\n      - to: 10.9.0.0/16\n'))
  assert.equal([d.line, d.column, d.pointer], [7, 5, '/tunnels/g/routes'])
  assert.is(d.message, 'tunnel "g": routes need the tunnel up: the kernel refuses a route on a down device and removes a device\'s routes when it goes down; drop "up: false" or the routes')
  assert.is(d.excerpt, '      routes:\n      ^')
  // no routes (or an empty list), up: true, or an absent tunnel: fine
  for (const body of ['    up: false\n', '    up: false\n    routes: []\n', '    up: true\n    routes: [{to: 10.9.0.0/16}]\n', '    state: absent\n    up: false\n    routes: [{to: 10.9.0.0/16}]\n']) {
    assert.is(only(tunnels(`  g:\n    mode: gre\n    local: 192.0.2.1\n${body}`)).name, 'g', body)
  }
})

test('mtu below 1280 with IPv6 addresses or routes is refused at the mtu, in every mode; sit\'s own minimum is one error', () => {
  const d = one(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    mtu: 1200\n    addresses: [10.0.0.1/30, 2001:db8:1::1/64]\n'))
  assert.equal([d.line, d.column, d.pointer], [6, 10, '/tunnels/g/mtu'])
  assert.is(d.message, 'tunnel "g": mtu 1200 is below 1280, IPv6\'s minimum: the kernel refuses IPv6 addresses and routes on such a device, and this tunnel has IPv6 address 2001:db8:1::1/64; use mtu 1280 or more, or no IPv6')
  assert.is(d.excerpt, '      mtu: 1200\n           ^')
  const r = one(tunnels('  v:\n    mode: vti\n    local: 192.0.2.1\n    mtu: 1000\n    routes: [{to: 10.9.0.0/16}, {to: 2001:db8:9::/48}]\n'))
  assert.equal([r.line, r.column], [6, 10])
  assert.match(r.message, 'this tunnel has an IPv6 route (to 2001:db8:9::/48)')
  // sit carries IPv6 whatever it has: its driver's range says so, once
  const s = one(tunnels('  s:\n    mode: sit\n    local: 192.0.2.1\n    mtu: 1200\n    addresses: [2001:db8:1::1/64]\n'))
  assert.is(s.message, 'tunnel "s": mtu must be 1280..65535 for mode sit (it carries IPv6)')
  // IPv4 only, or 1280: fine
  assert.is(only(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    mtu: 1200\n    addresses: [10.0.0.1/30]\n    routes: [{to: 10.9.0.0/16}]\n')).params.mtu, 1200)
  assert.is(only(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    mtu: 1280\n    addresses: [2001:db8:1::1/64]\n')).params.mtu, 1280)
})

test('routes: "default" needs a family when the tunnel carries both', () => {
  const d = one(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    routes: [{to: default}]\n'))
  assert.equal([d.line, d.column, d.message], [6, 19, 'tunnel "g": cannot tell whether "default" means 0.0.0.0/0 or ::/0; add "via" or write the prefix'])
})

test('duplicate endpoints: same mode/local/remote/dev/key twice; a different key or dev makes them distinct', () => {
  const d = one(tunnels('  g1:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.2\n  g2:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.2\n'))
  assert.equal([d.line, d.column, d.pointer], [7, 3, '/tunnels/g2'])
  assert.is(d.message, 'tunnel "g2" has the same mode (gre), local, remote, dev and input key as tunnel "g1"; the kernel cannot tell them apart')
  parseSpec('t.yaml', tunnels('  g1:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.2\n  g2:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    key: 7\n  g3:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    dev: eth1\n  i1:\n    mode: ipip\n    local: 192.0.2.1\n    remote: 192.0.2.2\n'), {rtTables: NO_TABLES})
  // key 0.0.0.7 is key 7
  assert.match(one(tunnels('  g1:\n    mode: gre\n    local: 192.0.2.1\n    key: 7\n  g2:\n    mode: gre\n    local: 192.0.2.1\n    key: 0.0.0.7\n')).message, 'the kernel cannot tell them apart')
  // sit and isatap share the sit module's table
  assert.is(
    one(tunnels('  s:\n    mode: sit\n    local: 192.0.2.1\n  i:\n    mode: isatap\n    local: 192.0.2.1\n')).message,
    'tunnel "i" has the same local, remote and dev as tunnel "s" (sit and isatap are both sit devices); the kernel cannot tell them apart',
  )
  // vti keys do not count, and the message says so
  assert.match(
    one(tunnels('  v1:\n    mode: vti\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    key: 1\n  v2:\n    mode: vti\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    key: 2\n')).message,
    'has the same mode (vti), local, remote and dev as tunnel "v1" (a vti key only marks packets',
  )
})

test('multicast gre: no key or key 0 is the group as key (iproute2), so it collides with that key written out', () => {
  const mc = (k: string) => `  m1:\n    mode: gre\n    local: 192.0.2.1\n    remote: 239.1.1.1\n  m2:\n    mode: gre\n    local: 192.0.2.1\n    remote: 239.1.1.1\n${k}`
  assert.match(one(tunnels(mc('    key: 239.1.1.1\n'))).message, 'tunnel "m2" has the same mode (gre), local, remote, dev and input key as tunnel "m1"')
  assert.match(one(tunnels(mc('    key: 0\n'))).message, 'the kernel cannot tell them apart')
  parseSpec('t.yaml', tunnels(mc('    key: 5\n')), {rtTables: NO_TABLES})
  assert.is(DRIVERS.gre.normalize({mode: 'gre', local: '192.0.2.1', remote: '239.1.1.1', key: 0}).ikey, 0xef010101)
  assert.is(DRIVERS.gre.normalize({mode: 'gre', local: '192.0.2.1', remote: '192.0.2.9', key: 0}).ikey, 0, 'unicast key 0 stays 0')
})

test('identity rules measured in UML: vti keys do not count, gre key 0 is not "no key", gre matches on the input key', () => {
  assert.match(one(tunnels('  v1:\n    mode: vti\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    key: 5\n  v2:\n    mode: vti\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    key: 6\n')).message, 'tunnel "v2" has the same mode')
  parseSpec('t.yaml', tunnels('  g1:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.2\n  g2:\n    mode: gre\n    local: 192.0.2.1\n    remote: 192.0.2.2\n    key: 0\n'), {rtTables: NO_TABLES})
  assert.match(one(tunnels('  g1:\n    mode: gre\n    local: 192.0.2.1\n    input-key: 7\n    output-key: 8\n  g2:\n    mode: gre\n    local: 192.0.2.1\n    input-key: 7\n    output-key: 9\n')).message, 'tunnel "g2" has the same mode')
  parseSpec('t.yaml', tunnels('  g1:\n    mode: gre\n    local: 192.0.2.1\n    input-key: 10\n    output-key: 7\n  g2:\n    mode: gre\n    local: 192.0.2.1\n    input-key: 7\n    output-key: 7\n'), {rtTables: NO_TABLES})
})

test('fallback identity per mode: vti with only a key, isatap with local any', () => {
  assert.is(one(tunnels('  v:\n    mode: vti\n    key: 5\n')).message, 'tunnel "v" has local any, remote any, no dev and no key: that is the kernel\'s fallback device ip_vti0, so it cannot be created; set local, remote or dev')
  assert.match(one(tunnels('  i:\n    mode: isatap\n')).message, "fallback device sit0, so it cannot be created; set local or dev")
  parseSpec('t.yaml', tunnels('  g:\n    mode: gre\n    key: 5\n  i:\n    mode: ipip\n    dev: eth0\n'), {rtTables: NO_TABLES})
})

test('an absent tunnel does not clash with a present one', () => {
  const s = parseSpec('t.yaml', tunnels('  g1:\n    mode: gre\n    local: 192.0.2.1\n    addresses: [10.0.0.1/30]\n  g2:\n    mode: gre\n    state: absent\n    local: 192.0.2.1\n    addresses: [10.0.0.1/30]\n'), {rtTables: NO_TABLES})
  assert.equal(s.tunnels.map((t) => [t.name, t.state]), [['g1', 'present'], ['g2', 'absent']])
})

test('local any, remote any, no dev, no key is the fallback device', () => {
  const d = one(tunnels('  t:\n    mode: ipip\n'))
  assert.is(d.message, 'tunnel "t" has local any, remote any, no dev and no key: that is the kernel\'s fallback device tunl0, so it cannot be created; set local, remote or dev')
  // the userspace driver has no fallback device; state absent needs only mode
  parseSpec('t.yaml', tunnels('  t:\n    mode: ipip\n    driver: userspace\n  u:\n    mode: gre\n    state: absent\n'), {rtTables: NO_TABLES})
})

test('per-mode rules come from the drivers, pointers prefixed with the tunnel', () => {
  const ds = diags(tunnels('  t:\n    mode: ipip\n    local: 192.0.2.1\n    key: 5\n  g:\n    mode: gre\n    local: 192.0.2.2\n    ttl: 64\n    pmtudisc: false\n    ignore-df: true\n  i:\n    mode: isatap\n    local: 192.0.2.3\n    remote: 192.0.2.4\n'))
  assert.equal(ds.map((d) => [d.line, d.column, d.pointer]), [
    [6, 10, '/tunnels/t/key'],
    [10, 10, '/tunnels/g/ttl'],
    [16, 13, '/tunnels/i/remote'],
  ])
  for (const d of ds) assert.ok(d.message.startsWith(`tunnel "${d.pointer.split('/')[2]}": `), d.message)
  assert.match(ds[0].message, 'not valid for mode ipip')
  assert.match(ds[1].message, 'pmtudisc')
  assert.match(ds[2].message, 'remote must be any')
})

test('ignore-df without pmtudisc false (driver rule)', () => {
  const d = one(tunnels('  g:\n    mode: gre\n    local: 192.0.2.2\n    ignore-df: true\n'))
  assert.equal([d.line, d.column, d.pointer], [6, 16, '/tunnels/g/ignore-df'])
})

test('a driver diagnostic with a relative pointer and an entry-level one are placed', () => {
  const drivers = fakeDrivers((s) => (s.mode === 'gre' ? [{pointer: 'local', message: 'nope'}, {pointer: '', message: 'whole entry'}] : []))
  try {
    parseSpecWith('t.yaml', tunnels('  g:\n    mode: gre\n    local: 192.0.2.2\n'), {drivers, rtTables: NO_TABLES})
    assert.unreachable()
  } catch (e) {
    assert.instance(e, SpecError)
    assert.equal(where((e as SpecError).diagnostics), [
      [3, 3, 'tunnel "g": whole entry'],
      [5, 12, 'tunnel "g": nope'],
    ])
  }
})

test('a driver diagnostic about a key that is not in the file points at the tunnel', () => {
  const drivers = fakeDrivers((s) => (s.mode === 'vti' ? [{pointer: '/remote', message: 'vti needs a remote'}] : []))
  try {
    parseSpecWith('t.yaml', tunnels('  v:\n    mode: vti\n    local: 192.0.2.2\n'), {drivers, rtTables: NO_TABLES})
    assert.unreachable()
  } catch (e) {
    assert.instance(e, SpecError)
    assert.equal(where((e as SpecError).diagnostics), [[3, 3, 'tunnel "v": vti needs a remote']])
  }
})

test('YAML syntax errors are diagnostics with positions; several at once', () => {
  const ds = diags('version: 1\ntunnels:\n  gre1:\n    mode: gre\n   local: [192.0.2.1\n')
  assert.ok(ds.length >= 1)
  for (const d of ds) assert.match(d.message, /^YAML syntax error: /)
  assert.equal(where(ds), [
    [5, 4, 'YAML syntax error: All mapping items must start at the same column'],
    [5, 21, 'YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  ])
  const dup = diags('version: 1\ntunnels:\n  g:\n    mode: gre\n    mode: ipip\n')
  assert.equal(where(dup), [[5, 5, 'YAML syntax error: Map keys must be unique']])
})

test('every error in the file is reported at once, sorted by position', () => {
  const ds = diags(tunnels('  g2:\n    mode: gre\n    local: 192.0.2.1\n    ttl: 0\n  g1:\n    mode: bogus\n  verylongtunnelname:\n    mode: sit\n    local: 192.0.2.9\n    addresses: [10.0.0.1/8]\n'))
  assert.equal(ds.map((d) => d.line), [6, 8, 9, 12])
  const err = new SpecError(ds)
  assert.is(err.exitCode, EXIT.DATAERR)
  assert.is(err.message.split('\n').filter((l) => /^t\.yaml:\d+:\d+: /.test(l)).length, 4)
})

test('the schema is consulted for every tunnel even when another has errors', () => {
  const ds = diags(tunnels('  a:\n    mode: gre\n    local: 192.0.2.1\n    mtu: 1\n  b:\n    mode: gre\n    local: 192.0.2.2\n    mtu: 2\n'))
  assert.equal(ds.map((d) => [d.line, d.pointer]), [
    [6, '/tunnels/a/mtu'],
    [10, '/tunnels/b/mtu'],
  ])
})

test('a schema error does not hide the tunnel\'s other problems: driver rules and identity still checked', () => {
  // a: unknown key + a key ipip does not take + fixed ttl without pmtudisc; b: bad mtu and the same identity as c
  const ds = diags(
    tunnels('  a:\n    mode: ipip\n    local: 192.0.2.1\n    kye: 5\n    key: 5\n    ttl: 64\n    pmtudisc: false\n  b:\n    mode: gre\n    local: 192.0.2.3\n    mtu: 10\n  c:\n    mode: gre\n    local: 192.0.2.3\n'),
  )
  assert.equal(ds.map((d) => [d.line, d.pointer]), [
    [6, '/tunnels/a/kye'],
    [7, '/tunnels/a/key'],
    [8, '/tunnels/a/ttl'],
    [13, '/tunnels/b/mtu'],
    [14, '/tunnels/c'],
  ])
  // a bad endpoint is not taken for "any": no false duplicate
  const d2 = diags(tunnels('  a:\n    mode: gre\n    local: 192.0.2.300\n  b:\n    mode: gre\n'))
  assert.not.ok(d2.some((d) => /same mode/.test(d.message)), d2.map((d) => d.message).join('\n'))
})

// ---------- inputs ----------

test('readInput: a file, a missing file (exit 66), a directory (exit 66)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tunctl-spec-'))
  try {
    const f = join(dir, 'a.yaml')
    writeFileSync(f, 'version: 1\ntunnels: {}\n')
    assert.equal(await readInput(f), {file: f, text: 'version: 1\ntunnels: {}\n'})
    assert.equal(await loadSpec(f), {file: f, tunnels: []})
    for (const bad of [join(dir, 'missing.yaml'), dir]) {
      try {
        await readInput(bad)
        assert.unreachable()
      } catch (e) {
        assert.instance(e, InputError)
        assert.is((e as InputError).exitCode, 66)
        assert.match((e as Error).message, bad)
      }
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('readInput("-") reads stdin and names it <stdin>', () => {
  const code = `import {loadSpec} from './src/spec/load.ts'; const s = await loadSpec('-'); console.log(JSON.stringify(s))`
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    input: 'version: 1\ntunnels:\n  g:\n    mode: gre\n    local: 192.0.2.1\n',
    encoding: 'utf8',
  })
  assert.is(r.status, 0, r.stderr)
  const s = JSON.parse(r.stdout)
  assert.is(s.file, STDIN_NAME)
  assert.equal(s.tunnels.map((t: DesiredTunnel) => t.name), ['g'])
})

// ---------- normalisation: one valid file per mode ----------

function only(text: string): DesiredTunnel {
  const s = parseSpec('t.yaml', text, {rtTables: new Map([['vpn', 100]])})
  assert.is(s.tunnels.length, 1)
  return s.tunnels[0]
}

test('ipip normalises: defaults, canonical addresses and routes', () => {
  const t = only(tunnels('  ipip1:\n    mode: ipip\n    local: 192.0.2.1\n    remote: 198.51.100.2\n    ttl: 64\n    addresses: [10.10.1.1/30, 10.9.0.1/32]\n    routes:\n      - to: 10.20.1.0/24\n        via: 10.10.1.2\n        metric: 100\n      - {to: default, table: vpn}\n'))
  assert.equal(t, {
    name: 'ipip1',
    state: 'present',
    params: {mode: 'ipip', local: '192.0.2.1', remote: '198.51.100.2', ttl: 64, tos: 1, pmtudisc: true, fwmark: 0, proto: 'ipip', up: true},
    addresses: ['10.10.1.1/30', '10.9.0.1/32'],
    // sorted by table, then destination
    routes: [
      {to: '0.0.0.0/0', table: 100},
      {to: '10.20.1.0/24', via: '10.10.1.2', metric: 100, table: 254},
    ],
    driver: 'auto',
    pointer: '/tunnels/ipip1',
    // each route's entry in the file (same order as routes: plan-time route conflicts are reported there)
    routePointers: ['/tunnels/ipip1/routes/1', '/tunnels/ipip1/routes/0'],
    routeAt: [
      {line: 13, column: 9, excerpt: '        - {to: default, table: vpn}\n          ^'},
      {line: 10, column: 9, excerpt: '        - to: 10.20.1.0/24\n          ^'},
    ],
    // where the tunnel's key stands (plan-time conflicts are reported there)
    at: {line: 3, column: 3, excerpt: '    ipip1:\n    ^'},
  })
})

test('gre normalises: keys (dotted quad), csum/seq pairs, IPv6 canonical form', () => {
  const t = only(tunnels('  gre1:\n    mode: gre\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    input-key: 0.0.1.0\n    output-key: 7\n    csum: true\n    seq: {input: true}\n    mtu: 1400\n    fwmark: 9\n    driver: kernel\n    addresses: [2001:DB8:2:0::1/64, 10.10.2.1/30]\n    routes: [{to: "2001:db8:9::/48"}, {to: default, via: "2001:db8:2::2"}]\n'))
  assert.equal(t.params, {mode: 'gre', local: '198.51.100.1', remote: '198.51.100.2', ttl: 0, tos: 1, pmtudisc: true, ignoreDf: false, ikey: 256, okey: 7, icsum: true, ocsum: true, iseq: true, oseq: false, fwmark: 9, mtu: 1400, up: true})
  assert.equal(t.addresses, ['10.10.2.1/30', '2001:db8:2::1/64'])
  assert.equal(t.routes, [
    {to: '2001:db8:9::/48', table: 254},
    {to: '::/0', via: '2001:db8:2::2', table: 254},
  ])
  assert.is(t.driver, 'kernel')
})

test('sit normalises: 6rd, encapsulated any', () => {
  const t = only(tunnels('  sit1:\n    mode: sit\n    local: 198.51.100.1\n    encapsulated: any\n    6rd-prefix: 2001:DB8::/32\n    addresses: [2001:db8:3::1/64, 10.0.0.1/30]\n    routes: [{to: default, via: 10.0.0.2}]\n'))
  assert.is(t.params.mode, 'sit')
  assert.is(t.params.proto, 'any')
  assert.is(t.params.remote, 'any')
  assert.is(t.params.sixrdPrefix, '2001:db8::/32')
  assert.equal(t.addresses, ['10.0.0.1/30', '2001:db8:3::1/64'])
  assert.equal(t.routes, [{to: '0.0.0.0/0', via: '10.0.0.2', table: 254}])
})

test('isatap normalises: routers, default route is IPv6', () => {
  const t = only(tunnels('  isatap1:\n    mode: isatap\n    local: 198.51.100.1\n    routers: [198.51.100.3, {address: 198.51.100.2, default: true}]\n    addresses: [2001:db8:4::5efe:c633:6401/64]\n    routes: [{to: default}]\n'))
  assert.is(t.params.mode, 'isatap')
  assert.is(t.params.remote, 'any')
  // sorted by address; a bare address is a default router (the drivers' convention)
  assert.equal(t.params.routers, [
    {address: '198.51.100.2', default: true},
    {address: '198.51.100.3', default: true},
  ])
  assert.equal(t.routes, [{to: '::/0', table: 254}])
})

test('vti normalises: key, no ttl/tos/pmtudisc', () => {
  const t = only(tunnels('  vti1:\n    mode: vti\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    key: 7\n    addresses: [10.10.5.1/30]\n'))
  assert.equal(t.params, {mode: 'vti', local: '198.51.100.1', remote: '198.51.100.2', ikey: 7, okey: 7, fwmark: 0, up: true})
})

test('state absent needs only mode', () => {
  const t = only(tunnels('  old:\n    mode: gre\n    state: absent\n'))
  assert.equal([t.name, t.state, t.addresses, t.routes], ['old', 'absent', [], []])
})

test('tunnels keep file order, also with numeric names', () => {
  const s = parseSpec('t.yaml', tunnels('  zz:\n    mode: gre\n    local: 192.0.2.1\n  10:\n    mode: gre\n    local: 192.0.2.2\n  aa:\n    mode: gre\n    local: 192.0.2.3\n'), {rtTables: NO_TABLES})
  assert.equal(s.tunnels.map((t) => t.name), ['zz', '10', 'aa'])
  // data yaml makes (an anchor and its alias), names an object lists as written ('007') or first ('7')
  const body = '  zz:\n    mode: gre\n    local: &l 192.0.2.1\n  "007":\n    mode: ipip\n    local: *l\n  7:\n    mode: sit\n    local: 192.0.2.3\n  b:\n    mode: gre\n    local: 192.0.2.4\n  a:\n    mode: gre\n    local: 192.0.2.5\n'
  const order = ['zz', '007', '7', 'b', 'a']
  assert.equal(parseSpec('t.yaml', tunnels(body), {rtTables: NO_TABLES}).tunnels.map((t) => t.name), order)
  assert.equal(parseSpec('t.yaml', tunnels(body.replace('&l ', '').replace('*l', '192.0.2.1')), {rtTables: NO_TABLES}).tunnels.map((t) => t.name), order)
  assert.equal(parseSpec('t.yaml', tunnels(body.replace('&l ', '').replace('*l', '192.0.2.1').replace('  7:', '  x7:')), {rtTables: NO_TABLES}).tunnels.map((t) => t.name), ['zz', '007', 'x7', 'b', 'a'])
})

test('YAML merge keys are reported as unsupported', () => {
  const d = one(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    <<: {remote: 192.0.2.2}\n'))
  assert.is(d.message, 'tunnel "g": unknown key "<<" (YAML merge keys are not supported; write the settings out)')
})

test('tunnels: {} is a valid, empty spec', () => {
  assert.equal(parseSpec('t.yaml', 'version: 1\ntunnels: {}\n'), {file: 't.yaml', tunnels: []})
})


test('IPv6 with an embedded IPv4 tail keeps its meaning (::a.b.c.d is not ::ffff:a.b.c.d)', () => {
  const t = parseSpec('t.yaml', tunnels('  s:\n    mode: sit\n    local: 192.0.2.1\n    addresses: ["2001:db8::192.0.2.1/64", "::ffff:192.0.2.9/128"]\n'), {rtTables: NO_TABLES}).tunnels[0]!
  assert.equal(t.addresses, ['2001:db8::c000:201/64', '::ffff:c000:209/128'])
  // the IPv4-compatible form on a sit device is the kernel's own address: refused with a reason
  const d = one(tunnels('  s:\n    mode: sit\n    local: 192.0.2.1\n    addresses: ["::198.51.100.1/96"]\n'))
  assert.is(d.message, 'tunnel "s": ::c633:6401/96 is an IPv4-compatible address: the kernel adds those to sit devices itself (for remote any), so tunctl does not manage them')
})

test('one mistake, one error: a route of a family the mode does not carry, via the other family (each rule checked once)', () => {
  // before: the driver repeated the common family checks, and the second error at /via got through
  assert.equal(where(diags(tunnels('  s:\n    mode: sit\n    local: 192.0.2.1\n    routes: [{to: 10.0.0.0/8, via: "2001:db8::1"}]\n'))), [
    [6, 19, 'tunnel "s": IPv4 route to 10.0.0.0/8 cannot be used: a sit tunnel carries IPv6 only unless "encapsulated: ipip" or "encapsulated: any"'],
  ])
  assert.equal(where(diags(tunnels('  i:\n    mode: ipip\n    local: 192.0.2.1\n    routes: [{to: default, via: "2001:db8::1"}]\n'))), [
    [6, 19, 'tunnel "i": IPv6 route to ::/0 cannot be used: an ipip tunnel carries IPv4 (and MPLS) only; use sit or gre for IPv6'],
  ])
  // a mismatch alone is one error too
  assert.equal(where(diags(tunnels('  g:\n    mode: gre\n    local: 192.0.2.1\n    routes: [{to: 10.0.0.0/8, via: "2001:db8::1"}]\n'))), [
    [6, 36, 'tunnel "g": via 2001:db8::1 is IPv6 but the route to 10.0.0.0/8 is IPv4'],
  ])
})

test('address and route families per mode (the rule of net/addr.ts innerFamilies, checked by the spec only)', () => {
  const at = (body: string) => diags(tunnels(body)).map((d) => [d.line, d.column])
  assert.equal(at('  i:\n    mode: ipip\n    local: 192.0.2.1\n    addresses: [10.0.0.1/30, 2001:db8::1/64]\n'), [[6, 30]])
  assert.equal(at('  i:\n    mode: isatap\n    local: 192.0.2.1\n    addresses: [10.0.0.1/30]\n'), [[6, 17]])
  assert.equal(at('  i:\n    mode: ipip\n    local: 192.0.2.1\n    routes: [{to: "2001:db8::/32"}, {to: 10.0.0.0/8, via: "2001:db8::1"}]\n'), [[6, 19], [6, 59]])
  for (const [mode, extra] of [['sit', '    encapsulated: any\n'], ['gre', ''], ['vti', '']]) {
    const t = parseSpec('t.yaml', tunnels(`  t:\n    mode: ${mode}\n    local: 192.0.2.1\n${extra}    addresses: [10.0.0.1/30, 2001:db8::1/64]\n`), {rtTables: NO_TABLES})
    assert.equal(t.tunnels[0]!.addresses, ['10.0.0.1/30', '2001:db8::1/64'], mode)
  }
})

test.run()
