// The run directory: host/ and ns/NAME/ (a netns named "default" or "host" never shares the root namespace's
// directory), 0700 directories and 0600 files whatever the umask, no symlink followed, atomic writes.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {ensureRunDir, legacyRunDir, openAppend, removeTempFiles, runDir, writeAtomic} from '../../../src/lib/rundir.js'
import {closeSync} from 'node:fs'

const base = mkdtempSync(join(tmpdir(), 'tunctl-rundir-'))
test.after(() => rmSync(base, {recursive: true, force: true}))
const mode = (p: string) => lstatSync(p).mode & 0o7777

test('layout: root namespace in host/, netns NAME in ns/NAME/ (never the same directory)', () => {
  const root = join(base, 'a')
  assert.is(runDir(undefined, root), join(root, 'host'))
  assert.is(runDir('default', root), join(root, 'ns', 'default'))
  assert.is(runDir('host', root), join(root, 'ns', 'host'))
  assert.is.not(runDir(undefined, root), runDir('default', root))
  // the older layout, still read: ambiguous for a netns called "default"
  assert.is(legacyRunDir(undefined, root), legacyRunDir('default', root))
})

test('directories 0700 and files 0600 whatever the umask; a looser existing directory is tightened', () => {
  const root = join(base, 'b')
  const old = process.umask(0)
  try {
    const d = ensureRunDir('blue', root)
    for (const p of [root, join(root, 'ns'), d]) assert.is(mode(p), 0o700, p)
    writeAtomic(join(d, 'x.json'), {a: 1})
    assert.is(mode(join(d, 'x.json')), 0o600)
    closeSync(openAppend(join(d, 'x.log')))
    assert.is(mode(join(d, 'x.log')), 0o600)
  } finally {
    process.umask(old)
  }
  const loose = join(base, 'c')
  mkdirSync(join(loose, 'host'), {recursive: true, mode: 0o777})
  process.umask(0o077)
  try {
    ensureRunDir(undefined, loose)
    assert.is(mode(join(loose, 'host')), 0o700)
    assert.is(mode(loose), 0o700)
  } finally {
    process.umask(old)
  }
})

test('a symlink in place of a directory is refused, never followed', () => {
  const root = join(base, 'd')
  const elsewhere = join(base, 'elsewhere')
  mkdirSync(root)
  mkdirSync(elsewhere, {mode: 0o755})
  const before = mode(elsewhere)
  symlinkSync(elsewhere, join(root, 'host'))
  assert.throws(() => ensureRunDir(undefined, root), /symbolic link/)
  assert.is(mode(elsewhere), before) // not chmod-ed through the link
  assert.is.not(before, 0o700)
})

test('writeAtomic: replaces a symlink at the target instead of writing through it; no temporary left', () => {
  const d = ensureRunDir(undefined, join(base, 'e'))
  const victim = join(base, 'victim')
  writeFileSync(victim, 'precious')
  symlinkSync(victim, join(d, 'g.json'))
  writeAtomic(join(d, 'g.json'), {ok: true})
  assert.is(readFileSync(victim, 'utf8'), 'precious')
  assert.ok(lstatSync(join(d, 'g.json')).isFile())
  assert.equal(JSON.parse(readFileSync(join(d, 'g.json'), 'utf8')), {ok: true})
  assert.equal(readdirSync(d), ['g.json'])
  // a log is never opened through a symlink
  symlinkSync(victim, join(d, 'g.log'))
  assert.throws(() => openAppend(join(d, 'g.log')), /ELOOP|symbolic/)
  assert.is(readFileSync(victim, 'utf8'), 'precious')
  assert.ok(existsSync(victim))
})

test('removeTempFiles: a dead writer\'s temp files go, a live writer\'s stay; `of` names the files whose temps all go', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tunctl-temps-'))
  try {
    const dead = 2 ** 22 + 12345 // above pid_max's default range: no such process
    assert.not.ok(existsSync(`/proc/${dead}`))
    const files = [`.g1.stats.json.${dead}.0a1b2c3d.tmp`, `.g1.json.${process.pid}.0a1b2c3d.tmp`, `.journal.json.${process.pid}.deadbeef.tmp`, 'g1.json', `.x.${dead}.nothex.tmp`]
    for (const f of files) writeFileSync(join(dir, f), '{}')
    removeTempFiles(dir)
    assert.equal(readdirSync(dir).sort(), files.filter((f) => !f.startsWith('.g1.stats')).sort())
    removeTempFiles(dir, {of: ['journal.json']})
    assert.equal(readdirSync(dir).sort(), [`.g1.json.${process.pid}.0a1b2c3d.tmp`, 'g1.json', `.x.${dead}.nothex.tmp`].sort())
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test.run()
