// tunctl confirm without root (TUNCTL_RUN_DIR in a scratch folder; this test plays the watchdog): nothing to confirm
// → exit 1; a waiting apply → the confirm request file appears, the watchdog's verdict decides exit 0 / 1; every
// --json document validates against schemas/confirm-output.schema.json; apply --confirm with --dry-run is a usage error.
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import Ajv from 'ajv'
import {processStart} from '../../../src/lib/journal.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const bin = join(repo, 'bin', 'run')
const run = mkdtempSync(join(tmpdir(), 'tunctl-confirm-'))
const env = {...process.env, NO_COLOR: '1', TUNCTL_RUN_DIR: run}
const ajv = new (Ajv as any)({strict: false, allErrors: true})
const valid = ajv.compile(JSON.parse(readFileSync(join(repo, 'schemas', 'confirm-output.schema.json'), 'utf8')))
test.after(() => rmSync(run, {recursive: true, force: true}))

function tunctl(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {encoding: 'utf8', env, timeout: 30_000})
  return {code: r.status, out: r.stdout, err: r.stderr}
}

function tunctlAsync(args: string[]): Promise<{code: number | null; out: string; err: string}> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [bin, ...args], {env})
    let out = ''
    let err = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (err += d))
    c.on('close', (code) => resolve({code, out, err}))
  })
}

/** a journal awaiting confirmation, "owned" by this process (the stand-in watchdog) */
function waiting(ns: string, id: string) {
  mkdirSync(join(run, 'ns', ns), {recursive: true})
  const j = {version: 1, id, command: 'apply', pid: process.pid, pidStart: processStart(process.pid), createdAt: new Date().toISOString(), updatedAt: '', netns: ns, file: 't.yaml', phase: 'confirm', plan: [], snapshot: {tunnels: [], links: [], kinds: {}}, adopted: [], started: [], confirm: {seconds: 60, deadline: new Date(Date.now() + 60_000).toISOString()}}
  writeFileSync(join(run, 'ns', ns, 'journal.json'), JSON.stringify(j))
}

async function until(what: string, cond: () => boolean) {
  const deadline = Date.now() + 20_000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('nothing awaits confirmation → exit 1 (JSON error document)', () => {
  const r = tunctl(['confirm'])
  assert.is(r.code, 1, r.err)
  assert.match(r.err, /nothing awaits confirmation/)
  // in a namespace that does not exist (n0 has no journal here): a usage error like in every command
  const n = tunctl(['confirm', '--netns', 'n0'])
  assert.is(n.code, 64, n.err)
  assert.match(n.err, /network namespace "n0" does not exist/)
  const j = tunctl(['confirm', '--json'])
  assert.is(j.code, 1)
  const doc = JSON.parse(j.out)
  assert.ok(valid(doc), JSON.stringify(valid.errors))
  assert.is(doc.ok, false)
})

test('a waiting apply: confirm writes the request, the verdict "confirmed" → exit 0, schema-valid JSON', async () => {
  waiting('n1', 'id1')
  const p = tunctlAsync(['confirm', '--netns', 'n1', '--json'])
  await until('the confirm request', () => existsSync(join(run, 'ns', 'n1', 'confirm.id1')))
  writeFileSync(join(run, 'ns', 'n1', 'confirm-result.json'), JSON.stringify({id: 'id1', outcome: 'confirmed', at: new Date().toISOString()}))
  rmSync(join(run, 'ns', 'n1', 'journal.json'))
  const r = await p
  assert.is(r.code, 0, r.err)
  const doc = JSON.parse(r.out)
  assert.ok(valid(doc), JSON.stringify(valid.errors))
  assert.equal(doc, {ok: true, confirmed: true, id: 'id1', file: 't.yaml', netns: 'n1'})
})

test('too late: the verdict says rolled back → exit 1, the request is withdrawn', async () => {
  waiting('n2', 'id2')
  const p = tunctlAsync(['confirm', '--netns', 'n2'])
  await until('the confirm request', () => existsSync(join(run, 'ns', 'n2', 'confirm.id2')))
  writeFileSync(join(run, 'ns', 'n2', 'confirm-result.json'), JSON.stringify({id: 'id2', outcome: 'rolled-back', at: new Date().toISOString(), reason: 'not confirmed within 60 s'}))
  const r = await p
  assert.is(r.code, 1)
  assert.match(r.err, /too late: .*rolled back .*not confirmed within 60 s/)
  assert.is(existsSync(join(run, 'ns', 'n2', 'confirm.id2')), false)
})

test('apply --confirm with --dry-run → usage error 64', () => {
  const f = join(run, 'empty.yaml')
  writeFileSync(f, 'version: 1\ntunnels: {}\n')
  const r = tunctl(['apply', '--dry-run', '--confirm', '5', f])
  assert.is(r.code, 64, r.err)
  assert.match(r.err, /--confirm cannot be combined with --dry-run/)
})

test.run()
