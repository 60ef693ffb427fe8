// `npm install -g` of the package gives a working tunctl with its man pages: the package is packed as npm
// would publish it (dist already built by `npm test`, so --ignore-scripts), installed globally into a scratch
// prefix (its install script compiles the native addon there), and the installed command runs.
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import {assertOutputSchema} from '../lib/schemas.js'
import * as assert from 'uvu/assert'

const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..')
const t = suite('npm install -g')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-install-'))
const prefix = join(scratch, 'prefix')

function sh(cmd: string, args: string[], cwd = scratch) {
  const r = spawnSync(cmd, args, {cwd, encoding: 'utf8', timeout: 300_000, env: {...process.env, NO_COLOR: '1'}})
  return {code: r.status, stdout: r.stdout ?? '', out: (r.stdout ?? '') + (r.stderr ?? '')}
}

t('the packed package installs globally: command, native addon, man pages', () => {
  const pack = sh('npm', ['pack', '--ignore-scripts', '--pack-destination', scratch], repo)
  assert.is(pack.code, 0, pack.out)
  const tgz = readdirSync(scratch).find((f) => f.endsWith('.tgz'))
  assert.ok(tgz, pack.out)
  const inst = sh('npm', ['install', '-g', join(scratch, tgz!), '--prefix', prefix, '--no-audit', '--no-fund'])
  assert.is(inst.code, 0, inst.out.slice(-3000))
  const bin = join(prefix, 'bin', 'tunctl')
  const v = sh(bin, ['--version'])
  assert.is(v.code, 0, v.out)
  assert.match(v.out, /^tunctl\/\d+\.\d+\.\d+ /)
  const val = sh(bin, ['validate', join(repo, 'examples', 'gre.yaml')])
  assert.is(val.code, 0, val.out)
  const pkg = join(prefix, 'lib', 'node_modules', 'tunctl')
  assert.ok(existsSync(join(pkg, 'build', 'Release', 'tunctl_native.node')), 'the install script built the native addon')
  for (const page of ['man8/tunctl.8', 'man5/tunctl.yaml.5']) assert.ok(existsSync(join(prefix, 'share', 'man', page)), `${page} installed`)
  const doctor = sh(bin, ['doctor', '--json'])
  const d = JSON.parse(doctor.stdout)
  assertOutputSchema('doctor', d, doctor.out)
  assert.is(d.modes.gre.userspace.available, true, doctor.out)
})

t.after(() => rmSync(scratch, {recursive: true, force: true}))
t.run()
