// `tunctl del NAME...` as a plan: one delete step per named tunnel, checked all before anything runs. The plan goes
// through the executor like apply's (journal, one batch, xfrm, encapsulator stop, verify, roll back on failure).
import {TunctlError} from '../lib/errors.js'
import type {ObservedState, Plan, PlanStep} from '../model/types.js'
import {countSteps} from './diff.js'

export interface DeleteRequest {
  /** also delete tunnels tunctl does not own */
  force?: boolean
  /** a name that does not exist is not an error */
  ignoreMissing?: boolean
}

export interface DeletePlan {
  plan: Plan
  /** names that do not exist (with ignoreMissing) */
  missing: string[]
  /** foreign tunnels deleted with force (a rollback restores them without the ownership alias) */
  foreign: string[]
}

/**
 * Pure: the delete steps for `names` (duplicates once), or a TunctlError listing every problem (a missing name
 * without ignoreMissing, a tunnel tunctl does not own without force, a link that is not a tunnel) — then nothing runs.
 */
export function makeDeletePlan(observed: ObservedState, names: string[], req: DeleteRequest = {}): DeletePlan {
  const problems: string[] = []
  const missing: string[] = []
  const foreign: string[] = []
  const steps: PlanStep[] = []
  for (const n of new Set(names)) {
    const t = observed.tunnels.find((x) => x.name === n)
    if (!t) {
      if (observed.links.includes(n)) problems.push(`${n} is not a tunnel (kind ${observed.kinds[n] ?? 'unknown'}); tunctl does not delete it`)
      else if (req.ignoreMissing) missing.push(n)
      else problems.push(`no tunnel named ${n} (--ignore-missing to accept that)`)
      continue
    }
    if (!t.owned) {
      if (!req.force) {
        problems.push(`${n} is not managed by tunctl (ifalias is not 'tunctl'); use --force to delete it anyway`)
        continue
      }
      foreign.push(n)
    }
    steps.push({kind: 'delete', name: n, driver: t.driver, changes: [], observed: t})
  }
  if (problems.length) throw new TunctlError(problems.join('\n') + '\nNothing was deleted.')
  return {plan: {steps, counts: countSteps(steps)}, missing, foreign}
}
