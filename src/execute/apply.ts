// `tunctl apply FILE` as one library call: lock → recover → observe → plan → journaled execution (verify, roll back)
// → key-file record → (with --confirm) the watchdog that keeps or rolls back the change.
import {removeJournal, writeJournal} from '../lib/journal.js'
import {startTicks} from '../lib/proc.js'
import type {DesiredState, Plan} from '../model/types.js'
import {recordKeyFiles} from '../ipsec/record.js'
import {STDIN_NAME} from '../spec/load.js'
import {startWatchdog, type ConfirmWait} from './confirm.js'
import type {ApplyResult} from './index.js'
import {planSpec, type PlanRequest} from './pipeline.js'
import {executeJournaled, transaction, type TransactionOptions} from './transaction.js'
import {startsEncaps} from './run.js'
import {mark} from '../lib/timing.js'
import {DRIVERS} from '../drivers/index.js'
import type {Drivers} from '../plan/diff.js'
import {compilePlan} from '../plan/lines.js'
import {prepareEngine, releaseEngine} from '../userspace/control.js'

export interface ApplyOptions extends PlanRequest, Pick<TransactionOptions, 'preLock'> {
  verbose?: boolean
  /** seconds to wait for the namespace lock */
  lockTimeout: number
  /** --confirm SECONDS: keep the change only if confirmed in time (a detached watchdog holds the lock meanwhile) */
  confirm?: number
}

export interface ApplyOutcome {
  plan: Plan
  result: ApplyResult
  /** with --confirm (and no signal during the apply): the watchdog now waiting for `tunctl confirm` */
  confirmWait?: ConfirmWait
}

/** Applies `desired`; `onPlan` sees the plan before anything changes (the command prints it). Throws as executeWith does. */
export async function applySpec(desired: DesiredState, opts: ApplyOptions, onPlan: (plan: Plan) => void): Promise<ApplyOutcome> {
  const netns = opts.netns
  return transaction(opts, async (tx) => {
    // an early observation (begun before the parse) only if nothing can have changed since it began
    const {observed, plan} = await planSpec(desired, {...opts, early: tx.undisturbed ? opts.early : undefined})
    // the plan starts userspace tunnels: their engine boots from here on, while the plan is printed and the journal
    // and the state record are written (it creates nothing until the commit of the starts, which comes after the
    // journal; one that no commit takes is stopped below)
    // (a userspace create or replace always starts one, plan/lines.ts compileStep: no compilation needed to know)
    const engine = plan.steps.some((s) => s.driver === 'userspace' && (s.kind === 'create' || s.kind === 'replace')) || (plan.steps.length > 0 && startsEncaps(compilePlan(plan, DRIVERS as Drivers)))
    if (engine) prepareEngine(netns)
    mark(engine ? 'engine launched' : 'no engine needed')
    onPlan(plan)
    if (plan.steps.length === 0) return {plan, result: {applied: false, lines: 0, verified: true, rolledBack: false}}
    let executed
    try {
      executed = await executeJournaled(tx, plan, {netns, verbose: opts.verbose, operation: 'apply', file: desired.file, snapshot: observed, adopted: opts.adopt})
    } finally {
      await releaseEngine(netns)
    }
    const {result, journal} = executed
    // where each vti's keys came from, for export (paths and SPIs only, never key material)
    if (desired.tunnels.some((t) => t.ipsec) || plan.steps.some((s) => s.observed?.ipsec)) recordKeyFiles(netns, desired, STDIN_NAME)
    if (opts.confirm === undefined || tx.signals.signal) {
      removeJournal(netns)
      return {plan, result}
    }
    const deadline = new Date(Date.now() + opts.confirm * 1000).toISOString()
    journal.phase = 'confirm'
    journal.confirm = {seconds: opts.confirm, deadline}
    writeJournal(journal)
    const watchdog = await startWatchdog(netns, journal.id, tx.lock.fd)
    return {plan, result, confirmWait: {id: journal.id, deadline, watchdog, watchdogStart: startTicks(watchdog)}}
  })
}
