// `tunctl validate` end to end through bin/run (the built dist/): exit codes, stdout/stderr, --json shape.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, readdirSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Ajv} from 'ajv'
import {ensureBuilt} from '../../lib/build.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..')
const bin = join(repo, 'bin', 'run')
const goldenRoot = join(repo, 'test/fixtures/errors')

function run(args: string[], opts: {cwd?: string; input?: string} = {}) {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
  delete env.FORCE_COLOR // uvu sets it; node warns when both are set
  const r = spawnSync(process.execPath, [bin, 'validate', ...args], {cwd: opts.cwd ?? repo, input: opts.input ?? '', encoding: 'utf8', env})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

const outputSchema = JSON.parse(readFileSync(join(repo, 'schemas/validate-output.schema.json'), 'utf8'))
const checkOutput = new Ajv({allErrors: true, allowUnionTypes: true}).compile(outputSchema)
function assertShape(v: unknown) {
  assert.ok(checkOutput(v), JSON.stringify(checkOutput.errors, null, 2))
}

test.before(ensureBuilt)

/** git keeps no 0600: the key files of examples/ and of the golden cases get their mode here (*.open.keys stay 0644). */
function keyModes(): void {
  for (const d of [join(repo, 'examples'), ...readdirSync(goldenRoot).map((c) => join(goldenRoot, c))]) {
    if (!existsSync(d)) continue
    for (const f of readdirSync(d).filter((f) => f.endsWith('.keys'))) chmodSync(join(d, f), f.endsWith('.open.keys') ? 0o644 : 0o600)
  }
}

test('each example file is valid: exit 0, "FILE: valid (N tunnel)"', () => {
  keyModes()
  for (const f of readdirSync(join(repo, 'examples')).filter((f) => f.endsWith('.yaml'))) {
    const r = run([`examples/${f}`])
    assert.is(r.code, 0, r.stderr)
    assert.is(r.stdout, `examples/${f}: valid (1 tunnel)\n`)
    assert.is(r.stderr, '')
  }
})

test('every golden error case: exit 65 (66: a missing key file), stderr exactly stderr.txt, nothing on stdout', () => {
  keyModes()
  const cases = readdirSync(goldenRoot).filter((c) => existsSync(join(goldenRoot, c, 'stderr.txt')))
  assert.ok(cases.length >= 12)
  for (const c of cases) {
    if (c === 'unknown-table') continue // lists the host's rt_tables names
    const r = run(['spec.yaml'], {cwd: join(goldenRoot, c)})
    assert.is(r.code, c.endsWith('-missing') ? 66 : 65, `${c}: ${r.stderr}`)
    assert.fixture(r.stderr, readFileSync(join(goldenRoot, c, 'stderr.txt'), 'utf8'))
    assert.is(r.stdout, '', c)
  }
})

test('--json on a valid file', () => {
  const r = run(['examples/gre.yaml', '--json'])
  assert.is(r.code, 0)
  const v = JSON.parse(r.stdout)
  assert.equal(v, {ok: true, file: 'examples/gre.yaml', tunnels: 1, diagnostics: []})
  assertShape(v)
})

test('--json on an invalid file: diagnostics with file, line, column, pointer; exit 65', () => {
  const r = run(['spec.yaml', '--json'], {cwd: join(goldenRoot, 'wrong-family')})
  assert.is(r.code, 65)
  const v = JSON.parse(r.stdout)
  assertShape(v)
  assert.is(v.ok, false)
  assert.is(v.error.code, 'invalid-spec')
  assert.is(v.error.exitCode, 65)
  assert.equal(v.diagnostics, v.error.diagnostics)
  assert.equal(
    v.diagnostics.map((d: any) => [d.file, d.line, d.column, d.pointer]),
    [
      ['spec.yaml', 9, 9, '/tunnels/sit1/addresses/1'],
      ['spec.yaml', 11, 13, '/tunnels/sit1/routes/0/to'],
    ],
  )
})

test('a key file given as the spec: exit 65, and its keys appear neither on stderr nor in --json', () => {
  const keys = readFileSync(join(repo, 'examples/vti.keys'), 'utf8').match(/0x[0-9a-f]+/g)!
  assert.is(keys.length, 2)
  for (const args of [['examples/vti.keys'], ['examples/vti.keys', '--json']]) {
    const r = run(args)
    assert.is(r.code, 65, r.stderr)
    for (const k of keys) assert.not.ok((r.stdout + r.stderr).includes(k.slice(2, 18)), `key material in the output of ${args.join(' ')}:\n${r.stdout}${r.stderr}`)
    assert.match(args.length > 1 ? r.stdout : r.stderr, 'out: 0x…(hidden)')
  }
})

test('stdin: "-" reads standard input and names it <stdin>', () => {
  const ok = run(['-'], {input: 'version: 1\ntunnels:\n  g:\n    mode: gre\n    local: 192.0.2.1\n  h:\n    mode: gre\n    local: 192.0.2.2\n'})
  assert.is(ok.code, 0, ok.stderr)
  assert.is(ok.stdout, '<stdin>: valid (2 tunnels)\n')
  const bad = run(['-'], {input: 'version: 1\ntunnels:\n  g:\n    mode: gre\n    local: 192.0.2.1\n    ttl: 0\n'})
  assert.is(bad.code, 65)
  assert.is(bad.stderr, 'tunctl: <stdin>:6:10: tunnel "g": ttl must be 1..255 or "inherit"\n      ttl: 0\n           ^\n')
})

test('missing file: exit 66 (and --json says no-input)', () => {
  const r = run(['/nonexistent/tunnels.yaml'])
  assert.is(r.code, 66)
  assert.is(r.stderr, 'tunctl: cannot read /nonexistent/tunnels.yaml: no such file\n')
  const j = run(['/nonexistent/tunnels.yaml', '--json'])
  assert.is(j.code, 66)
  const v = JSON.parse(j.stdout)
  assertShape(v)
  assert.equal([v.ok, v.error.code, v.diagnostics], [false, 'no-input', []])
})

test('usage errors exit 64', () => {
  assert.is(run([]).code, 64)
  assert.is(run(['a.yaml', '--bogus']).code, 64)
})

test('--help lists the exit codes', () => {
  const r = spawnSync(process.execPath, [bin, 'validate', '--help'], {cwd: repo, encoding: 'utf8'})
  assert.is(r.status, 0)
  assert.match(r.stdout, 'EXIT CODES')
  assert.match(r.stdout, /65\s+invalid spec/)
  assert.match(r.stdout, /66\s+input file missing/)
})

test.run()
