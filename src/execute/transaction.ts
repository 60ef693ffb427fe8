// What every mutating command wraps around the executor: signals (before any change one ends the command at once),
// the namespace lock, recovery of an unfinished earlier run, and the journal of the plan in progress (written
// before the first change, kept current at each phase, so a killed run is rolled back by the next command).
import {randomBytes} from 'node:crypto'
import {RollbackError, TunctlError, handleError} from '../lib/errors.js'
import {pausePoint, watchSignals, type SignalWatch} from '../lib/interrupt.js'
import {journalStarted, processStart, removeJournal, writeJournal, type Journal, type JournalPhase} from '../lib/journal.js'
import {withLock, type Lock, type PreLock} from '../lib/lock.js'
import type {ObservedState, Plan} from '../model/types.js'
import {executePlan, type ApplyResult, type ExecHooks} from './index.js'
import {recoverUnfinished} from './recover.js'
import type {ExecPhase, Operation, Residual} from './run.js'
import type {Compiled} from '../plan/lines.js'

export interface TransactionOptions {
  netns?: string
  verbose?: boolean
  /** seconds to wait for the namespace lock (then LockError, exit 75) */
  lockTimeout: number
  /** the lock as it was before the command read anything (lock.ts preLock) */
  preLock?: PreLock
}

export interface Transaction {
  lock: Lock
  signals: SignalWatch
  /** nothing of tunctl's can have changed the namespace since the PreLock was taken: the lock stayed undisturbed
   * and no unfinished run was rolled back (what was observed since then is what observing now would give) */
  undisturbed: boolean
}

/**
 * Runs `fn` holding the namespace lock, after rolling back an unfinished earlier run (recoverUnfinished). A signal
 * before the journal exists ends the command at once (exit 1, nothing changed); executeJournaled arms the rest.
 */
export async function transaction<T>(opts: TransactionOptions, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  const signals = watchSignals((sig) => {
    // through handleError: with --json the one error document on stdout too
    const e = new TunctlError(`${sig}: stopped before any change`)
    e.code = 'interrupted'
    process.exit(handleError(e))
  })
  try {
    return await withLock(
      opts.netns,
      opts.lockTimeout,
      async (lock) => {
        const recovered = await recoverUnfinished({netns: opts.netns, verbose: opts.verbose})
        return fn({lock, signals, undisturbed: lock.undisturbed === true && !recovered})
      },
      undefined,
      opts.preLock,
    )
  } finally {
    signals.dispose()
  }
}

export interface JournaledOptions {
  netns?: string
  verbose?: boolean
  operation: Operation
  /** the spec file (apply) */
  file?: string
  /** the observed state the plan was made from: the rollback target */
  snapshot: ObservedState
  /** foreign tunnels this run hands to tunctl or deletes (a rollback restores them and gives them back) */
  adopted?: string[]
  /** see ExecOptions.verifyError */
  verifyError?: (residual: Residual, compiled: Compiled) => TunctlError
}

/**
 * Journals `plan` and executes it (verify, roll back on failure). On success the journal is left for the caller
 * (remove it, or hand it to the --confirm watchdog); after a complete rollback it is removed, after an incomplete
 * one kept (the next command retries).
 */
export async function executeJournaled(tx: Transaction, plan: Plan, opts: JournaledOptions): Promise<{result: ApplyResult; journal: Journal}> {
  const {netns, signals} = {netns: opts.netns, signals: tx.signals}
  const journal: Journal = {
    version: 1,
    id: randomBytes(8).toString('hex'),
    command: opts.operation,
    pid: process.pid,
    pidStart: processStart(process.pid),
    createdAt: new Date().toISOString(),
    updatedAt: '',
    ...(netns ? {netns} : {}),
    ...(opts.file !== undefined ? {file: opts.file} : {}),
    phase: 'started',
    plan: plan.steps.map((s) => ({name: s.name, kind: s.kind, driver: s.driver})),
    snapshot: opts.snapshot,
    adopted: opts.adopted ?? [],
    started: [],
  }
  removeJournal(netns) // a started-log left by a removal cut short (recoverUnfinished ran: no journal is pending)
  writeJournal(journal)
  const hooks = journalHooks(journal, signals)
  signals.arm((sig, first) => {
    if (!first) process.stderr.write(`tunctl: ${sig}: already stopping, please wait (the next tunctl command rolls back whatever a SIGKILL leaves)\n`)
    else if (hooks.batchStarted()) process.stderr.write(`tunctl: ${sig}: the batch is running; letting it finish and verifying\n`)
    else process.stderr.write(`tunctl: ${sig}: rolling back (the batch has not run)\n`)
  })
  try {
    const result = await executePlan(plan, {netns, verbose: opts.verbose, snapshot: opts.snapshot, adopted: new Set(opts.adopted ?? []), hooks, operation: opts.operation, verifyError: opts.verifyError})
    return {result, journal}
  } catch (e) {
    // rolled back: the journal is done with; an incomplete rollback keeps it, so the next command retries
    if (!(e instanceof RollbackError)) removeJournal(netns)
    throw e
  }
}

/** Exec hooks that keep the journal current, honour signals and the test pause hook. */
function journalHooks(journal: Journal, signals: SignalWatch): ExecHooks & {batchStarted(): boolean} {
  let batch = false
  const PHASE: Record<ExecPhase, JournalPhase> = {'before-batch': 'started', batch: 'batch', 'after-batch': 'verify', verify: 'verify', rollback: 'rollback'}
  const interrupted = () => signals.signal !== undefined
  return {
    batchStarted: () => batch,
    interrupted: () => signals.signal,
    async phase(p) {
      if (p === 'batch') batch = true
      if (journal.phase !== PHASE[p]) {
        journal.phase = PHASE[p]
        writeJournal(journal)
      }
      await pausePoint(p, interrupted)
    },
    async starting(names) {
      journalStarted(journal, names, false)
    },
    async started(names) {
      journalStarted(journal, names, true)
    },
    async created(names) {
      journal.created = names
      writeJournal(journal)
    },
  }
}
