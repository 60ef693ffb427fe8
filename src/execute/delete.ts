// `tunctl del`: a plan of deletions (src/plan/delete.ts) through the same executor as apply — journaled, one ip
// batch, the tunnels' SAs and policies, userspace encapsulators stopped, verified, rolled back on any failure.
import {CommandError} from '../lib/errors.js'
import {removeJournal} from '../lib/journal.js'
import {observe} from '../observe/index.js'
import {makeDeletePlan, type DeleteRequest} from '../plan/delete.js'
import type {Compiled} from '../plan/lines.js'
import {XFRM_RESIDUAL, type Residual} from './run.js'
import {executeJournaled, transaction} from './transaction.js'

export interface DeleteOptions extends DeleteRequest {
  netns?: string
  verbose?: boolean
  /** seconds to wait for the namespace lock */
  lockTimeout: number
}

export interface DeleteResult {
  deleted: string[]
  /** names that did not exist (ignoreMissing) */
  missing: string[]
  /** the signal that arrived while the batch ran (the deletions then finished and were verified) */
  interrupted?: string
}

/** Deletes the named tunnels (every name checked before anything runs); throws as apply does (exit 1 restored, 3 not). */
export async function deleteTunnels(names: string[], opts: DeleteOptions): Promise<DeleteResult> {
  const netns = opts.netns
  return transaction(opts, async (tx) => {
    const observed = await observe({netns, counters: false}) // (the deletions compare names, never counters)
    const {plan, missing, foreign} = makeDeletePlan(observed, names, opts)
    const deleted = plan.steps.map((s) => s.name)
    if (!plan.steps.length) return {deleted, missing}
    const {result} = await executeJournaled(tx, plan, {netns, verbose: opts.verbose, operation: 'del', snapshot: observed, adopted: foreign, verifyError: stillPresent(netns)})
    removeJournal(netns)
    return {deleted, missing, ...(result.interrupted ? {interrupted: result.interrupted} : {})}
  })
}

/** What verification found left after the deletions, with the command lines that ran for it. */
export function stillPresent(netns?: string): (residual: Residual, compiled: Compiled) => CommandError {
  const ns = netns ? ['-n', netns] : []
  return (residual, compiled) => {
    const names = residual.filter((r) => r.name !== XFRM_RESIDUAL).map((r) => r.name)
    if (names.length) {
      const ran = compiled.lines.filter((l) => l[0] === 'link' && l[1] === 'del' && names.includes(l[3]!))
      return new CommandError(`still present after delete: ${names.join(', ')}`, ['ip', ...ns, ...(ran[0] ?? ['-batch', '-'])], '')
    }
    const left = residual.flatMap((r) => r.changes.map((c) => String(c.to)))
    return new CommandError(`SAs/policies still present after delete: ${left.join('; ')}`, ['ip', ...ns, '-batch', '-'], '')
  }
}
