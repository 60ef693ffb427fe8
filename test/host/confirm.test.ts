// apply --confirm SECONDS and tunctl confirm: confirmed in time (kept), not confirmed (rolled back by the watchdog
// alone, also after the waiting apply is killed), the watchdog killed while waiting (the next command rolls
// back), confirm with nothing to confirm, and the lock held meanwhile (another apply exits 75 naming the reason).
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {nsDir} from '../../src/userspace/paths.js'
import {essence, exited, journalPid, leftovers, REPO, showJson, tunctl, tunctlChild, until} from './lib/cli.js'
import {type Pair, makePair, removePair, whyNoUserspaceCli} from './lib/netns.js'

const scratch = mkdtempSync(join(tmpdir(), 'tunctl-confirm-'))
const PRIOR = join(scratch, 'prior.yaml')
const NEXT = join(scratch, 'next.yaml')
const tun = (name: string, key: number, addr: string) =>
  `  ${name}:\n    mode: gre\n    driver: userspace\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    key: ${key}\n    addresses: [${addr}]\n`
writeFileSync(PRIOR, `version: 1\ntunnels:\n${tun('c0', 500, '10.80.0.1/30')}`)
writeFileSync(NEXT, `version: 1\ntunnels:\n${tun('c0', 500, '10.80.0.5/30')}${tun('c1', 501, '10.80.1.1/30')}`)

const whyNot = whyNoUserspaceCli

const t = suite('apply --confirm and tunctl confirm')
const why = whyNot()
let pair: Pair | undefined
let ns = ''
let prior: Record<string, unknown> = {}
let next: Record<string, unknown> = {}

/** waits until the journal is owned by the watchdog (phase confirm, pid not the apply's); returns its pid */
async function watchdog(apply: number): Promise<number> {
  return until('the confirmation watchdog to take the journal over', () => {
    const f = join(nsDir(ns), 'journal.json')
    if (!existsSync(f)) return undefined
    try {
      const j = JSON.parse(readFileSync(f, 'utf8'))
      return j.phase === 'confirm' && j.pid && j.pid !== apply ? (j.pid as number) : undefined
    } catch {
      return undefined
    }
  })
}

function state(): Record<string, unknown> {
  const tunnels = showJson(ns)
  assert.equal(leftovers(ns, tunnels), [])
  return essence(tunnels)
}

/** after a confirmed or rolled-back apply: its outcome file (confirm-result.json) is no tunnel's state file, so the
 * commands that observe the namespace print no warning about it */
function quietAfterConfirm(): void {
  assert.ok(existsSync(join(nsDir(ns), 'confirm-result.json')), 'the outcome is recorded')
  for (const args of [['show'], ['show', '--all'], ['plan', NEXT], ['export']]) {
    const r = tunctl([...args, '--netns', ns])
    assert.is(r.code, 0, r.err)
    assert.is(r.err, '', `tunctl ${args.join(' ')}: nothing on stderr`)
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

if (why) t.skip(`confirm: skipped: ${why}`, () => {})
else {
  t.before(() => {
    pair = makePair('cnf')
    ns = pair.a
    assert.is(tunctl(['apply', '--netns', ns, PRIOR]).code, 0)
    prior = essence(showJson(ns))
  })
  t.after(() => {
    const pid = journalPid(ns)
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    removePair(pair)
  })

  t('confirm with nothing waiting → exit 1', () => {
    const r = tunctl(['confirm', '--netns', ns])
    assert.is(r.code, 1)
    assert.match(r.err, /nothing awaits confirmation/)
    const j = tunctl(['confirm', '--netns', ns, '--json'])
    assert.is(JSON.parse(j.out).ok, false)
  })

  t('confirmed in time: the change stays; meanwhile the lock is held (another apply exits 75 and says why)', async () => {
    const a = tunctlChild(['apply', '--confirm', '60', '--json', '--netns', ns, NEXT])
    const wd = await watchdog(a.proc.pid!)
    next = essence(showJson(ns))
    assert.is(Object.keys(next).length, 2)
    const other = tunctl(['apply', '--lock-timeout', '0', '--netns', ns, PRIOR])
    assert.is(other.code, 75, other.err)
    assert.match(other.err, /awaiting confirmation/)
    const show = tunctl(['show', '--netns', ns])
    assert.match(show.err, /awaiting confirmation/)
    const c = tunctl(['confirm', '--json', '--netns', ns])
    assert.is(c.code, 0, c.err)
    assert.equal(JSON.parse(c.out).confirmed, true)
    const r = await exited(a, 'the waiting apply')
    assert.is(r.code, 0, r.err)
    const j = JSON.parse(r.out)
    assert.is(j.ok, true)
    assert.is(j.confirmed, true)
    await until('the watchdog to exit', () => !alive(wd))
    assert.equal(state(), next)
    quietAfterConfirm()
    assert.is(journalPid(ns), undefined, 'no journal left')
    assert.is(tunctl(['apply', '--prune', '--lock-timeout', '0', '--netns', ns, PRIOR]).code, 0, 'lock free again')
    assert.equal(state(), prior)
  })

  t('not confirmed: rolled back when the time runs out (exit 1), even with the waiting apply killed', async () => {
    const a = tunctlChild(['apply', '--confirm', '2', '--netns', ns, NEXT])
    const wd = await watchdog(a.proc.pid!)
    a.proc.kill('SIGKILL') // the admin's session dies; the watchdog is on its own
    await exited(a, 'the killed apply')
    await until('the watchdog to roll back and exit', () => !alive(wd), 30_000)
    assert.equal(state(), prior)
    quietAfterConfirm()
    const c = tunctl(['confirm', '--netns', ns])
    assert.is(c.code, 1)
    assert.match(c.err, /rolled back/)
    // and the waiting apply reports the rollback when it is still there
    const b = tunctlChild(['apply', '--confirm', '1', '--json', '--netns', ns, NEXT])
    const r = await exited(b, 'the waiting apply')
    assert.is(r.code, 1, r.err)
    const j = JSON.parse(r.out)
    assert.is(j.ok, false)
    assert.is(j.applied, true)
    assert.is(j.rolledBack, true)
    assert.is(j.error.code, 'not-confirmed')
    await until('no journal', () => journalPid(ns) === undefined)
    assert.equal(state(), prior)
  })

  t('watchdog SIGKILLed while waiting: show reports it, the next command rolls back (the confirmation never came)', async () => {
    const a = tunctlChild(['apply', '--confirm', '60', '--netns', ns, NEXT])
    const wd = await watchdog(a.proc.pid!)
    a.proc.kill('SIGKILL')
    await exited(a, 'the killed apply')
    process.kill(wd, 'SIGKILL')
    await until('the watchdog to die', () => !alive(wd))
    assert.equal(essence(showJson(ns)), next, 'still the unconfirmed change')
    const s = tunctl(['show', '--netns', ns])
    assert.match(s.err, /awaiting confirmation .* whose process is gone/)
    const c = tunctl(['confirm', '--netns', ns])
    assert.is(c.code, 1, 'a confirmation after the watchdog died does not keep the change')
    assert.match(c.err, /rolled back the unfinished apply/)
    assert.match(c.err, /lost its confirmation watchdog/)
    assert.equal(state(), prior)
    assert.is(journalPid(ns), undefined)
  })

  t('watchdog SIGKILLed, then apply: rolled back first, then the new apply runs', async () => {
    const a = tunctlChild(['apply', '--confirm', '60', '--netns', ns, NEXT])
    const wd = await watchdog(a.proc.pid!)
    a.proc.kill('SIGKILL')
    await exited(a, 'the killed apply')
    process.kill(wd, 'SIGKILL')
    await until('the watchdog to die', () => !alive(wd))
    const r = tunctl(['apply', '--prune', '--netns', ns, PRIOR])
    assert.is(r.code, 0, r.err)
    assert.match(r.err, /its confirmation never came; rolling back/)
    assert.match(r.out, /No changes/, 'the rollback already restored the prior state')
    assert.equal(state(), prior)
  })
}

t.run()
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))
