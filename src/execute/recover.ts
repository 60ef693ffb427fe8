// An apply that never finished (its journal is still there and its owner is gone): reported by every command of
// the namespace; mutating commands (apply, del, confirm) roll the namespace back to the journal's snapshot first.
import {readdirSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {DRIVERS} from '../drivers/index.js'
import {RollbackError} from '../lib/errors.js'
import {describeJournal, journalScope, ownerAlive, processStart, readJournal, removeJournal, writeJournal, type Journal} from '../lib/journal.js'
import {startTicks} from '../lib/proc.js'
import {runDir} from '../lib/rundir.js'
import type {Drivers} from '../plan/diff.js'
import {realSystem} from './index.js'
import {restore, type ExecHooks, type System} from './run.js'

/** Rolls the namespace back to the journal's snapshot; returns what is left. The caller holds the lock. */
export async function rollbackJournal(j: Journal, sys: System, hooks: ExecHooks = {}): Promise<string[]> {
  return restore(sys, j.snapshot, DRIVERS as Drivers, journalScope(j), hooks)
}

/** Removes batch files left by dead tunctl processes (the batch itself ran or not; the journal tells). */
function removeStaleBatchFiles(netns?: string): void {
  const dir = runDir(netns)
  try {
    for (const f of readdirSync(dir)) {
      const m = /^batch\.(\d+)\.\d+$/.exec(f)
      if (m && startTicks(Number(m[1])) === undefined) unlinkSync(join(dir, f))
    }
  } catch {}
}

export interface RecoverOptions {
  netns?: string
  verbose?: boolean
  /** write progress messages here (stderr) */
  log?: (line: string) => void
}

/**
 * For a mutating command holding the namespace lock: if an unfinished apply left its journal, say so and roll the
 * namespace back to the state before that apply (throws RollbackError, exit 3, if that is incomplete).
 * Returns the journal that was rolled back, if any.
 */
export async function recoverUnfinished(opts: RecoverOptions): Promise<Journal | undefined> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`tunctl: ${l}\n`))
  const j = readJournal(opts.netns)
  removeStaleBatchFiles(opts.netns)
  if (!j) return undefined
  if (j.pid === process.pid) return undefined
  const why = j.phase === 'confirm' ? 'its confirmation never came' : 'it did not finish'
  log(`found ${describeJournal(j)}: ${why}; rolling back to the state before it`)
  // this process owns the journal now (a crash during the recovery leaves it for the next command)
  j.pid = process.pid
  j.pidStart = processStart(process.pid)
  j.phase = 'rollback'
  writeJournal(j)
  let left: string[]
  try {
    left = await rollbackJournal(j, realSystem({netns: opts.netns, verbose: opts.verbose}))
  } catch (e) {
    left = [`rollback itself failed: ${e instanceof Error ? e.message : String(e)}`]
  }
  removeJournal(opts.netns)
  if (left.length) throw new RollbackError(`an unfinished earlier ${j.command} could not be rolled back completely`, left)
  log(`rolled back the unfinished ${j.command}; the namespace is as it was before it`)
  return j
}

/** For read-only commands: report an unfinished apply (or one awaiting confirmation) on stderr. */
export function reportUnfinished(netns: string | undefined, log: (line: string) => void = (l) => process.stderr.write(`tunctl: ${l}\n`)): Journal | undefined {
  const j = readJournal(netns)
  if (!j) return undefined
  if (ownerAlive(j)) {
    if (j.phase === 'confirm') log(`note: ${describeJournal(j)}; it is rolled back unless \`tunctl confirm${netns ? ` --netns ${netns}` : ''}\` comes first`)
    return j
  }
  log(`warning: found ${describeJournal(j)} whose process is gone: the namespace may be part-way; the next apply, del or confirm rolls it back first`)
  return j
}
