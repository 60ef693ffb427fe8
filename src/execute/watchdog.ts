// The apply --confirm watchdog: `node dist/execute/watchdog.js NETNS ID` (NETNS '' = default), started detached by
// apply with the namespace lock's fd as fd 3. Keeps the apply if confirm.<ID> appears before the journal's
// deadline; otherwise (or on SIGTERM/SIGINT) rolls the namespace back to the journal's snapshot. See confirm.ts.
import {existsSync, ftruncateSync, writeSync} from 'node:fs'
import {processStart, readJournal, removeJournal, writeJournal} from '../lib/journal.js'
import {confirmFile, removeConfirmRequest, writeResult} from './confirm.js'
import {realSystem} from './index.js'
import {rollbackJournal} from './recover.js'

function log(msg: string) {
  process.stderr.write(`${new Date().toISOString()} [watchdog ${process.pid}] ${msg}\n`)
}

async function main(): Promise<number> {
  const [nsArg, id] = process.argv.slice(2)
  const netns = nsArg || undefined
  if (!id) {
    log('usage: watchdog.js NETNS ID')
    return 64
  }
  const j = readJournal(netns)
  if (!j || j.id !== id || j.phase !== 'confirm' || !j.confirm) {
    log(`no journal ${id} awaiting confirmation`)
    return 1
  }
  let stopNow: string | undefined
  process.on('SIGHUP', () => {})
  for (const s of ['SIGTERM', 'SIGINT'] as const) process.on(s, () => (stopNow ??= s))
  // take the journal over: from now on this process is its owner (the apply waits for this, then lets go of the lock)
  j.pid = process.pid
  j.pidStart = processStart(process.pid)
  writeJournal(j)
  try {
    // fd 3 is the namespace lock the apply handed over: name the holder in it
    ftruncateSync(3, 0)
    writeSync(3, `${process.pid}\n`, 0)
  } catch {}
  const deadline = Date.parse(j.confirm.deadline)
  log(`waiting for confirmation of apply ${id} until ${j.confirm.deadline}`)
  const file = confirmFile(netns, id)
  for (;;) {
    if (existsSync(file)) {
      // the verdict first, then the journal goes (the waiting apply reads a missing journal without a verdict as a crash)
      writeResult(netns, {id, outcome: 'confirmed', at: new Date().toISOString()})
      removeJournal(netns)
      removeConfirmRequest(netns, id)
      log('confirmed')
      return 0
    }
    if (stopNow || Date.now() >= deadline) break
    await new Promise((r) => setTimeout(r, Math.max(1, Math.min(100, deadline - Date.now()))))
  }
  const reason = stopNow ? `the watchdog got ${stopNow}` : `not confirmed within ${j.confirm.seconds} s`
  log(`${reason}: rolling back`)
  j.phase = 'rollback'
  writeJournal(j)
  let left: string[]
  try {
    left = await rollbackJournal(j, realSystem({netns}))
  } catch (e) {
    left = [`rollback itself failed: ${e instanceof Error ? e.message : String(e)}`]
  }
  writeResult(netns, {id, outcome: left.length ? 'rollback-incomplete' : 'rolled-back', at: new Date().toISOString(), reason, ...(left.length ? {leftovers: left} : {})})
  removeJournal(netns)
  removeConfirmRequest(netns, id)
  log(left.length ? `rollback incomplete:\n  ${left.join('\n  ')}` : 'rolled back')
  return 0
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log(`internal error: ${e?.stack ?? e}`)
    process.exit(70)
  },
)
