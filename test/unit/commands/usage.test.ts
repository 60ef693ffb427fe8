// Usage errors of the system-facing commands exit 64 before anything is observed or changed: a --netns value
// that is no namespace name, a namespace that does not exist; and `--adopt NAME FILE` leaves FILE an argument.
// With --json each is one JSON document on stdout. Safe anywhere: `ip -n MISSING …` fails without touching any namespace.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {booleanFlagValueProblem, netnsNameProblem} from '../../../src/lib/base.js'
import {ensureBuilt} from '../../lib/build.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repo, 'bin', 'run')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-usage-'))
const spec = join(scratch, 'empty.yaml')
writeFileSync(spec, 'version: 1\ntunnels: {}\n')
const legacy = join(scratch, 'legacy.yaml')
writeFileSync(legacy, 'version: 1\ntunnels:\n  legacy0:\n    mode: gre\n    local: 192.0.2.1\n    remote: 198.51.100.7\n')
const MISSING = `tunctl-no-such-ns-${process.pid}`
/** tunctl's state folder for these runs (TUNCTL_RUN_DIR): a usage error must leave nothing in it */
const runRoot = join(scratch, 'run')

test.before(ensureBuilt)

function tunctl(args: string[]) {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', TUNCTL_RUN_DIR: runRoot}
  delete env.FORCE_COLOR
  const r = spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env, timeout: 30_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

test('netnsNameProblem: plain file names only', () => {
  for (const ok of ['blue', 'ns-1', 'default', '.hidden']) assert.is(netnsNameProblem(ok), undefined, ok)
  for (const bad of ['', '.', '..', '../x', 'a/b']) assert.ok(netnsNameProblem(bad), bad)
})

test('--netns with a path in it: exit 64 for every command that takes it', () => {
  for (const args of [['show'], ['export'], ['doctor'], ['plan', spec], ['apply', spec], ['del', 'x']]) {
    const r = tunctl([...args, '--netns', '../x'])
    assert.is(r.code, 64, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, 'is not a network namespace name')
  }
})

test('a namespace that does not exist: exit 64 naming it (not 1, "host restored"), and no state folder made for it', () => {
  for (const args of [['show'], ['export'], ['doctor'], ['plan', spec], ['apply', spec], ['apply', '--dry-run', spec], ['del', 'x'], ['del', '--ignore-missing', 'x'], ['confirm']]) {
    const r = tunctl([...args, '--netns', MISSING])
    assert.is(r.code, 64, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, `network namespace "${MISSING}" does not exist`)
    // apply and del took the namespace lock first, which made TUNCTL_RUN_DIR/ns/MISSING/lock
    assert.not.ok(existsSync(join(runRoot, 'ns', MISSING)), `${args.join(' ')} left ${join(runRoot, 'ns', MISSING)}`)
  }
  const j = tunctl(['show', '--json', '--netns', MISSING])
  assert.is(JSON.parse(j.stdout).error.exitCode, 64)
})

test('an empty NAME is a usage error (show would list every tunnel, del say "no tunnel named "), before any system access', () => {
  for (const args of [['show', ''], ['show', '--json', ''], ['del', ''], ['del', 'x', '', '--ignore-missing']]) {
    const r = tunctl([...args, '--netns', MISSING])
    assert.is(r.code, 64, `${JSON.stringify(args)}: ${r.stderr}`)
    assert.match(r.stderr, 'NAME must not be empty')
  }
})

test('apply --detailed-exitcode without --dry-run is a usage error (it would be ignored), before the file is read', () => {
  const r = tunctl(['apply', '--detailed-exitcode', join(scratch, 'no-such.yaml')])
  assert.is(r.code, 64, r.stderr)
  assert.match(r.stderr, '--detailed-exitcode needs --dry-run')
  const j = tunctl(['apply', '--json', '--detailed-exitcode', spec])
  assert.equal([j.code, JSON.parse(j.stdout).error.exitCode], [64, 64])
})

test('--adopt NAME of a tunnel the file does not list: a usage error (it was ignored), before the system is read', () => {
  for (const cmd of ['plan', 'apply']) {
    const r = tunctl([cmd, '--adopt', 'legacy0', '--adopt', 'other9', spec, '--netns', MISSING])
    assert.is(r.code, 64, r.stderr)
    assert.match(r.stderr, `--adopt legacy0, other9: ${spec} lists no tunnel of that name`)
    assert.not.match(r.stderr, 'does not exist', 'checked before the namespace is looked at')
    const ok = tunctl([cmd, '--adopt', 'legacy0', legacy, '--netns', MISSING])
    assert.match(ok.stderr, 'does not exist', 'a listed name passes on to the namespace')
  }
})

test('--adopt takes one name per flag: FILE after it is still the argument', () => {
  // without multipleNonGreedy oclif would take FILE as a second name and report a missing argument
  const r = tunctl(['plan', '--adopt', 'legacy0', legacy, '--netns', MISSING])
  assert.not.match(r.stderr, 'Missing 1 required arg')
  assert.match(r.stderr, 'does not exist')
  // and a missing FILE is not blamed on --adopt (oclif's note ignores non-greedy flags)
  const m = tunctl(['apply'])
  assert.is(m.code, 64)
  assert.match(m.stderr, 'Missing 1 required arg')
  assert.not.match(m.stderr, 'multiple values')
})

test('--json: every usage error is one JSON document on stdout, unknown commands included', () => {
  for (const args of [['nosuch', '--json'], ['apply', '--json'], ['show', '--json', '--bogus']]) {
    const r = tunctl(args)
    assert.is(r.code, 64, args.join(' '))
    const j = JSON.parse(r.stdout) // throws on no output or on two documents
    assert.equal([j.ok, j.error.exitCode], [false, 64], r.stdout)
  }
})

test('booleanFlagValueProblem: every boolean flag of every command, by name, alias, --no- and char; not after --', async () => {
  const {COMMANDS} = await import('../../../src/cli.js')
  let seen = 0
  for (const [id, cls] of Object.entries(COMMANDS)) {
    const flags = (cls as {flags?: Record<string, any>}).flags ?? {}
    for (const [name, f] of Object.entries(flags)) {
      const given = [`--${name}=false`, `--${name}=`, ...(f.char ? [`-${f.char}=0`] : []), ...(f.allowNo ? [`--no-${name}=1`] : [])]
      for (const arg of given) {
        const why = booleanFlagValueProblem(flags, ['x', arg])
        if (f.type === 'boolean') {
          seen++
          assert.ok(why, `${id} ${arg}`)
          assert.match(why!, `${arg.slice(0, arg.indexOf('='))} takes no value`)
        } else assert.is(why, undefined, `${id} ${arg}: not a boolean flag`)
      }
      if (f.type === 'boolean') {
        assert.is(booleanFlagValueProblem(flags, [`--${name}`, 'x']), undefined, `${id} --${name}`)
        assert.is(booleanFlagValueProblem(flags, ['--', `--${name}=false`]), undefined, `${id} -- --${name}=false`)
      }
    }
  }
  assert.ok(seen >= 20, `only ${seen} boolean flag spellings checked`)
})

test('a boolean flag with a value (--force=false) is a usage error, exit 64, not the flag plus an argument "false"', () => {
  for (const args of [['del', '--force=false', 'x'], ['del', 'x', '--ignore-missing=true'], ['show', '--all=false'], ['show', '--json=true'], ['apply', '--dry-run=false', spec], ['apply', '-v=1', spec], ['plan', '--prune=no', spec], ['plan', spec, '--detailed-exitcode=0'], ['export', '--all=false']]) {
    const r = tunctl(args)
    assert.is(r.code, 64, `${args.join(' ')}: ${r.stderr}`)
    const arg = args.find((a) => a.includes('='))!
    assert.match(r.stderr, `${arg.slice(0, arg.indexOf('='))} takes no value`, args.join(' '))
    assert.not.match(r.stderr, 'no tunnel named', args.join(' '))
  }
  const j = tunctl(['del', '--json', '--force=false', 'x'])
  assert.is(j.code, 64)
  assert.equal([JSON.parse(j.stdout).error.exitCode, JSON.parse(j.stdout).error.code], [64, 'usage'])
})

test('an argument a command does not take: "Unexpected argument", exit 64 (not "command export:extra not found")', () => {
  for (const args of [['export', 'extra'], ['doctor', 'x'], ['confirm', 'now'], ['export', '--all', 'extra'], ['show', 'a', 'b'], ['validate', spec, 'b']]) {
    const r = tunctl(args)
    assert.is(r.code, 64, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, `Unexpected argument: ${args.at(-1)}`, args.join(' '))
    assert.not.match(r.stderr, 'not found', args.join(' '))
  }
})

test.after(() => rmSync(scratch, {recursive: true, force: true}))
test.run()
