// Execute stage entry point: wires the real system (ip, observe, userspace control) into executeWith.
import {DRIVERS} from '../drivers/index.js'
import {ip, ipBatch} from '../lib/ip.js'
import type {ObservedState, Plan} from '../model/types.js'
import {observe} from '../observe/index.js'
import type {Drivers} from '../plan/diff.js'
import {startEncap, stopEncap} from '../userspace/control.js'
import {xfrmBatch} from '../ipsec/execute.js'
import {setDisablePolicy} from '../ipsec/observe.js'
import {executeWith, failAtLineFromEnv, type ApplyResult, type System} from './run.js'

export {type ApplyResult, type System, verifyPlan, rollbackPlan, INJECTED_FAILURE_LINE} from './run.js'

export interface ExecuteOptions {
  netns?: string
  verbose?: boolean
  /** kept for the documented interface; the lock is taken by the command around observe → plan → execute */
  lockTimeout?: number
  /** the observed state the plan was computed from (rollback target) */
  snapshot?: ObservedState
  /** --adopt names: foreign tunnels this apply hands to tunctl (a rollback gives them back) */
  adopted?: Set<string>
}

export function realSystem(opts: {netns?: string; verbose?: boolean}): System {
  const o = {netns: opts.netns, verbose: opts.verbose}
  return {
    observe: (o) => observe({netns: opts.netns, ...o}),
    ipBatch: (lines) => ipBatch(lines, o),
    ip: (args) => ip(args, o),
    startEncap: async (name, params) => {
      if (opts.verbose) process.stderr.write(`[#] (userspace) start ${name}\n`)
      await startEncap(name, params, {netns: opts.netns})
    },
    stopEncap: async (name) => {
      if (opts.verbose) process.stderr.write(`[#] (userspace) stop ${name}\n`)
      await stopEncap(name, {netns: opts.netns})
    },
    xfrmBatch: (lines, shown) => xfrmBatch(lines, shown, o),
    disablePolicy: (names) => setDisablePolicy(opts.netns, names, opts.verbose),
  }
}

/** One ip batch, verify by re-observing, roll back on any failure (TUNCTL_FAIL_AT_LINE=N injects a failure). */
export async function executePlan(plan: Plan, opts: ExecuteOptions): Promise<ApplyResult> {
  return executeWith(realSystem(opts), plan, {
    drivers: DRIVERS as Drivers,
    snapshot: opts.snapshot,
    adopted: opts.adopted,
    failAtLine: failAtLineFromEnv(),
  })
}
