// The journal of the apply in progress: runDir(netns)/journal.json (0600, written atomically before the first
// mutation, rewritten at each phase, removed when the apply ends). A journal left behind means the apply never
// finished (SIGKILL, crash, power cut of a --confirm wait); the next command in the namespace reports it and,
// if it mutates, rolls the namespace back to the journal's snapshot first (src/execute/recover.ts).
import {closeSync, fsyncSync, readFileSync, unlinkSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import type {RestoreScope} from '../execute/run.js'
import type {ObservedState} from '../model/types.js'
import {setLockHint} from './lock.js'
import {processAlive, startTicks} from './proc.js'
import {RUN_DIR_FILES, ensureRunDir, openAppend, removeTempFiles, runDir, runRoot, writeAtomic} from './rundir.js'

export type JournalPhase =
  /** written before the first mutation; userspace encapsulators may be starting */
  | 'started'
  /** the ip batch is running */
  | 'batch'
  /** the batch finished; verifying */
  | 'verify'
  /** rolling back after a failure or an interrupt */
  | 'rollback'
  /** applied and verified; waiting for `tunctl confirm` until confirm.deadline */
  | 'confirm'

export interface Journal {
  version: 1
  /** random id of this apply (tunctl confirm and the watchdog agree on it) */
  id: string
  /** the command whose plan this is (del: a plan of deletions) */
  command: 'apply' | 'del'
  /** the process that owns the journal (the apply, or its --confirm watchdog), with its start time (pid reuse) */
  pid: number
  pidStart?: string
  createdAt: string
  updatedAt: string
  netns?: string
  file?: string
  phase: JournalPhase
  /** the plan: step names and kinds (what this apply may have created or changed) */
  plan: Array<{name: string; kind: string; driver?: string}>
  /** the observed state the plan was made from: the rollback target */
  snapshot: ObservedState
  /** --adopt names (a rollback gives them back) */
  adopted: string[]
  /** userspace encapsulators this apply started (recorded before each start); done once it ran */
  started: Array<{name: string; done: boolean}>
  /** names this apply is known to have created (its `link add` line ran), when known */
  created?: string[]
  confirm?: {seconds: number; deadline: string}
}

export function journalPath(netns: string | undefined, root = runRoot()): string {
  return join(runDir(netns, root), RUN_DIR_FILES.journal)
}

/** The append-only companion of the journal: one `start NAME` / `done NAME` line per encapsulator start, so that
 * recording a start costs one small append, not a rewrite of the whole journal (its snapshot can be megabytes). */
export function startedLogPath(netns: string | undefined, root = runRoot()): string {
  return join(runDir(netns, root), 'journal.started')
}

export function writeJournal(j: Journal, root = runRoot()): void {
  ensureRunDir(j.netns, root)
  j.updatedAt = new Date().toISOString()
  writeAtomic(journalPath(j.netns, root), JSON.stringify(j) + '\n')
}

/**
 * Records (durably, before it happens) that encapsulators are being started, or that their starts completed: one
 * append and one fsync for all of `names` (an apply of 1000 userspace tunnels records its starts before its one
 * engine commit, not with 1000 fsyncs).
 */
export function journalStarted(j: Journal, names: string | string[], done: boolean, root = runRoot()): void {
  const list = typeof names === 'string' ? [names] : names
  if (!list.length) return
  const byName = new Map(j.started.map((x) => [x.name, x]))
  for (const name of list) {
    const e = byName.get(name)
    if (e) e.done = done
    else {
      const entry = {name, done}
      j.started.push(entry)
      byName.set(name, entry)
    }
  }
  const fd = openAppend(startedLogPath(j.netns, root))
  try {
    const buf = Buffer.from(list.map((name) => `${done ? 'done' : 'start'} ${name}\n`).join(''))
    let off = 0
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

export function readJournal(netns: string | undefined, root = runRoot()): Journal | undefined {
  let text: string
  try {
    text = readFileSync(journalPath(netns, root), 'utf8')
  } catch {
    return undefined
  }
  let j: Journal
  try {
    j = JSON.parse(text) as Journal
    if (j?.version !== 1 || !j.snapshot || !Array.isArray(j.plan)) return undefined
  } catch {
    return undefined
  }
  j.started = Array.isArray(j.started) ? j.started : []
  let log = ''
  try {
    log = readFileSync(startedLogPath(netns, root), 'utf8')
  } catch {}
  const byName = new Map(j.started.map((x) => [x.name, x]))
  for (const line of log.split('\n')) {
    const m = /^(start|done) (\S+)$/.exec(line)
    if (!m) continue
    const e = byName.get(m[2]!)
    if (e) e.done = e.done || m[1] === 'done'
    else {
      const entry = {name: m[2]!, done: m[1] === 'done'}
      j.started.push(entry)
      byName.set(entry.name, entry)
    }
  }
  return j
}

export function removeJournal(netns: string | undefined, root = runRoot()): void {
  try {
    unlinkSync(journalPath(netns, root))
  } catch {}
  try {
    unlinkSync(startedLogPath(netns, root))
  } catch {}
  // a temp file left by a writer that died between write and rename
  removeTempFiles(runDir(netns, root), {of: [RUN_DIR_FILES.journal]})
}

/** Start time of a process as the journal records it (pidStart: src/lib/proc.ts startTicks as a string). */
export function processStart(pid: number): string | undefined {
  const t = startTicks(pid)
  return t === undefined ? undefined : String(t)
}

/** Whether the journal's owner still runs (same pid, same start time: src/lib/proc.ts processAlive). */
export function ownerAlive(j: Journal): boolean {
  return processAlive({pid: j.pid || undefined, startTicks: j.pidStart === undefined ? undefined : Number(j.pidStart)})
}

/** The journal's rollback scope: only what that apply created or started. */
export function journalScope(j: Journal): RestoreScope {
  const started = j.started ?? []
  // the batch had not run: the only things it can have made are its encapsulators; once the batch ended the
  // link adds that ran are recorded; killed while the batch ran: unknown, so new alias-less links of its steps
  const created = j.created ? new Set([...j.created, ...started.map((x) => x.name)]) : j.phase === 'started' ? new Set(started.map((x) => x.name)) : undefined
  return {touched: new Set(j.plan.map((s) => s.name)), created, adopted: new Set(j.adopted ?? []), started}
}

export function describeJournal(j: Journal): string {
  const what = j.phase === 'confirm' ? `awaiting confirmation until ${j.confirm?.deadline ?? '?'}` : `phase ${j.phase}`
  return `${j.command === 'del' ? 'a del' : 'an apply'}${j.file ? ` of ${j.file}` : ''} (pid ${j.pid}, started ${j.createdAt}, ${what}, ${j.plan.length} step${j.plan.length === 1 ? '' : 's'})`
}

setLockHint((netns) => {
  const j = readJournal(netns)
  if (j?.phase !== 'confirm' || !ownerAlive(j)) return undefined
  return `${describeJournal(j)} holds it: \`tunctl confirm${netns ? ` --netns ${netns}` : ''}\` keeps that change (then the lock is free), or wait for its rollback`
})
