// apply --confirm: the detached watchdog that keeps an apply only if `tunctl confirm` comes in time, and the files
// it shares with `tunctl confirm` and the waiting apply.
//
//   journal.json (phase confirm, confirm.deadline)  the apply to roll back; its pid is the watchdog's
//   confirm.<id>                                    written by `tunctl confirm` (or Enter in the waiting apply)
//   confirm-result.json                             {id, outcome: confirmed|rolled-back|rollback-incomplete, …}
//
// The watchdog holds the namespace lock (the apply hands it its lock fd), so nothing else changes the namespace
// while a change waits for confirmation; it runs in its own session, so the apply's terminal or SSH connection
// going away does not touch it. If it dies (SIGKILL, crash) the journal stays and the next command rolls back.
import {existsSync, closeSync, readFileSync, unlinkSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {createInterface} from 'node:readline'
import {EXIT, RollbackError, TunctlError} from '../lib/errors.js'
import {ownerAlive, processStart, readJournal} from '../lib/journal.js'
import {withLock} from '../lib/lock.js'
import {processAlive} from '../lib/proc.js'
import {spawnDetached} from '../lib/exec.js'
import {RUN_DIR_FILES, openAppend, runDir, writeAtomic} from '../lib/rundir.js'
import {recoverUnfinished} from './recover.js'

export interface ConfirmResult {
  id: string
  outcome: 'confirmed' | 'rolled-back' | 'rollback-incomplete'
  at: string
  /** why it was rolled back: the time ran out, or the watchdog was told to stop */
  reason?: string
  leftovers?: string[]
}

/** An apply waiting for confirmation: its journal id, the deadline, and the watchdog holding the lock. */
export interface ConfirmWait {
  id: string
  deadline: string
  watchdog: number
  watchdogStart?: number
}

export function confirmFile(netns: string | undefined, id: string): string {
  return join(runDir(netns), `confirm.${id}`)
}

export function resultFile(netns: string | undefined): string {
  return join(runDir(netns), RUN_DIR_FILES.confirmResult)
}

export function readResult(netns: string | undefined, id?: string): ConfirmResult | undefined {
  try {
    const r = JSON.parse(readFileSync(resultFile(netns), 'utf8')) as ConfirmResult
    return id === undefined || r.id === id ? r : undefined
  } catch {
    return undefined
  }
}

export function writeResult(netns: string | undefined, r: ConfirmResult): void {
  writeAtomic(resultFile(netns), JSON.stringify(r, null, 1) + '\n')
}

/** Asks the watchdog to keep the apply `id`. */
export function requestConfirm(netns: string | undefined, id: string): void {
  writeAtomic(confirmFile(netns, id), `${process.pid}\n`)
}

export function removeConfirmRequest(netns: string | undefined, id: string): void {
  try {
    unlinkSync(confirmFile(netns, id))
  } catch {}
}

const here = dirname(fileURLToPath(import.meta.url))

/** argv of the watchdog: dist/execute/watchdog.js (from the bundle or dist/execute), else the source via tsx. */
export function watchdogArgv(): string[] {
  const node = [process.execPath, ...process.execArgv.filter((a) => /^--(no-|max-|stack-size)/.test(a))]
  for (const js of [join(here, 'watchdog.js'), join(here, '..', 'execute', 'watchdog.js'), join(here, '..', '..', 'dist', 'execute', 'watchdog.js')]) {
    if (existsSync(js)) return [...node, js]
  }
  return [...node, '--import', 'tsx', join(here, 'watchdog.ts')]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Starts the watchdog for the journal `id` (phase confirm) sharing the lock fd, and resolves with its pid once it
 * has taken the journal over (then the caller may close its own lock fd).
 */
export async function startWatchdog(netns: string | undefined, id: string, lockFd: number): Promise<number> {
  const argv = watchdogArgv()
  const log = openAppend(join(runDir(netns), 'confirm.log'))
  let exited: number | null = null
  let child
  try {
    child = spawnDetached([...argv, netns ?? '', id], [log, log, lockFd])
  } finally {
    closeSync(log)
  }
  child.on('exit', (code) => (exited = code ?? -1))
  child.on('error', () => (exited = -1))
  child.unref()
  const pid = child.pid ?? 0
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    const j = readJournal(netns)
    if (j?.id === id && j.pid === pid && j.pidStart === processStart(pid)) return pid
    if (exited !== null) throw new Error(`the confirmation watchdog exited (${exited}) before taking over; see ${join(runDir(netns), 'confirm.log')}`)
    await sleep(20)
  }
  try {
    process.kill(pid, 'SIGKILL')
  } catch {}
  throw new Error('the confirmation watchdog did not start within 15 s')
}

/** Waits for the watchdog's verdict; Enter on a terminal confirms. A signal here stops waiting (the watchdog stays). */
export async function awaitConfirmation(netns: string | undefined, w: ConfirmWait, seconds: number): Promise<ConfirmResult> {
  const cmd = `tunctl confirm${netns ? ` --netns ${netns}` : ''}`
  const tty = Boolean(process.stdin.isTTY)
  process.stderr.write(`tunctl: keep this change? Run \`${cmd}\`${tty ? ' or press Enter here' : ''} within ${seconds} s (by ${w.deadline}); otherwise it is rolled back.\n`)
  const rl = tty ? createInterface({input: process.stdin}) : undefined
  rl?.once('line', () => requestConfirm(netns, w.id))
  let stop: string | undefined
  const onSig = (s: NodeJS.Signals) => (stop = s)
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSig)
  try {
    for (;;) {
      const r = readResult(netns, w.id)
      if (r) return r
      if (stop) {
        process.exitCode = EXIT.FAILED
        const e = new TunctlError(`${stop}: stopped waiting; the change is rolled back at ${w.deadline} unless \`${cmd}\` comes first`)
        e.code = 'not-waiting'
        throw e
      }
      const j = readJournal(netns)
      if (!j || j.id !== w.id || !processAlive({pid: w.watchdog, startTicks: w.watchdogStart})) {
        // the watchdog died without a verdict: roll back now (the confirmation never came)
        if (readResult(netns, w.id)) continue
        removeConfirmRequest(netns, w.id)
        await withLock(netns, 30, async () => recoverUnfinished({netns}))
        return {id: w.id, outcome: 'rolled-back', at: new Date().toISOString(), reason: 'the confirmation watchdog died'}
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  } finally {
    rl?.close()
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(s, onSig)
  }
}

/**
 * `tunctl confirm`: asks the watchdog of the apply awaiting confirmation to keep it and waits (10 s) for its verdict.
 * Nothing waiting, too late, or a dead watchdog (then the unfinished apply is rolled back here) → TunctlError.
 */
export async function confirmApply(netns: string | undefined): Promise<{id: string; file?: string}> {
  const j = readJournal(netns)
  if (!j) {
    const last = readResult(netns)
    const about = last && last.outcome !== 'confirmed' ? ` (the last apply with --confirm was rolled back at ${last.at}: ${last.reason ?? 'not confirmed in time'})` : ''
    throw new TunctlError(`nothing awaits confirmation${netns ? ` in namespace ${netns}` : ''}${about}`)
  }
  if (!ownerAlive(j)) {
    // the apply or its watchdog died: the change was never confirmed in time; converge like any mutating command
    await withLock(netns, 30, async () => recoverUnfinished({netns}))
    throw new TunctlError(`the apply${j.file ? ` of ${j.file}` : ''} (pid ${j.pid}) ${j.phase === 'confirm' ? 'lost its confirmation watchdog' : 'did not finish'}; it was rolled back instead`)
  }
  if (j.phase !== 'confirm') throw new TunctlError(`the apply${j.file ? ` of ${j.file}` : ''} (pid ${j.pid}) is still running; nothing awaits confirmation yet`)
  requestConfirm(netns, j.id)
  const deadline = Date.now() + 10_000
  for (;;) {
    const r = readResult(netns, j.id)
    if (r?.outcome === 'confirmed') break
    if (r) {
      removeConfirmRequest(netns, j.id)
      throw new TunctlError(`too late: the apply${j.file ? ` of ${j.file}` : ''} was rolled back at ${r.at} (${r.reason ?? 'not confirmed in time'})${r.outcome === 'rollback-incomplete' ? `; the rollback is incomplete:\n  ${(r.leftovers ?? []).join('\n  ')}` : ''}`)
    }
    if (Date.now() > deadline) throw new TunctlError(`the confirmation watchdog (pid ${j.pid}) did not answer within 10 s; the request stays in place`)
    await sleep(50)
  }
  return {id: j.id, ...(j.file ? {file: j.file} : {})}
}

/** The error of an apply whose confirmation did not come: rolled back (exit 1) or rolled back incompletely (exit 3). */
export function notConfirmedError(confirmed: ConfirmResult): TunctlError {
  const why = confirmed.reason ?? 'not confirmed in time'
  if (confirmed.outcome === 'rollback-incomplete') return new RollbackError(`${why}, and the rollback is incomplete`, confirmed.leftovers ?? [])
  const e = new TunctlError(`${why}: rolled back to the state before the apply`)
  e.code = 'not-confirmed'
  e.rolledBack = true
  return e
}
