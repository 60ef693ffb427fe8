// The spec reader's limits: file size, UTF-8, alias expansion, positions resolved once, bounded diagnostics and
// excerpts, keys as written. The 17 KB anchored-list file of issue #8 must exit 65 quickly with bounded output.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {MAX_DIAGNOSTICS, SpecError} from '../../../src/lib/errors.js'
import {isUtf8} from 'node:buffer'
import {decodeSpec, firstInvalidUtf8, MAX_SPEC_BYTES, parseSpec} from '../../../src/spec/load.js'
import {clipExcerpt, EXCERPT_WIDTH} from '../../../src/spec/positions.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..')
const bin = join(repo, 'bin', 'run')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-limits-'))
test.after(() => rmSync(scratch, {recursive: true, force: true}))

function cli(args: string[], input = '') {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
  delete env.FORCE_COLOR
  const t0 = Date.now()
  const r = spawnSync(process.execPath, [bin, ...args], {input, encoding: 'utf8', env, timeout: 30_000, maxBuffer: 256 << 20})
  return {code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ms: Date.now() - t0}
}

function specError(text: string): SpecError {
  try {
    parseSpec('t.yaml', text, {rtTables: new Map()})
  } catch (e) {
    if (e instanceof SpecError) return e
    throw e
  }
  throw new Error('valid')
}

/** issue #8: one anchored list of 1000 addresses used by 20 tunnels, each with an error (≈17 KB). */
function anchoredSpec(): string {
  const list = Array.from({length: 1000}, (_, i) => `10.${i >> 8}.${i & 255}.1/32`).join(', ')
  let s = 'version: 1\ntunnels:\n'
  for (let i = 0; i < 20; i++) {
    s += `  t${i}:\n    mode: gre\n    local: 192.0.2.${i + 1}\n    remote: 198.51.100.1\n    ttl: 300\n    addresses: ${i === 0 ? `&a [${list}]` : '*a'}\n`
  }
  return s
}

test('the 17 KB anchored-list spec: exit 65 within seconds, bounded output, every position where the alias is used', () => {
  const text = anchoredSpec()
  assert.ok(text.length > 16_000 && text.length < 18_000, String(text.length))
  const f = join(scratch, 'anchored.yaml')
  writeFileSync(f, text)
  const r = cli(['validate', f])
  assert.is(r.code, 65, r.stderr.slice(0, 500))
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`)
  assert.ok(r.stderr.length < 64 * 1024, `${r.stderr.length} bytes of diagnostics`)
  assert.match(r.stderr, /\n… and \d+ more errors \(only the first 100 are listed\)\n$/)
  // no excerpt repeats the 16 KB line: every line of output is short
  for (const l of r.stderr.split('\n')) assert.ok(l.length < EXCERPT_WIDTH + 200, `a ${l.length}-character line`)
  // an address reached through *a is reported at the alias (line 14 is t1's `addresses: *a`)
  assert.match(r.stderr, /:14:16: tunnel "t1": address 10\.0\.0\.1 is also assigned to tunnel "t0"\n {6}addresses: \*a\n {17}\^/)
  // --json: the same bound
  const j = cli(['validate', f, '--json'])
  assert.is(j.code, 65)
  const v = JSON.parse(j.stdout)
  assert.is(v.diagnostics.length, MAX_DIAGNOSTICS)
  assert.ok(v.error.omitted > 10_000)
  assert.ok(j.stdout.length < 256 * 1024, `${j.stdout.length} bytes of JSON`)
})

test('in-process: the anchored spec parses in well under a second', () => {
  const t0 = Date.now()
  const e = specError(anchoredSpec())
  assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`)
  assert.is(e.diagnostics.length, MAX_DIAGNOSTICS)
  assert.ok(e.omitted > 10_000)
})

test('alias expansion is limited (a billion-laughs document is an error, not a hang)', () => {
  let s = 'version: 1\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n'
  for (let i = 1; i < 9; i++) s += `x${i}: &x${i} [${Array(10).fill(`*x${i - 1}`).join(', ')}]\n`
  s += 'tunnels: {}\n'
  const t0 = Date.now()
  const e = specError(s)
  assert.ok(Date.now() - t0 < 3000)
  assert.match(e.message, /alias|resource exhaustion/i)
})

test('larger than 4 MiB: exit 65 with a clear message (file and stdin)', () => {
  const f = join(scratch, 'huge.yaml')
  writeFileSync(f, 'version: 1\n' + '#'.repeat(MAX_SPEC_BYTES))
  for (const r of [cli(['validate', f]), cli(['validate', '-'], 'version: 1\n' + '#'.repeat(MAX_SPEC_BYTES))]) {
    assert.is(r.code, 65, r.stderr)
    assert.match(r.stderr, /:1:1: the file is larger than 4 MiB, the most tunctl reads as a spec\n$/)
  }
  assert.throws(() => decodeSpec('x', new Uint8Array(MAX_SPEC_BYTES + 1)), /larger than 4 MiB/)
  assert.is(decodeSpec('x', new Uint8Array(10).fill(0x20)), ' '.repeat(10))
})

test('not UTF-8: refused at the first bad byte (line:col in characters), stdin too', () => {
  const bytes = Buffer.concat([Buffer.from('version: 1\ntunnels:\n  gré1:\n    mode: gre '), Buffer.from([0xc3, 0x28]), Buffer.from('\n')])
  try {
    decodeSpec('t.yaml', bytes)
    assert.unreachable()
  } catch (e) {
    assert.instance(e, SpecError)
    const d = (e as SpecError).diagnostics[0]!
    assert.equal([d.line, d.column], [4, 15])
    assert.match(d.message, /not UTF-8: byte 0xc3/)
  }
  const r = cli(['validate', '-'], '')
  assert.is(r.code, 65) // empty stdin: an empty spec, as before
  // overlongs, surrogates and out-of-range code points are not UTF-8 either
  assert.is(firstInvalidUtf8(Buffer.from([0x41, 0xc0, 0x80])), 1)
  assert.is(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80])), 0)
  assert.is(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80])), 0)
  assert.is(firstInvalidUtf8(Buffer.from('ünï 🚀', 'utf8')), -1)
  // a BOM is dropped
  assert.is(decodeSpec('t', Buffer.from('\ufeffversion: 1\n', 'utf8')), 'version: 1\n')
})

test("Node's isUtf8 (decodeSpec's fast check) and firstInvalidUtf8 agree on what is UTF-8", () => {
  const cases = [
    [0x41, 0xc0, 0x80], [0xc1, 0xbf], [0xc2, 0x80], [0xdf, 0xbf], [0xe0, 0x9f, 0x80], [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf],
    [0xed, 0xa0, 0x80], [0xef, 0xbf, 0xbf], [0xf0, 0x8f, 0x80, 0x80], [0xf0, 0x90, 0x80, 0x80], [0xf4, 0x8f, 0xbf, 0xbf],
    [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xc3], [0xe2, 0x82], [0x80], [0xff], [],
  ].map((b) => Buffer.from(b))
  // and random bytes, mostly near the multi-byte lead and continuation ranges (a fixed seed)
  let seed = 0x2545f491
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 0xff
  const pick = [0x41, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff]
  for (let i = 0; i < 3000; i++) cases.push(Buffer.from(Array.from({length: 1 + (next() % 6)}, () => (next() & 1 ? pick[next() % pick.length]! : next()))))
  let valid = 0
  for (const b of cases) {
    assert.is(isUtf8(b), firstInvalidUtf8(b) < 0, b.toString('hex'))
    if (isUtf8(b)) valid++
  }
  assert.ok(valid > 100 && valid < cases.length - 100, `both kinds among the random cases (${valid} valid of ${cases.length})`)
})

test('keys as written: 0x10 names a tunnel "0x10"; 16 and "16" are the same key', () => {
  const ok = parseSpec('t.yaml', 'version: 1\ntunnels:\n  0x10:\n    mode: gre\n    local: 192.0.2.1\n  16:\n    mode: gre\n    local: 192.0.2.2\n', {rtTables: new Map()})
  assert.equal(ok.tunnels.map((t) => t.name), ['0x10', '16'])
  const e = specError('version: 1\ntunnels:\n  16:\n    mode: gre\n    local: 192.0.2.1\n  "16":\n    mode: gre\n    local: 192.0.2.2\n')
  assert.match(e.message, /^t\.yaml:6:3: YAML syntax error: Map keys must be unique/)
})

test('excerpts: clipped around the column, caret under it; control characters in the source escaped', () => {
  const long = 'x'.repeat(500) + 'HERE' + 'y'.repeat(500)
  const ex = clipExcerpt(long, 501)
  const [src, caret] = ex.split('\n') as [string, string]
  assert.ok(src.length <= EXCERPT_WIDTH + 4)
  assert.is(src[caret.length - 1], 'H')
  assert.is(clipExcerpt('\tab', 2), '  \tab\n  \t^')
  const e = specError('version: 1\ntunnels:\n  gre1:\n    mode: gre\n    local: 192.0.2.1\n    ttl: 300 # \x1b[2J\n')
  assert.not.ok(/\x1b/.test(e.message))
  assert.match(e.message, /ttl: 300 # \\e\[2J/)
})

test('key material never in an error: a long hex literal is hidden in excerpts (caret kept in place) and messages', () => {
  const KEY = 'fefe2c6b8612104f7db31a5a08ff185518160a54'
  // no piece of the key (8 hex digits of it) shows anywhere
  const leaks = (s: string) => [...Array(KEY.length - 7).keys()].some((i) => s.includes(KEY.slice(i, i + 8)))
  // a key file given as the spec
  const kf = specError(`out: 0x${KEY}\nin: 0x${KEY.toUpperCase()}\n`)
  assert.not.ok(leaks(kf.message) || leaks(kf.message.toLowerCase()) || leaks(JSON.stringify(kf.toJSON()).toLowerCase()), kf.message)
  assert.is(kf.diagnostics.find((d) => d.pointer === '/out')!.excerpt, '  out: 0x…(hidden)\n  ^')
  // the caret stays under its own value when a hidden literal stands before it, and goes to the start of one it falls in
  const e = specError(`version: 1\ntunnels:\n  g: {mode: gre, local: 192.0.2.1, fwmark: 0x${KEY}, ttl: 300}\n`)
  const shown = '    g: {mode: gre, local: 192.0.2.1, fwmark: 0x…(hidden), ttl: 300}'
  const caretAt = (i: number) => shown + '\n' + ' '.repeat(i) + '^'
  assert.equal(
    e.diagnostics.map((d) => [d.column, d.excerpt]),
    [
      [44, caretAt(shown.indexOf('0x…'))],
      [93, caretAt(shown.indexOf('300'))],
    ],
  )
  assert.is(clipExcerpt(`a 0x${KEY} b`, 10), '  a 0x…(hidden) b\n    ^')
  // a line clipped around the column: hidden before clipping, so no part of the literal shows either
  const long = clipExcerpt('x'.repeat(100) + `0x${KEY}` + 'y'.repeat(100), 150)
  assert.not.ok(leaks(long), long)
  assert.match(long, '0x…(hidden)')
  // messages: a name quoting a key is hidden too; a spec's own hex numbers (at most 8 digits) are not
  const n = specError(`version: 1\ntunnels:\n  0x${KEY}:\n    mode: gre\n    local: 192.0.2.1\n    ttl: 0x1ff\n    fwmark: 0xffffffff1\n`)
  assert.not.ok(leaks(n.message), n.message)
  assert.match(n.message, 'tunnel name "0x…(hidden)" is 42 bytes long')
  assert.match(n.message, '    ttl: 0x1ff\n')
  assert.match(n.message, '    fwmark: 0xffffffff1\n')
})

test.run()
