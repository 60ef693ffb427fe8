// The apply journal: atomic 0600 file, owner liveness (pid + start time), rollback scope by phase; the pause hook.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {runDir} from '../../../src/lib/rundir.js'
import {journalPath, journalScope, journalStarted, ownerAlive, processStart, readJournal, removeJournal, writeJournal, type Journal} from '../../../src/lib/journal.js'
import {pausePoint} from '../../../src/lib/interrupt.js'

const root = mkdtempSync(join(tmpdir(), 'tunctl-journal-'))
test.after(() => rmSync(root, {recursive: true, force: true}))

const base = (over: Partial<Journal> = {}): Journal => ({
  version: 1,
  id: 'abc',
  command: 'apply',
  pid: process.pid,
  pidStart: processStart(process.pid),
  createdAt: new Date().toISOString(),
  updatedAt: '',
  netns: 'ns1',
  phase: 'started',
  plan: [{name: 'a', kind: 'create'}, {name: 'u', kind: 'create', driver: 'userspace'}],
  snapshot: {tunnels: [], links: ['lo'], kinds: {lo: 'loopback'}},
  adopted: [],
  started: [{name: 'u', done: true}],
  ...over,
})

test('written atomically with mode 0600, read back, removed (with stray temp files)', () => {
  const j = base()
  writeJournal(j, root)
  const p = journalPath('ns1', root)
  assert.is(statSync(p).mode & 0o777, 0o600)
  assert.equal(readJournal('ns1', root)?.id, 'abc')
  writeFileSync(join(runDir('ns1', root), '.journal.json.999.0badc0de.tmp'), 'partial')
  removeJournal('ns1', root)
  assert.is(existsSync(p), false)
  assert.equal(readdirSync(runDir('ns1', root)), [])
  assert.is(readJournal('ns1', root), undefined)
})

test('encapsulator starts go to an append-only log that readJournal merges (no rewrite of the snapshot per start)', () => {
  const j = base({started: []})
  writeJournal(j, root)
  const before = readFileSync(journalPath('ns1', root), 'utf8')
  journalStarted(j, 'u1', false, root)
  journalStarted(j, 'u1', true, root)
  journalStarted(j, 'u2', false, root)
  assert.is(readFileSync(journalPath('ns1', root), 'utf8'), before, 'journal.json not rewritten')
  assert.equal(readJournal('ns1', root)?.started, [{name: 'u1', done: true}, {name: 'u2', done: false}])
  assert.is(statSync(join(runDir('ns1', root), 'journal.started')).mode & 0o777, 0o600)
  removeJournal('ns1', root)
  assert.equal(readdirSync(runDir('ns1', root)), [])
})

test('a torn or foreign file is no journal', () => {
  writeJournal(base(), root)
  writeFileSync(journalPath('ns1', root), '{"version": 1, "id"')
  assert.is(readJournal('ns1', root), undefined)
  writeFileSync(journalPath('ns1', root), '{"version": 2}')
  assert.is(readJournal('ns1', root), undefined)
})

test('owner alive: this process yes; a dead pid or a reused pid (other start time) no', () => {
  assert.is(ownerAlive(base()), true)
  assert.is(ownerAlive(base({pid: 999999999})), false)
  assert.is(ownerAlive(base({pidStart: '1'})), false)
})

test('rollback scope: before the batch only the started encapsulators; killed in the batch: unknown; after it: recorded', () => {
  assert.equal([...journalScope(base()).created!], ['u'])
  assert.is(journalScope(base({phase: 'batch'})).created, undefined)
  assert.equal([...journalScope(base({phase: 'verify', created: ['a']})).created!].sort(), ['a', 'u'])
  assert.equal([...journalScope(base()).touched!].sort(), ['a', 'u'])
})

test('pause hook: writes PATH.reached, waits for PATH, or returns on interrupt; inert without the variables', async () => {
  const f = join(root, 'pause')
  await pausePoint('batch', undefined, {})
  await pausePoint('batch', undefined, {TUNCTL_PAUSE_AT: 'verify', TUNCTL_PAUSE_FILE: f})
  assert.is(existsSync(`${f}.reached`), false)
  let done = false
  const p = pausePoint('batch', undefined, {TUNCTL_PAUSE_AT: 'verify,batch', TUNCTL_PAUSE_FILE: f}).then(() => (done = true))
  for (let i = 0; i < 100 && !existsSync(`${f}.reached`); i++) await new Promise((r) => setTimeout(r, 10))
  assert.ok(existsSync(`${f}.reached`))
  assert.is(done, false)
  writeFileSync(f, '')
  await p
  rmSync(f)
  let sig = false
  const q = pausePoint('verify', () => sig, {TUNCTL_PAUSE_AT: 'verify', TUNCTL_PAUSE_FILE: f})
  sig = true
  await q
})

test.run()
