// --help for tunctl and each command (PRODUCT.md "Docs"), and -h as its short form: the same text, exit 0, with the
// exit-code table and every flag of the command; nothing on stderr.
import {spawnSync} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {EXIT_TABLE} from '../../../src/lib/errors.js'
import {ensureBuilt} from '../../lib/build.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repo, 'bin', 'run')
const COMMANDS = ['apply', 'plan', 'show', 'del', 'validate', 'export', 'doctor', 'confirm']

test.before(ensureBuilt)

function tunctl(args: string[]) {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1'}
  delete env.FORCE_COLOR
  const r = spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env, timeout: 30_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

test('tunctl --help and -h: every command listed', () => {
  const long = tunctl(['--help'])
  assert.is(long.code, 0, long.stderr)
  for (const c of COMMANDS) assert.match(long.stdout, new RegExp(`^  ${c}\\b`, 'm'), c)
  const short = tunctl(['-h'])
  assert.equal([short.code, short.stdout, short.stderr], [0, long.stdout, ''])
})

test('COMMAND --help and -h: the same text, with every exit code; -h anywhere among the arguments', async () => {
  const {COMMANDS: classes} = await import('../../../src/cli.js')
  for (const c of COMMANDS) {
    const long = tunctl([c, '--help'])
    assert.is(long.code, 0, `${c}: ${long.stderr}`)
    assert.is(long.stderr, '')
    // every code listed, the texts in one column (oclif trims leading blanks: padding left would be lost)
    const columns = new Set<number>()
    for (const [code, text] of EXIT_TABLE) {
      const line = long.stdout.split('\n').find((l) => new RegExp(`^\\s*${code}\\s+${text.slice(0, 12).replace(/[()]/g, '\\$&')}`).test(l))
      assert.ok(line, `${c} --help lists exit ${code}`)
      columns.add(line!.indexOf(text.slice(0, 12)))
    }
    assert.is(columns.size, 1, `${c} --help: the exit code texts start in one column`)
    const flags = Object.keys((classes as Record<string, {flags?: Record<string, unknown>}>)[c]!.flags ?? {})
    for (const f of flags) assert.match(long.stdout, `--${f}`, `${c} --help shows --${f}`)
    const short = tunctl([c, '-h'])
    assert.equal([short.code, short.stdout, short.stderr], [0, long.stdout, ''], `${c} -h`)
    assert.is(tunctl([c, '--json', '-h']).stdout, long.stdout, `${c} --json -h is help too`)
  }
})

test('tunctl help [COMMAND]: the text of --help, exit 0; an unknown COMMAND is a usage error (64)', () => {
  const root = tunctl(['help'])
  assert.equal([root.code, root.stderr], [0, ''])
  assert.is(root.stdout, tunctl(['--help']).stdout)
  assert.match(root.stdout, /^  help\b/m)
  for (const c of [...COMMANDS, 'help']) {
    const h = tunctl(['help', c])
    assert.equal([h.code, h.stderr], [0, ''], `help ${c}`)
    assert.is(h.stdout, tunctl([c, '--help']).stdout, `help ${c} is ${c} --help`)
  }
  const bad = tunctl(['help', 'nosuch'])
  assert.is(bad.code, 64, bad.stderr)
  assert.match(bad.stderr, 'no command named "nosuch"')
  assert.is(tunctl(['help', 'del', 'x']).code, 64)
})

test.run()
