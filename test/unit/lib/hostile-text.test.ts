// Hostile bytes: quoting for iproute2's batch reader (checked against a model of lib/utils.c makeargs), the
// `ip -j` reader over raw control characters / `\'` / invalid UTF-8, terminal-safe printing, the name rule.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {batchLine, parseIpJson, sanitizeJsonStrings} from '../../../src/lib/ip.js'
import {interfaceNameProblem, manageableName} from '../../../src/lib/names.js'
import {BatchWordError, jsonText, makeargs, quoteBatchWord, visible, visibleText} from '../../../src/lib/text.js'
import {formatValue} from '../../../src/plan/render.js'
import {isOwned} from '../../../src/observe/parse.js'

test('makeargs model: quote only at a word start, no escapes, # cuts the line', () => {
  assert.equal(makeargs('link set dev a"b up'), ['link', 'set', 'dev', 'a"b', 'up'])
  assert.equal(makeargs(`link "a b" 'c"d' ""`), ['link', 'a b', 'c"d', ''])
  assert.equal(makeargs('link a\\b'), ['link', 'a\\b'])
  assert.equal(makeargs('link dev x#y up'), ['link', 'dev', 'x'])
  assert.equal(makeargs('"a b"c'), ['a b', 'c'])
})

test('batch quoting round-trips every word ip -batch can carry', () => {
  const words = ['gre1', 'a"b', "a'b", '"lead', "'lead", 'a b', 'a\tb', 'a\\', '\\', '', 'x\ry', 'ünï', 'a\x1bb', '10.0.0.1/30', 'tunctl']
  for (const w of words) {
    const line = batchLine(['link', 'set', 'dev', w, 'up'])
    assert.equal(makeargs(line), ['link', 'set', 'dev', w, 'up'], `${JSON.stringify(w)} → ${JSON.stringify(line)}`)
    assert.not.ok(line.includes('\n'))
  }
  // plain words stay bare (verbose echo and batch text unchanged for ordinary names)
  assert.is(quoteBatchWord('gre1'), 'gre1')
  assert.is(quoteBatchWord('2001:db8::1/64'), '2001:db8::1/64')
})

test('batch quoting refuses what ip -batch cannot carry (not a silently different line)', () => {
  for (const w of ['a#b', 'a\nb', 'a\0b', `"'`, `a "'`]) {
    assert.throws(() => quoteBatchWord(w), (e: unknown) => e instanceof BatchWordError && /ip -batch/.test((e as Error).message))
  }
  // no raw control character in the message
  try {
    quoteBatchWord('\x1b[31m#')
    assert.unreachable()
  } catch (e) {
    assert.not.ok(/\x1b/.test((e as Error).message))
  }
})

test('ip -j reader: raw control characters in strings, \\\' and invalid UTF-8', () => {
  const raw = Buffer.concat([
    Buffer.from('[{"ifindex":5,"ifname":"ev\x1b[31mil","ifalias":"it\\\'s \x01"},{"ifindex":6,"ifname":"'),
    Buffer.from([0x62, 0xff, 0xfe, 0x61]),
    Buffer.from('","ifalias":"tunctl"},{"ifindex":7,"ifname":"ok\\t\\"q\\\\"}]'),
  ])
  assert.throws(() => JSON.parse(raw.toString('utf8')))
  const j = parseIpJson(raw) as any[]
  assert.is(j.length, 3)
  assert.is(j[0].ifname, 'ev\x1b[31mil')
  assert.is(j[0].ifalias, "it's \x01")
  assert.is(j[1].ifname, 'b\ufffd\ufffda')
  assert.is(j[2].ifname, 'ok\t"q\\')
  assert.equal(parseIpJson('  \n'), [])
  // structure outside strings is untouched
  assert.is(sanitizeJsonStrings('{"a": [1, 2]}\n'), '{"a": [1, 2]}\n')
})

test('ownership is the exact alias on a manageable name', () => {
  assert.ok(isOwned({ifname: 'gre1', ifalias: 'tunctl'}))
  assert.not.ok(isOwned({ifname: 'gre1', ifalias: 'tunctl-old'}))
  assert.not.ok(isOwned({ifname: 'gre1', ifalias: 'tunctlx'}))
  assert.not.ok(isOwned({ifname: 'gre1'}))
  assert.not.ok(isOwned({ifname: 'b\ufffda', ifalias: 'tunctl'}))
  assert.not.ok(isOwned({ifname: 'a\x1bb', ifalias: 'tunctl'}))
  assert.not.ok(isOwned({ifname: 'a#b', ifalias: 'tunctl'}))
})

test('names: refused at validate what the kernel or ip -batch cannot carry exactly', () => {
  for (const ok of ['gre1', 'a-b_c.d', 'tün0', 'x@y', 'a%b']) assert.is(interfaceNameProblem(ok, 'tunnel name'), undefined, ok)
  const cases: Array<[string, RegExp]> = [
    ['a#b', /'#'.*batch/],
    ['a"b', /'#'.*batch/],
    ["a'b", /'#'.*batch/],
    ['a\\b', /'#'.*batch/],
    ['a\x1bb', /control or invisible/],
    ['a\x00b', /control or invisible/],
    ['a\u202eb', /control or invisible/],
    ['a\u0085b', /whitespace|control/],
    ['a\ud800b', /not valid UTF-8/],
    ['a\ufffdb', /U\+FFFD/],
    ['a b', /whitespace/],
    ['a\nb', /whitespace/],
    ['a/b', /'\/'/],
    ['a:b', /':'/],
  ]
  for (const [name, re] of cases) {
    const p = interfaceNameProblem(name, 'tunnel name')
    assert.ok(p, JSON.stringify(name))
    assert.match(p!, re, `${JSON.stringify(name)}: ${p}`)
    assert.not.ok(/[\x00-\x08\x0a-\x1f\x7f\u202e]/.test(p!), `raw control character in: ${JSON.stringify(p)}`)
    assert.not.ok(manageableName(name))
  }
})

test('visible: escapes control, C1 and bidi characters, keeps the rest', () => {
  assert.is(visible('gre1'), 'gre1')
  assert.is(visible('tün'), 'tün')
  assert.is(visible('a\x1b[2Jb'), 'a\\e[2Jb')
  assert.is(visible('a\x9bb\u202ec\x00'), 'a\\x9bb\\u202ec\\x00')
  assert.is(visible('a\tb\nc'), 'a\\tb\\nc')
  assert.is(visibleText('a\tb\nc\x07'), 'a\tb\nc\\x07')
})

test('JSON output: C1 controls and bidi overrides escaped too, still the same JSON', () => {
  const v = {name: 'a\u009b2Jb\u202ec\x1b', ok: 'tün'}
  const text = jsonText(v)
  assert.not.ok(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/.test(text), text)
  assert.equal(JSON.parse(text), v)
  assert.match(text, /tün/)
})

test('plan/show values: a foreign underlay name is never printed raw', () => {
  assert.is(formatValue('dev', 'eth\x1b[2J0'), 'eth\\e[2J0')
  assert.is(formatValue('dev', 'eth0'), 'eth0')
})

test.run()
