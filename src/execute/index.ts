// Execute stage entry point: wires the real system (ip, observe, userspace control) into executeWith.
import {DRIVERS} from '../drivers/index.js'
import {ip, ipBatch, ipJson} from '../lib/ip.js'
import type {ObservedState, Plan} from '../model/types.js'
import {observe} from '../observe/index.js'
import type {Drivers} from '../plan/diff.js'
import {removeTempFiles} from '../lib/rundir.js'
import {applyEncaps, forgetEncap as forgetEncapOf, prepareEngine, startEncap, stopEncap} from '../userspace/control.js'
import {xfrmBatch} from '../ipsec/execute.js'
import {setDisablePolicy} from '../ipsec/observe.js'
import {nsDir} from '../userspace/paths.js'
import {executeWith, failAtLineFromEnv, type ApplyResult, type ExecHooks, type ExecOptions, type Operation, type System} from './run.js'

export {type ApplyResult, type ExecHooks, type Operation, type System, verifyPlan, rollbackPlan, INJECTED_FAILURE_LINE} from './run.js'

/** Removes temporary files of these tunnels' state and counters left by an engine killed in the middle of writing
 * them (one look at the run dir for all of them: a prune of 1000 tunnels read it 1000 times, ~1 s on ext4). */
export function removeEncapTempFiles(names: string | string[], netns?: string): void {
  removeTempFiles(nsDir(netns), {of: [names].flat().flatMap((n) => [`${n}.json`, `${n}.stats.json`])})
}

/** Removes `name` from the namespace's engine and forgets its files; never deletes a link. */
export async function forgetEncap(name: string, netns?: string): Promise<void> {
  await forgetEncapOf(name, {netns})
  removeEncapTempFiles(name, netns)
}

export interface ExecuteOptions {
  netns?: string
  verbose?: boolean
  /** the observed state the plan was computed from (rollback target) */
  snapshot?: ObservedState
  /** --adopt names: foreign tunnels this apply hands to tunctl (a rollback gives them back) */
  adopted?: Set<string>
  /** journal, signals, test pause hook */
  hooks?: ExecHooks
  operation?: Operation
  verifyError?: ExecOptions['verifyError']
}

export function realSystem(opts: {netns?: string; verbose?: boolean}): System {
  const o = {netns: opts.netns, verbose: opts.verbose}
  return {
    // verifying and rolling back compare configuration, never counters
    observe: (o) => observe({netns: opts.netns, counters: false, ...o}),
    ipBatch: (lines) => ipBatch(lines, o),
    ip: (args) => ip(args, o),
    xfrmBatch: (lines, shown) => xfrmBatch(lines, shown, o),
    disablePolicy: (names) => setDisablePolicy(opts.netns, names, opts.verbose),
    linkGroups: async () => {
      const links = await ipJson<any[]>(['link', 'show'], {netns: opts.netns})
      return new Map(links.filter((l) => typeof l?.ifname === 'string').map((l) => [l.ifname as string, String(l.group ?? 'default')]))
    },
    startEncap: async (name, params, ipsec, device) => {
      if (opts.verbose) process.stderr.write(`[#] (userspace) start ${name}\n`)
      await startEncap(name, params, {netns: opts.netns, ...(ipsec ? {ipsec} : {}), ...(device ? {device} : {})})
    },
    stopEncap: async (name) => {
      if (opts.verbose) process.stderr.write(`[#] (userspace) stop ${name}\n`)
      await stopEncap(name, {netns: opts.netns})
      // an engine killed may leave a half-written temporary file
      removeEncapTempFiles(name, opts.netns)
    },
    encapBatch: async (batch) => {
      if (opts.verbose) for (const s of batch.start ?? []) process.stderr.write(`[#] (userspace) start ${s.name}\n`)
      if (opts.verbose) for (const n of batch.stop ?? []) process.stderr.write(`[#] (userspace) stop ${n}\n`)
      if (opts.verbose) for (const n of batch.forget ?? []) process.stderr.write(`[#] (userspace) forget ${n}\n`)
      const r = await applyEncaps(batch, {netns: opts.netns})
      const stopped = [...(batch.stop ?? []), ...(batch.forget ?? [])]
      if (stopped.length) removeEncapTempFiles(stopped, opts.netns)
      return r
    },
    prepareEncaps: () => prepareEngine(opts.netns),
    forgetEncap: async (name) => {
      if (opts.verbose) process.stderr.write(`[#] (userspace) forget ${name}\n`)
      await forgetEncap(name, opts.netns)
    },
  }
}

/** One ip batch, verify by re-observing, roll back on any failure (TUNCTL_FAIL_AT_LINE=N injects a failure). */
export async function executePlan(plan: Plan, opts: ExecuteOptions): Promise<ApplyResult> {
  return executeWith(realSystem(opts), plan, {
    drivers: DRIVERS as Drivers,
    snapshot: opts.snapshot,
    adopted: opts.adopted,
    hooks: opts.hooks,
    failAtLine: failAtLineFromEnv(),
    operation: opts.operation,
    verifyError: opts.verifyError,
  })
}
