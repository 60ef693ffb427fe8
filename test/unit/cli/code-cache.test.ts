// bin/run compiles the CommonJS bundle with its V8 code cache (scripts/bundle.mjs makes it after a warm-up run):
// the cache is used for the bundle it was made from, and anything else (another bundle's cache, bytes V8 refuses,
// no cache) falls back to a plain compile with the same output and exit code. TUNCTL_TIMING=1 says which.
import {spawnSync} from 'node:child_process'
import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {BUNDLE, ensureBuilt} from '../../lib/build.js'

const repo = join(import.meta.dirname, '..', '..', '..')
const CACHE = `${BUNDLE}.v8cache`
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-cache-'))

test.before(ensureBuilt)
test.after(() => rmSync(scratch, {recursive: true, force: true}))

function version(bin: string): {code: number | null; out: string; loaded: string} {
  const r = spawnSync(process.execPath, [bin, '--version'], {encoding: 'utf8', env: {...process.env, TUNCTL_TIMING: '1'}})
  return {code: r.status, out: r.stdout, loaded: /\[timing\] \d+ ms bundle loaded \((.*)\)\n/.exec(r.stderr)?.[1] ?? `no mark in: ${r.stderr}`}
}

/** A copy of bin/run, package.json and the bundle (the bundle holds every dependency) with this cache file. */
function copyWith(name: string, cache: Buffer | undefined): string {
  const root = join(scratch, name)
  mkdirSync(join(root, 'bin'), {recursive: true})
  mkdirSync(join(root, 'dist', 'bundle'), {recursive: true})
  copyFileSync(join(repo, 'bin', 'run'), join(root, 'bin', 'run'))
  copyFileSync(join(repo, 'package.json'), join(root, 'package.json'))
  copyFileSync(BUNDLE, join(root, 'dist', 'bundle', 'tunctl.cjs'))
  if (cache) writeFileSync(join(root, 'dist', 'bundle', 'tunctl.cjs.v8cache'), cache)
  return join(root, 'bin', 'run')
}

test('the build makes a code cache for this very bundle, and bin/run uses it', () => {
  const cache = readFileSync(CACHE)
  const hash = createHash('sha256').update(readFileSync(BUNDLE)).digest()
  assert.ok(cache.subarray(0, 32).equals(hash), 'the cache starts with the SHA-256 of the bundle')
  assert.ok(cache.length > 100_000, `a cache with the functions of the warm-up run in it (${cache.length} bytes)`)
  const r = version(join(repo, 'bin', 'run'))
  assert.is(r.code, 0)
  assert.match(r.out, /^tunctl\/\d+\.\d+\.\d+ /)
  assert.is(r.loaded, 'code cache used')
})

test('a cache that does not fit falls back to a plain compile: same output, same exit code', () => {
  const good = readFileSync(CACHE)
  const expected = version(join(repo, 'bin', 'run')).out
  const cases: Array<[string, Buffer | undefined, string]> = [
    ['none', undefined, 'no code cache'],
    // made from another bundle: refused by bin/run before V8 sees it
    ['other', Buffer.concat([Buffer.alloc(32, 7), good.subarray(32)]), 'the code cache is of another bundle: not used'],
    // this bundle's hash, but bytes V8 cannot use (another V8 writes its own version and flag hash in them)
    ['corrupt', Buffer.concat([good.subarray(0, 32), Buffer.alloc(good.length - 32, 0x5a)]), 'code cache rejected by V8 (another Node or V8 flags)'],
  ]
  for (const [name, cache, state] of cases) {
    const r = version(copyWith(name, cache))
    assert.is(r.code, 0, name)
    assert.is(r.out, expected, name)
    assert.is(r.loaded, state, name)
  }
})

test('oclif gets the module bin/run compiled: the bundle is loaded once, also through a symlinked folder', () => {
  // NODE_DEBUG=module logs `load "FILE"` for each file require() actually loads (not one found in its cache)
  const linked = join(scratch, 'linked')
  mkdirSync(join(linked, 'bin'), {recursive: true})
  mkdirSync(join(linked, 'dist'), {recursive: true})
  copyFileSync(join(repo, 'bin', 'run'), join(linked, 'bin', 'run'))
  copyFileSync(join(repo, 'package.json'), join(linked, 'package.json'))
  symlinkSync(dirname(BUNDLE), join(linked, 'dist', 'bundle'))
  for (const bin of [join(repo, 'bin', 'run'), join(linked, 'bin', 'run')]) {
    const r = spawnSync(process.execPath, [bin, '--version'], {encoding: 'utf8', env: {...process.env, NODE_DEBUG: 'module'}})
    assert.is(r.status, 0, r.stderr.slice(-2000))
    assert.match(r.stdout, /^tunctl\//)
    assert.match(r.stderr, /looking for "[^"]*tunctl\.cjs"/, 'oclif did require the bundle')
    assert.not.match(r.stderr, /load "[^"]*tunctl\.cjs"/, `${bin}: the bundle was loaded a second time`)
  }
})

test('a missing bundle: exit 70 with what to do', () => {
  const root = join(scratch, 'unbuilt')
  mkdirSync(join(root, 'bin'), {recursive: true})
  copyFileSync(join(repo, 'bin', 'run'), join(root, 'bin', 'run'))
  const r = spawnSync(process.execPath, [join(root, 'bin', 'run'), '--version'], {encoding: 'utf8'})
  assert.is(r.status, 70)
  assert.is(r.stderr, 'tunctl: not built (dist/bundle/tunctl.cjs is missing): run npm run build\n')
})


test('a Node without vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER (20.5-20.11) require()s the bundle: same output and exit codes', () => {
  // the constant hidden as on Node < 20.12 (package.json engines: >= 20.5)
  const old = ['--import', 'data:text/javascript,import vm from "node:vm"; Object.defineProperty(vm, "constants", {value: undefined})']
  const run = (...args: string[]) => spawnSync(process.execPath, [...old, join(repo, 'bin', 'run'), ...args], {encoding: 'utf8', env: {...process.env, TUNCTL_TIMING: '1'}})
  const v = run('--version')
  assert.is(v.status, 0, v.stderr)
  assert.match(v.stdout, /^tunctl\/\d/)
  assert.match(v.stderr, /bundle loaded \(no code cache \(this Node has no vm\.constants/)
  const missing = run('validate', join(scratch, 'no-such.yaml'))
  assert.is(missing.status, 66, missing.stderr)
  assert.match(missing.stderr, /no-such\.yaml/)
})

test.run()
