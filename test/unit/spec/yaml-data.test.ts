// parse.ts's keysAsWritten builds the document's data in its walk over the keys: it must be exactly yaml's
// doc.toJS() (values, key order, own properties, prototypes), and leave anything yaml treats in its own way to yaml.
// parseYaml reads keys as strings (yaml's stringKeys): the same keys, data and errors as without it.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {LineCounter, parseDocument} from 'yaml'
import {keysAsWritten, parseYaml} from '../../../src/spec/parse.js'

/** the spec's parse (parseYaml), and yaml's parse without stringKeys (how parseYaml parsed before) */
const parse = (text: string) => parseYaml(text).doc
const parseTyped = (text: string) => parseDocument(text, {lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: false, strict: true})

/** Same shape to the last detail: own property names in order, their descriptors, prototypes, array lengths. */
function same(a: unknown, b: unknown, where = '$'): void {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    assert.ok(Object.is(a, b), `${where}: ${String(a)} vs ${String(b)}`)
    return
  }
  assert.is(Object.getPrototypeOf(a), Object.getPrototypeOf(b), `${where}: prototype`)
  assert.equal(Reflect.ownKeys(a), Reflect.ownKeys(b), `${where}: own keys`)
  for (const k of Reflect.ownKeys(a)) {
    const da = Object.getOwnPropertyDescriptor(a, k)!
    const db = Object.getOwnPropertyDescriptor(b, k)!
    assert.equal([da.writable, da.enumerable, da.configurable], [db.writable, db.enumerable, db.configurable], `${where}.${String(k)}: descriptor`)
    same(da.value, db.value, `${where}.${String(k)}`)
  }
}

/** keysAsWritten's data, and yaml's toJS of the same document after keysAsWritten rewrote its keys. */
function both(text: string): {walk: {data?: unknown}; yaml: unknown} {
  const doc = parse(text)
  assert.equal(doc.errors, [], `no YAML errors in:\n${text}`)
  const walk = keysAsWritten(doc)
  return {walk, yaml: doc.toJS({maxAliasCount: 1000})}
}

const PLAIN = [
  '',
  '# only a comment\n',
  'version: 1\n',
  '42\n',
  '- a\n- 1\n- [x, {y: z}]\n',
  'version: 1\ntunnels:\n  gre1: {mode: gre, local: 192.0.2.1, key: 0x10, mtu: 1400, up: false, ttl: ~}\n  "2": {mode: ipip}\n  1: {mode: sit}\n',
  // keys as written: numbers, booleans, null, empty, quoted, escapes, block scalars
  '0x10: a\n1e1: b\ntrue: c\nnull: d\n~: e\n"": f\n\'q\': g\n"tab\\there": h\n? |\n  block key\n: i\n',
  // keys an object has (or inherits): own properties like yaml makes them
  '__proto__: {polluted: true}\ntoString: x\nconstructor: y\nhasOwnProperty: 1\n',
  // values of every core type
  'a: 0o17\nb: -0x1F\nc: .inf\nd: -.Inf\ne: .nan\nf: 1_000\ng: 3.5e-2\nh: "0x10"\ni: !!str 12\nj: !!int "7"\nk: !!float 1\nl: TRUE\nm: yes\nn:\no: [~, null, Null]\np: >-\n  folded\n  text\nq: "multi\n  line"\n',
  // an unknown tag (yaml warns and keeps the text)
  'a: !local 1.2.3.4\nb: !!map {c: d}\nc: !!seq [1]\n',
  '{a: 1, b: [2, 3], c: {d: {e: [[]]}}}\n',
  '[1, [2, [3, {}]], "", \'\']\n',
  // a pair in a flow sequence is a mapping of one pair
  '- [a: 1, b]\n',
]

test('plain documents: the walk builds exactly what yaml toJS does', () => {
  for (const text of PLAIN) {
    const {walk, yaml} = both(text)
    assert.ok('data' in walk, `the walk built the data of:\n${text}`)
    same(walk.data, yaml)
  }
})

test('anchors, aliases, merge keys, collection keys, yaml 1.1 tags: left to yaml', () => {
  const special = [
    'a: &x 1\nb: *x\n',
    'a: &x {k: v}\n',
    'base: &b {mode: gre}\nt: {<<: *b, key: 1}\n',
    // a merge key with an inline mapping: a plain string key under stringKeys, which yaml 1.1's toJS still merges
    '%YAML 1.1\n---\nt: {<<: {mode: gre}, key: 1}\n',
    't: {<<: {mode: gre}}\n',
    '? [a, b]\n: c\n',
    '? {a: 1}\n: c\n',
    '&top {a: 1}\n',
    'a: !!set {x, y}\n',
    'a: !!omap [{x: 1}]\n',
  ]
  for (const text of special) {
    const doc = parse(text)
    const walk = keysAsWritten(doc)
    assert.not.ok('data' in walk, `yaml's own data for:\n${text}`)
  }
})

test('keys as written and duplicates found while the data is built', () => {
  const {walk, yaml} = both('t:\n  16: a\n  "16": b\n  0x10: c\n')
  same(walk.data, yaml)
  assert.equal(Object.keys((walk as any).data.t), ['16', '0x10'])
  assert.equal((keysAsWritten(parse('t:\n  16: a\n  "16": b\n')) as any).duplicates.map((d: any) => d.offset), [13])
})

test('keys read as strings (stringKeys) or typed and then taken as written: the same keys, data, duplicates and errors', () => {
  const KEYS = [
    ...PLAIN,
    't:\n  16: a\n  "16": b\n  0x10: c\n  1e1: d\n  .5: e\n  -0: f\n  false: g\n  NULL: h\n',
    // yaml 1.1 merge keys, inline and through an alias: merged either way
    '%YAML 1.1\n---\nt: {<<: {mode: gre, local: 192.0.2.1}, key: 1}\nu:\n  <<: [{a: 1}, {b: 2}]\n  c: 3\n',
    '%YAML 1.1\n---\nbase: &b {mode: gre}\nt: {<<: *b, key: 1}\n',
    // tagged keys, an alias key, a collection key, a missing key: parsed again without stringKeys
    '!!int 5: x\n',
    '!!str 5: x\n',
    '!local k: x\n',
    'a: &k 1\n*k : x\n',
    '? [a]\n: x\n',
    '? : x\n',
    ': x\n',
    // syntax errors with and without such keys
    'a: [1\n!!int 5: x\n',
    'a: b: c\n',
    'a:\n  - b\n  c: d\n',
    '"unterminated: x\n',
  ]
  for (const text of KEYS) {
    const {doc, lineCounter} = parseYaml(text)
    const typed = parseTyped(text)
    const errs = (d: typeof doc) => d.errors.map((e) => [e.code, e.pos, e.message])
    assert.equal(errs(doc), errs(typed), `errors of:\n${text}`)
    assert.ok(lineCounter.lineStarts.length >= text.split('\n').length, 'the line counter of the parse returned')
    if (doc.errors.length) continue
    const a = keysAsWritten(doc)
    const b = keysAsWritten(typed)
    assert.equal(a.duplicates, b.duplicates, `duplicates of:\n${text}`)
    same(a.data ?? doc.toJS({maxAliasCount: 1000}), b.data ?? typed.toJS({maxAliasCount: 1000}))
    assert.is('data' in a, 'data' in b, `the walk builds the data of both or neither:\n${text}`)
  }
})

test.run()
