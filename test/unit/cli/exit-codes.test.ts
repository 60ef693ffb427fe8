// Exit codes of situations no other test reaches, without root or system change: iproute2's ip missing from PATH
// (no mode works with any driver: 69, with the reason, one JSON document with --json) while validate, which never
// touches the system, still works.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {ensureBuilt} from '../../lib/build.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repo, 'bin', 'run')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-exit-'))
const spec = join(scratch, 'one.yaml')
writeFileSync(spec, 'version: 1\ntunnels:\n  g1:\n    mode: gre\n    local: 192.0.2.1\n    remote: 198.51.100.7\n')

test.before(ensureBuilt)
test.after(() => rmSync(scratch, {recursive: true, force: true}))

/** tunctl with a PATH holding no ip (an empty folder), tunctl's state in the scratch folder */
function withoutIp(args: string[]) {
  const env: NodeJS.ProcessEnv = {...process.env, NO_COLOR: '1', PATH: scratch, TUNCTL_RUN_DIR: join(scratch, 'run')}
  delete env.FORCE_COLOR
  const r = spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env, timeout: 30_000})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

test('ip not installed: show, export, plan and apply --dry-run exit 69 naming iproute2; validate works', () => {
  for (const args of [['show'], ['export'], ['plan', spec], ['apply', '--dry-run', spec]]) {
    const r = withoutIp(args)
    assert.is(r.code, 69, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /ip is not installed or not in PATH \(tunctl needs iproute2\)/)
    const j = withoutIp([...args, '--json'])
    const doc = JSON.parse(j.stdout)
    assert.equal([j.code, doc.ok, doc.error.exitCode, doc.error.code], [69, false, 69, 'unavailable'], j.stdout)
  }
  const v = withoutIp(['validate', spec])
  assert.is(v.code, 0, v.stderr)
})

test.run()
