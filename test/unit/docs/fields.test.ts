// The field table (src/model/fields.ts) is the one list of tunnel parameters: the JSON schema of the file
// format, the drivers' accepted keys, the diff, the plan/show labels and export must all agree with it. A
// parameter added to one of them but not to the table (or the other way round) fails here.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {COMMON_PARAM_KEYS, FIELDS, LINK_FIELDS, PARAM_FIELDS, fieldLabel, modeParamKeys, paramsToSpec} from '../../../src/model/fields.js'
import {COMMON_KEYS, DRIVERS} from '../../../src/drivers/index.js'
import {MODES, type TunnelParams} from '../../../src/model/types.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const schema = JSON.parse(readFileSync(join(repo, 'schemas', 'tunnels.schema.json'), 'utf8'))
const tunnelProps: Record<string, any> = schema.definitions.tunnel.properties

/** Spec keys of a tunnel entry that are not parameters (no TunnelParams field): the entry's own bookkeeping. */
const NOT_PARAMS = ['mode', 'state', 'addresses', 'routes', 'driver', 'ipsec']

test('every spec key of the table is a property of the schema, and every schema property is the table\'s or a known non-parameter', () => {
  const tableKeys = new Set(FIELDS.flatMap((r) => r.specKeys))
  for (const k of tableKeys) assert.ok(k in tunnelProps, `field table key "${k}" is not in schemas/tunnels.schema.json`)
  for (const k of Object.keys(tunnelProps)) assert.ok(tableKeys.has(k) || NOT_PARAMS.includes(k), `schema key "${k}" has no row in src/model/fields.ts`)
  for (const k of NOT_PARAMS) assert.not.ok(tableKeys.has(k), k)
})

test('a row\'s default satisfies the schema\'s type for its key (the default is something the spec could say)', () => {
  for (const r of FIELDS) {
    if (r.default === undefined || r.pair) continue
    const p = tunnelProps[r.specKeys[0]!]
    const types: string[] = p.$ref ? [] : [p.type].flat().filter(Boolean)
    if (types.length === 0) continue
    const t = typeof r.default === 'number' ? 'integer' : typeof r.default
    if (r.inherit !== undefined && r.default === r.inherit) assert.ok(types.includes('string') && p.pattern === '^inherit$', `${r.field}: inherit default`)
    else assert.ok(types.includes(t), `${r.field}: default ${String(r.default)} is not a ${types.join('/')}`)
  }
})

test('each driver accepts exactly the table\'s keys for its mode (vti adds its ipsec: block)', () => {
  for (const m of MODES) {
    const own = m === 'vti' ? ['ipsec'] : []
    assert.equal([...DRIVERS[m].keys].sort(), [...modeParamKeys(m), ...own].sort(), m)
  }
  assert.equal(COMMON_KEYS, ['mode', 'state', ...COMMON_PARAM_KEYS, 'addresses', 'routes', 'driver'])
})

test('the table covers every TunnelParams field a driver produces, once, with a unique label', () => {
  const seen = new Set<string>()
  for (const m of MODES) {
    const d = DRIVERS[m]
    const spec: Record<string, unknown> = {mode: m, local: '192.0.2.1', remote: m === 'isatap' ? 'any' : '198.51.100.1'}
    for (const k of Object.keys(d.normalize(spec))) if (k !== 'mode') seen.add(k)
  }
  for (const f of seen) assert.ok(PARAM_FIELDS.includes(f as any), `normalize() sets "${f}", which has no row`)
  assert.is(new Set(PARAM_FIELDS).size, PARAM_FIELDS.length)
  const labels = FIELDS.map((r) => r.label)
  assert.is(new Set(labels).size, labels.length, 'labels are unique')
  assert.is(fieldLabel('ignoreDf'), 'ignore-df')
  assert.is(fieldLabel('addresses'), 'addresses')
  assert.not.ok(LINK_FIELDS.includes('mtu') || LINK_FIELDS.includes('up') || LINK_FIELDS.includes('routers'))
})

test('paramsToSpec writes every field back as the spec keys that normalize reads (round trip per mode)', () => {
  const cases: TunnelParams[] = [
    DRIVERS.gre.normalize({mode: 'gre', local: '192.0.2.1', remote: '198.51.100.1', 'input-key': 5, 'output-key': '0.0.0.7', csum: {input: true, output: false}, seq: true, ttl: 64, tos: 'inherit', fwmark: 3}),
    DRIVERS.gre.normalize({mode: 'gre', local: '192.0.2.1', remote: '198.51.100.1', key: 9, 'ignore-df': true, pmtudisc: false}),
    DRIVERS.sit.normalize({mode: 'sit', local: '192.0.2.1', '6rd-prefix': '2001:db8::/32', '6rd-relay-prefix': '192.0.2.0/24', encapsulated: 'any'}),
    DRIVERS.isatap.normalize({mode: 'isatap', local: '192.0.2.1', routers: ['192.0.2.9', {address: '192.0.2.8', default: false}], up: false}),
    DRIVERS.ipip.normalize({mode: 'ipip', local: '192.0.2.1', remote: '198.51.100.1', encapsulated: 'mplsip', dev: 'eth0'}),
    DRIVERS.vti.normalize({mode: 'vti', local: '192.0.2.1', remote: '198.51.100.1', key: 4}),
  ]
  for (const p of cases) {
    const spec = paramsToSpec(p)
    for (const k of Object.keys(spec)) assert.ok(k === 'mode' || DRIVERS[p.mode].keys.includes(k) || COMMON_KEYS.includes(k), `${p.mode}: ${k}`)
    assert.equal(DRIVERS[p.mode].normalize(spec), p, p.mode)
  }
  assert.equal(paramsToSpec(cases[0]!).csum, {input: true, output: false})
  assert.is(paramsToSpec(cases[1]!).key, 9)
  assert.is(paramsToSpec(cases[0]!).tos, 'inherit')
})

/** Another value of each field (for the change column). */
const ALT: Record<string, unknown> = {
  local: '192.0.2.7', ttl: 64, tos: 0x10, pmtudisc: false, ignoreDf: true, fwmark: 5, proto: 'any',
  sixrdPrefix: '2001:db8::/32', sixrdRelayPrefix: '192.0.2.0/24', routers: [{address: '192.0.2.9', default: true}], mtu: 1400, up: false,
}

test('the change column: an \'update\' field changes in place in every mode that has it, a \'replace\' field never does', () => {
  for (const r of FIELDS) {
    if (r.change === 'driver') continue
    assert.ok(r.field in ALT, `no other value for ${r.field} in ALT`)
    for (const m of r.modes) {
      const d = DRIVERS[m]
      const from = d.normalize({mode: m, local: '192.0.2.1', remote: m === 'isatap' ? 'any' : '198.51.100.1'})
      const to = {...from, [r.field]: ALT[r.field]}
      const why = d.replaceReason(from, to)
      if (r.change === 'update') assert.is(why, undefined, `${m}: ${r.field} should change in place: ${why}`)
      else assert.type(why, 'string', `${m}: ${r.field} cannot change in place, but replaceReason gives none`)
    }
  }
})

test.run()
