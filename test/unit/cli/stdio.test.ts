// bin/run and the terminal, without root or system access: a reader that goes away early (tunctl … | head -1) does
// not turn into Node's exit 13 (oclif's flush waiting for a 'drain' that never comes); FORCE_COLOR does not colour a
// pipe (colour only on a TTY, PRODUCT.md), --help included; oclif's user-plugin lookup in the data folder (which
// warns on stderr when it cannot read it, e.g. root's HOME under setpriv) is off.
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {ensureBuilt} from '../../lib/build.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repo, 'bin', 'run')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-stdio-'))
const spec = join(scratch, 'one.yaml')
writeFileSync(spec, 'version: 1\ntunnels:\n  g1:\n    mode: gre\n    local: 192.0.2.1\n    remote: 198.51.100.7\n')
const ESC = /\x1b\[/

test.before(ensureBuilt)
test.after(() => rmSync(scratch, {recursive: true, force: true}))

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {...process.env, ...extra}
  if (!('NO_COLOR' in extra)) delete e.NO_COLOR
  if (!('FORCE_COLOR' in extra)) delete e.FORCE_COLOR
  return e
}

/** `tunctl ARGS | READER` in bash: tunctl's own exit status (PIPESTATUS[0]) and its stderr. */
function piped(args: string[], reader: string): {code: number; stderr: string} {
  const quoted = [process.execPath, bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  const r = spawnSync('bash', ['-c', `${quoted} 2>"$ERR" | ${reader}; exit "\${PIPESTATUS[0]}"`], {encoding: 'utf8', env: env({ERR: join(scratch, 'err')}), timeout: 30_000})
  const stderr = spawnSync('cat', [join(scratch, 'err')], {encoding: 'utf8'}).stdout
  return {code: r.status ?? -1, stderr}
}

test('a reader that closes early: the command keeps its own exit code (not 13) and says nothing about it', () => {
  // `true` exits before node has loaded, so every write of tunctl meets a closed pipe (EPIPE)
  for (const args of [['--help'], ['validate', '--help'], ['validate', spec], ['validate', '--json', spec]]) {
    const r = piped(args, 'true')
    assert.is(r.code, 0, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`)
    assert.is(r.stderr, '', args.join(' '))
  }
  const bad = join(scratch, 'bad.yaml')
  writeFileSync(bad, 'version: 1\ntunnels:\n  g1:\n    mode: gre\n    ttl: 300\n')
  assert.is(piped(['validate', '--json', bad], 'true').code, 65, 'an error keeps its code too')
  assert.is(piped(['validate', spec], 'head -c1 >/dev/null').code, 0, 'a reader that reads a little and goes')
})

test('stderr to a reader that closes early (2>&1 | true): the error keeps its exit code', () => {
  const bad = join(scratch, 'bad2.yaml')
  writeFileSync(bad, 'version: 1\ntunnels:\n  g1:\n    mode: gre\n    ttl: 300\n')
  for (const [args, code] of [[['validate', bad], 65], [['validate', '--json', bad], 65], [['nosuch'], 64], [['validate', join(scratch, 'missing.yaml')], 66]] as const) {
    const quoted = [process.execPath, bin, ...args].map((a) => `'${a}'`).join(' ')
    const r = spawnSync('bash', ['-c', `${quoted} 2>&1 | true; exit "\${PIPESTATUS[0]}"`], {encoding: 'utf8', env: env(), timeout: 30_000})
    assert.is(r.status, code, `${args.join(' ')} 2>&1 | true: ${r.stderr}`)
  }
})

test('FORCE_COLOR does not colour a pipe, --help included; NO_COLOR neither', () => {
  for (const args of [['--help'], ['apply', '--help'], ['plan', '--help'], ['validate', spec]]) {
    for (const extra of [{FORCE_COLOR: '1'}, {FORCE_COLOR: '3'}, {NO_COLOR: '1', FORCE_COLOR: '1'}]) {
      const r = spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env: env(extra), timeout: 30_000})
      assert.is(r.status, 0, r.stderr)
      assert.not.match(r.stdout + r.stderr, ESC, `${args.join(' ')} with ${JSON.stringify(extra)} on a pipe`)
    }
  }
})

/** `tunctl ARGS` on a pseudo-terminal (script(1)): what the terminal got. Not as a CI job: with CI set (as .ci/run
 * sets it) chalk's colour detection gives no colour even on a terminal, as it should for a CI log. */
function onTty(args: string[], extra: Record<string, string>): string {
  const cmd = [process.execPath, bin, ...args].map((a) => `'${a}'`).join(' ')
  const e = env({TERM: 'xterm', ...extra})
  for (const k of Object.keys(e)) if (k === 'CI' || k === 'CONTINUOUS_INTEGRATION' || k.startsWith('GITHUB_') || k === 'BUILD_NUMBER') delete e[k]
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], {encoding: 'utf8', env: e, timeout: 30_000})
  assert.is(r.status, 0, r.stdout + r.stderr)
  return r.stdout
}

test('on a TTY: colour (help and plan), but none with NO_COLOR set to anything, even empty, nor with TERM=dumb', () => {
  // plan of a tunnel that does not exist (the host namespace is only read); help needs nothing
  for (const args of [['apply', '--help'], ['plan', spec]]) {
    assert.match(onTty(args, {}), ESC, `${args.join(' ')} on a TTY is coloured`)
    for (const extra of [{NO_COLOR: '1'}, {NO_COLOR: ''}, {NO_COLOR: '0', FORCE_COLOR: '1'}, {TERM: 'dumb'}]) {
      const out = onTty(args, extra)
      assert.match(out, args[0] === 'plan' ? /Plan: 1 to create/ : /USAGE/)
      assert.not.match(out, ESC, `${args.join(' ')} with ${JSON.stringify(extra)}`)
    }
  }
})

test('no user-plugin lookup: an unreadable oclif data folder gives no warning', () => {
  // oclif reads $XDG_DATA_HOME/tunctl/package.json for user plugins and warns on anything but ENOENT (here EISDIR)
  const data = join(scratch, 'data')
  mkdirSync(join(data, 'tunctl', 'package.json'), {recursive: true})
  const r = spawnSync(process.execPath, [bin, 'validate', spec], {encoding: 'utf8', env: env({XDG_DATA_HOME: data}), timeout: 30_000})
  assert.is(r.status, 0, r.stderr)
  assert.is(r.stderr, '', 'nothing on stderr')
  assert.match(r.stdout, /valid \(1 tunnel\)/)
})

test.run()
