// Runs a plan against an injected System: userspace actions + one ip batch, verify by re-observing, roll back on failure.
import {CommandError, InterruptedError, RollbackError, TunctlError, VerifyError} from '../lib/errors.js'
import {mark} from '../lib/timing.js'
import type {IpsecParams} from '../ipsec/spec.js'
import type {DesiredState, FieldChange, ObservedState, Plan, TunnelParams} from '../model/types.js'
import {computePlan, diffTunnel, type Drivers} from '../plan/diff.js'
import {compilePlan, describeStep, formatSide, freeGroup, groupDeleteFor, GROUP_DELETE_MIN, stepForLine, type Compiled, type GroupDelete, type GroupedDeletion, type SideAction, type CreatedDevice} from '../plan/lines.js'
import {xfrmLines, targetXfrm} from '../ipsec/plan.js'
import {reconcile, type XfrmSet} from '../ipsec/xfrm.js'

/** Everything execute needs from the outside world (real implementation in ./index.ts, fakes in tests). */
export interface System {
  /** routes: false leaves every tunnel's routes empty (skips the largest dump when nothing involves routes) */
  observe(opts?: {routes?: boolean}): Promise<ObservedState>
  ipBatch(lines: string[][]): Promise<void>
  ip(args: string[]): Promise<void>
  startEncap(name: string, params: TunnelParams, ipsec?: IpsecParams, device?: CreatedDevice): Promise<void>
  stopEncap(name: string): Promise<void>
  /** one engine transaction for an apply's userspace starts and stops (per tunnel: undefined = done, else why it
   * failed); without it, startEncap/stopEncap run one by one */
  encapBatch?(batch: {start?: Array<{name: string; params: TunnelParams; ipsec?: IpsecParams; device?: CreatedDevice}>; stop?: string[]; forget?: string[]}): Promise<Map<string, string | undefined>>
  /** the plan starts userspace tunnels: their engine may start booting now (while the state record is written) */
  prepareEncaps?(): void
  /** stops an encapsulator and forgets its state files, never deleting a link (its start failed or was cut short) */
  forgetEncap?(name: string): Promise<void>
  /** vti ipsec: xfrm lines (keys in `lines`, hidden in `shown`) through their own stdin-fed batch */
  xfrmBatch?(lines: string[][], shown: string[][]): Promise<void>
  /** vti ipsec: disable_policy=1 on these devices */
  disablePolicy?(names: string[]): Promise<void>
  /** every link's group as ip prints it; with it, many userspace deletions run as one group deletion (GroupDelete) */
  linkGroups?(): Promise<Map<string, string>>
}

/**
 * A batch that stopped before its group deletion ran left the devices it moved to the group in place: each goes
 * back to the group it had (the batch's failure stands; a restore that fails too is added to its message).
 */
async function restoreGroups(sys: System, g: GroupedDeletion | undefined, e: unknown): Promise<void> {
  if (!g) return
  const at = e instanceof CommandError ? e.batchLine : undefined
  if (at !== undefined && at > g.line) return
  const back = g.moved.filter((m) => at === undefined || m.line < at)
  if (!back.length) return
  try {
    await sys.ipBatch(back.map((m) => ['link', 'set', 'dev', m.name, 'group', m.from]))
  } catch (r: any) {
    if (e instanceof Error) e.message += `\n(devices moved to group ${g.group} to be deleted together could not all be given their group back: ${r?.message ?? r})`
  }
}

/**
 * The rollback's TUN devices of encapsulators this apply started, deleted as one group (GroupDelete) before the
 * engine is told to stop them, which would otherwise unregister them one grace period at a time. If that fails, the
 * devices get their groups back and the engine's stop deletes them one by one, as without it.
 */
async function deleteStartedAsGroup(sys: System, names: string[]): Promise<void> {
  if (!sys.linkGroups || names.length < GROUP_DELETE_MIN) return
  const groups = await sys.linkGroups()
  const present = names.filter((n) => groups.has(n))
  if (present.length < GROUP_DELETE_MIN) return
  const group = freeGroup(groups)
  const moved = present.map((name, i) => ({line: i + 1, name, from: groups.get(name)!}))
  const lines = [...moved.map((m) => ['link', 'set', 'dev', m.name, 'group', String(group)]), ['link', 'del', 'group', String(group)]]
  try {
    await sys.ipBatch(lines)
  } catch (e) {
    await restoreGroups(sys, {group, line: lines.length, moved}, e)
  }
}

const NO_XFRM: XfrmSet = {sas: [], policies: []}

async function runXfrm(sys: System, x: {lines: string[][]; shown: string[][]}): Promise<void> {
  if (!x.lines.length) return
  if (!sys.xfrmBatch) throw new Error('internal: xfrm lines to run but no xfrm batch runner')
  await sys.xfrmBatch(x.lines, x.shown)
}

/** Where an apply is; the journal records it and the test hook TUNCTL_PAUSE_AT can stop there. */
export type ExecPhase = 'before-batch' | 'batch' | 'after-batch' | 'verify' | 'rollback'

/** What the command wires around execution: journal updates, signals, the test pause hook. */
export interface ExecHooks {
  /** a phase begins (awaited: the journal is written first, a paused test waits here) */
  phase?(p: ExecPhase): Promise<void>
  /** userspace encapsulators are about to start (journal them before they can create anything) / have started;
   * a batched apply reports all of one engine commit's starts in one call (one journal append, one fsync) */
  starting?(names: string[]): Promise<void>
  started?(names: string[]): Promise<void>
  /** the batch ran (fully, or up to its failing line): the names whose link this apply created */
  created?(names: string[]): Promise<void>
  /** the signal that interrupted the apply, if one did: before the batch it stops and rolls back */
  interrupted?(): string | undefined
}

export interface ExecOptions {
  drivers: Drivers
  /** the observed state the plan was made from (the rollback target); observed afresh if missing */
  snapshot?: ObservedState
  /** 1-based batch line to replace with a failing one (TUNCTL_FAIL_AT_LINE, a testing hook) */
  failAtLine?: number
  /** --adopt: foreign tunnels handed to tunctl by this apply (a rollback gives them back) */
  adopted?: Set<string>
  /** delays before re-observing when verification finds differences (default [100, 400]) */
  verifyRetryMs?: number[]
  hooks?: ExecHooks
  /** what runs the plan, for messages ("apply failed …", "… before the del"); default apply */
  operation?: Operation
  /** the error for what verification found left (default: a VerifyError listing every field) */
  verifyError?: (residual: Residual, compiled: Compiled) => TunctlError
}

/** The commands that run a plan through the executor. */
export type Operation = 'apply' | 'del'

export interface ApplyResult {
  /** the batch ran (also when it then failed and was rolled back: see the error's `applied`) */
  applied: boolean
  /** number of ip lines run in the batch */
  lines: number
  verified: boolean
  rolledBack: boolean
  /** the signal that arrived while the batch ran (the apply then finished and was verified) */
  interrupted?: string
}

/** What a rollback may delete or stop: only what this apply created. */
export interface RestoreScope {
  /** plan step names (an alias-less new link of such a name counts as ours when `created` is unknown) */
  touched?: Set<string>
  /** names whose link this apply is known to have created (the batch's `link add` ran); overrides touched */
  created?: Set<string>
  adopted?: Set<string>
  /** userspace encapsulators this apply started (done: the start completed) */
  started?: Array<{name: string; done: boolean}>
}

export type Residual = Array<{name: string; changes: FieldChange[]}>

/** The Residual entry name of xfrm objects (SAs, policies) still differing from the plan's target. */
export const XFRM_RESIDUAL = '(xfrm)'

export const INJECTED_FAILURE_LINE = ['link', 'set', 'dev', 'tunctl-injected-failure', 'up']

/** TUNCTL_FAIL_AT_LINE=N → N (testing hook); anything else → undefined. */
export function failAtLineFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.TUNCTL_FAIL_AT_LINE
  if (!v || !/^\d+$/.test(v)) return undefined
  const n = Number(v)
  return n >= 1 ? n : undefined
}

/** The batch lines actually sent: line N replaced by a failing line when a failure is injected. */
export function batchLines(c: Compiled, failAtLine?: number): string[][] {
  return c.lines.map((l, i) => (failAtLine === i + 1 ? INJECTED_FAILURE_LINE : l))
}

async function side(sys: System, a: SideAction): Promise<void> {
  if (a.op === 'start') return sys.startEncap(a.name, a.params, a.ipsec, a.device)
  if (a.op === 'stop') return sys.stopEncap(a.name)
  try {
    await sys.ip(['link', 'del', 'dev', a.name])
  } catch (e: any) {
    if (!/Cannot find device|does not exist/.test(String(e?.stderr ?? e?.message))) throw e
  }
}

function annotate(e: unknown, prefix: string): unknown {
  if (e instanceof Error && !e.message.startsWith(prefix)) e.message = `${prefix}: ${e.message}`
  return e
}

/** The name each `link add` line of a compiled plan creates, by 1-based batch line. */
function linkAddLines(c: Compiled): Array<{line: number; name: string}> {
  const out: Array<{line: number; name: string}> = []
  c.lines.forEach((l, i) => {
    if (l[0] === 'link' && l[1] === 'add') out.push({line: i + 1, name: c.programs[c.lineStep[i]!]!.step.name})
  })
  return out
}

/** Progress of runCompiled, readable when it throws. */
export interface RunProgress {
  /** the batch was started */
  batch: boolean
  /** names whose link the batch created (known once the batch ended, failed or not) */
  created?: string[]
  /** encapsulators started (done) or being started */
  started: Array<{name: string; done: boolean}>
}

/** Userspace pre-actions, the one batch, userspace post-actions. Failures name the plan step. */
export async function runCompiled(sys: System, c: Compiled, failAtLine?: number, hooks: ExecHooks = {}, progress: RunProgress = {batch: false, started: []}): Promise<number> {
  const checkInterrupt = () => {
    const sig = hooks.interrupted?.()
    if (sig) throw new InterruptedError(sig)
  }
  if (sys.encapBatch) await runPreBatched(sys, c, hooks, progress, checkInterrupt)
  else for (const p of c.programs) {
    for (const a of p.pre) {
      checkInterrupt()
      try {
        if (a.op === 'start') {
          await hooks.starting?.([a.name])
          const entry = {name: a.name, done: false}
          progress.started.push(entry)
          await side(sys, a)
          entry.done = true
          await hooks.started?.([a.name])
        } else await side(sys, a)
      } catch (e) {
        throw annotate(e, `${describeStep(p.step)}: ${formatSide(a)}`)
      }
    }
  }
  mark('userspace pre-actions done')
  await hooks.phase?.('before-batch')
  checkInterrupt()
  const lines = batchLines(c, failAtLine)
  const adds = linkAddLines(c)
  progress.batch = true
  await hooks.phase?.('batch')
  try {
    await sys.ipBatch(lines)
    progress.created = adds.map((x) => x.name)
  } catch (e) {
    if (e instanceof CommandError && e.batchLine) {
      // ip -batch stops at the failing line: every line before it ran, none after it
      progress.created = adds.filter((x) => x.line < e.batchLine!).map((x) => x.name)
      const step = stepForLine(c, e.batchLine)
      if (step) {
        e.step = describeStep(step)
        annotate(e, `batch line ${e.batchLine} (step ${e.step})`)
      }
    }
    await restoreGroups(sys, c.groupDelete, e)
    if (progress.created) await hooks.created?.(progress.created)
    throw e
  }
  await hooks.created?.(progress.created)
  await hooks.phase?.('after-batch')
  if (sys.encapBatch) {
    const stops = c.programs.flatMap((p) => p.post.filter((a) => a.op === 'stop').map((a) => ({p, a})))
    if (stops.length) batchFailed(c, stops, await sys.encapBatch({stop: stops.map((x) => x.a.name)}))
  }
  for (const p of c.programs) {
    for (const a of p.post) {
      if (sys.encapBatch && a.op === 'stop') continue
      try {
        await side(sys, a)
      } catch (e) {
        throw annotate(e, `${describeStep(p.step)}: ${formatSide(a)}`)
      }
    }
  }
  return lines.length
}

type Prog = Compiled['programs'][number]

/** Throws, annotated with its step, the first failure of an engine transaction's results. */
function batchFailed(c: Compiled, actions: Array<{p: Prog; a: SideAction}>, results: Map<string, string | undefined>): void {
  for (const {p, a} of actions) {
    const why = results.get(a.name)
    if (why === undefined) continue
    const others = actions.filter((x) => x.a.name !== a.name && results.get(x.a.name) !== undefined).map((x) => x.a.name)
    const e = new CommandError(`userspace encapsulator for ${a.name}: ${why}${others.length ? ` (also failed: ${others.join(', ')})` : ''}`, ['engine'], why)
    throw annotate(e, `${describeStep(p.step)}: ${formatSide(a)}`)
  }
}

/**
 * The pre-actions of every step as engine transactions: all stops (one commit), the link deletions in plan order,
 * then all starts (one commit: an apply of N userspace tunnels is one transaction, not N).
 */
async function runPreBatched(sys: System, c: Compiled, hooks: ExecHooks, progress: RunProgress, checkInterrupt: () => void): Promise<void> {
  const all = c.programs.flatMap((p) => p.pre.map((a) => ({p, a})))
  const stops = all.filter((x) => x.a.op === 'stop')
  if (stops.length) {
    checkInterrupt()
    batchFailed(c, stops, await sys.encapBatch!({stop: stops.map((x) => x.a.name)}))
  }
  for (const {p, a} of all.filter((x) => x.a.op !== 'stop' && x.a.op !== 'start')) {
    checkInterrupt()
    try {
      await side(sys, a)
    } catch (e) {
      throw annotate(e, `${describeStep(p.step)}: ${formatSide(a)}`)
    }
  }
  const starts = all.filter((x) => x.a.op === 'start')
  if (!starts.length) return
  checkInterrupt()
  const entries = new Map<string, {name: string; done: boolean}>()
  await hooks.starting?.(starts.map((x) => x.a.name))
  mark(`userspace: ${starts.length} starts journaled`)
  for (const {a} of starts) {
    const entry = {name: a.name, done: false}
    entries.set(a.name, entry)
    progress.started.push(entry)
  }
  const results = await sys.encapBatch!({
    start: starts.map((x) => {
      const a = x.a as Extract<SideAction, {op: 'start'}>
      return {name: a.name, params: a.params, ...(a.ipsec ? {ipsec: a.ipsec} : {}), ...(a.device ? {device: a.device} : {})}
    }),
  })
  const done = starts.filter((x) => results.get(x.a.name) === undefined).map((x) => x.a.name)
  for (const n of done) entries.get(n)!.done = true
  if (done.length) await hooks.started?.(done)
  batchFailed(c, starts, results)
}

/** What still differs from the plan's intent after executing it (empty = verified). */
export function verifyPlan(plan: Plan, after: ObservedState): Residual {
  const residual: Residual = []
  const byName = new Map(after.tunnels.map((t) => [t.name, t]))
  for (const s of plan.steps) {
    const o = byName.get(s.name)
    if (s.kind === 'delete') {
      // gone as a link too (a TUN device left by a stopped encapsulator is no tunnel but still holds the name)
      if (o || after.links.includes(s.name)) residual.push({name: s.name, changes: [{field: 'exists', from: true, to: false}]})
      continue
    }
    if (!o) {
      residual.push({name: s.name, changes: [{field: 'exists', from: false, to: true}]})
      continue
    }
    const changes = diffTunnel(o, s.desired!, s.driver)
    if (!o.owned) changes.push({field: 'owned', from: false, to: true})
    if (changes.length) residual.push({name: s.name, changes})
  }
  return residual
}

/** The owned part of a snapshot as a desired state (rollback target). */
export function snapshotDesired(snapshot: ObservedState, adopted?: Set<string>): DesiredState {
  return {
    file: '(state before apply)',
    tunnels: snapshot.tunnels
      .filter((t) => t.owned || adopted?.has(t.name))
      .map((t) => ({
        name: t.name,
        state: 'present' as const,
        params: t.params,
        addresses: t.addresses,
        routes: t.routes,
        driver: t.driver,
        pointer: '',
        ...(t.ipsec ? {ipsec: t.ipsec} : {}),
      })),
  }
}

/**
 * Plan from the state after a failed apply back to the snapshot: owned tunnels restored, tunnels created by the
 * failed apply deleted (even if their ownership alias was never set), foreign tunnels never touched.
 */
export function rollbackPlan(current: ObservedState, snapshot: ObservedState, drivers: Drivers, touched?: Set<string>, adopted?: Set<string>): Plan {
  const before = new Set(snapshot.tunnels.map((t) => t.name))
  const override = new Set<string>()
  // a new alias-less link is ours only if the failed plan touched that name (never a link someone else made meanwhile)
  for (const t of current.tunnels) if (!before.has(t.name) && (!touched || touched.has(t.name))) override.add(t.name)
  for (const t of snapshot.tunnels) if (t.owned) override.add(t.name)
  // adopted tunnels are restored too, and handed back (ownership alias cleared)
  const disown = new Set(snapshot.tunnels.filter((t) => !t.owned && adopted?.has(t.name)).map((t) => t.name))
  for (const n of disown) override.add(n)
  return computePlan(snapshotDesired(snapshot, adopted), current, {prune: true, support: {}, trustDrivers: true, ownedOverride: override, disown, restoring: true}, drivers)
}

function describeResidual(plan: Plan): string[] {
  return plan.steps.map((s) => {
    const what = s.changes.length ? ': ' + s.changes.map((c) => c.field).join(', ') : ''
    return `${s.name}: still needs ${s.kind}${s.reason ? ` (${s.reason})` : ''}${what}`
  })
}

/** Whether a compiled plan starts (or restarts, or reloads) a userspace encapsulator. */
export function startsEncaps(c: Compiled): boolean {
  return c.programs.some((p) => p.pre.some((a) => a.op === 'start'))
}

/** Executes a plan; on any failure (or an interrupt before the batch) restores the snapshot and rethrows (or throws RollbackError). */
export async function executeWith(sys: System, plan: Plan, opts: ExecOptions): Promise<ApplyResult> {
  if (plan.steps.length === 0) return {applied: false, lines: 0, verified: true, rolledBack: false}
  const snapshot = opts.snapshot ?? (await sys.observe())
  const compiled = compilePlan(plan, opts.drivers, await groupDeleteFor(plan, sys.linkGroups))
  // an engine for the userspace starts boots while the rest of the apply prepares them (control.ts prepareEngine;
  // apply launches it earlier still, applySpec)
  if (sys.prepareEncaps && sys.encapBatch && startsEncaps(compiled)) sys.prepareEncaps()
  const hooks = opts.hooks ?? {}
  // a plan whose tunnels have no routes, before or after, cannot leave a route to verify (the kernel's own
  // routes are not observed): the route dump, the largest of the three, is skipped then
  const routes = plan.steps.some((s) => (s.desired?.routes.length ?? 0) > 0 || (s.observed?.routes.length ?? 0) > 0)
  let lines = 0
  const progress: RunProgress = {batch: false, started: []}
  // vti ipsec SAs and policies: their own stdin-fed batch (keys never in a file or argv) before the link batch (they
  // do not need the device; the journal was written before execution began), so a failing link batch finds them
  // installed and the rollback reconciles them to the snapshot's (keys read from the kernel before the apply);
  // disable_policy once the device exists
  const xfrm = xfrmLines(plan, snapshot)
  const xfrmTarget = xfrm.lines.length ? targetXfrm(plan, snapshot) : undefined
  const xfrmResidual = (after: ObservedState): Residual => {
    if (!xfrmTarget) return []
    const left = reconcile(after.xfrm ?? NO_XFRM, xfrmTarget).shown
    return left.length ? [{name: XFRM_RESIDUAL, changes: left.map((l) => ({field: 'xfrm', from: 'pending', to: l.slice(0, 4).join(' ')}))}] : []
  }
  try {
    await runXfrm(sys, xfrm)
    lines = await runCompiled(sys, compiled, opts.failAtLine, hooks, progress)
    if (xfrm.disablePolicy.length) await sys.disablePolicy!(xfrm.disablePolicy)
    lines += xfrm.lines.length
    mark('batch run')
    await hooks.phase?.('verify')
    const check = (after: ObservedState) => [...verifyPlan(plan, after), ...xfrmResidual(after)]
    let residual = check(await sys.observe({routes}))
    mark(`verified${residual.length ? ' (differences: observing again)' : ''}`)
    // some changes settle asynchronously (an engine's state file, DAD): re-observe a few times before failing
    for (const ms of residual.length ? (opts.verifyRetryMs ?? [100, 400]) : []) {
      await new Promise((r) => setTimeout(r, ms))
      residual = check(await sys.observe({routes}))
      if (!residual.length) break
    }
    if (residual.length) {
      if (opts.verifyError) throw opts.verifyError(residual, compiled)
      const text = residual.map((r) => `${r.name}: ${r.changes.map((c) => `${c.field} is ${JSON.stringify(c.from)}, wanted ${JSON.stringify(c.to)}`).join('; ')}`)
      throw new VerifyError(`verification failed after ${opts.operation ?? 'apply'} (the kernel did not take every change):\n  ${text.join('\n  ')}`, residual)
    }
    const sig = hooks.interrupted?.()
    return {applied: true, lines, verified: true, rolledBack: false, ...(sig ? {interrupted: sig} : {})}
  } catch (err) {
    const failure = err instanceof TunctlError ? err : new TunctlError(err instanceof Error ? err.message : String(err))
    failure.applied = progress.batch
    const touched = new Set(plan.steps.map((s) => s.name))
    // what this apply created: the link adds that ran (when the batch ended), the encapsulators it started
    const created = progress.created || !progress.batch ? new Set([...(progress.created ?? []), ...progress.started.map((x) => x.name)]) : undefined
    return rollback(sys, snapshot, failure, opts.drivers, {touched, created, adopted: opts.adopted, started: progress.started}, hooks, opts.operation)
  }
}

/**
 * Restores `snapshot` as far as it can; returns what is left (empty = restored). Deletes and stops only what this
 * apply created (scope); never touches a link that was not there before unless this apply made it.
 */
export async function restore(sys: System, snapshot: ObservedState, drivers: Drivers, scope: RestoreScope, hooks: ExecHooks = {}): Promise<string[]> {
  const ours = scope.created ?? scope.touched
  const beforeLinks = new Set(snapshot.links)
  const userspaceBefore = new Set(snapshot.tunnels.filter((t) => t.driver === 'userspace').map((t) => t.name))
  // encapsulators this apply started for tunnels that were not userspace ones before: stop them first (their TUN
  // device has no ownership alias until the batch sets it, so the rollback plan below cannot see it)
  const startedNew = (scope.started ?? []).filter((x) => !userspaceBefore.has(x.name))
  let current = await sys.observe()
  await hooks.phase?.('rollback')
  let stopped = false
  const stop: string[] = []
  const forget: string[] = []
  for (const x of startedNew) {
    const isOurTun = current.kinds[x.name] === 'tun' && !beforeLinks.has(x.name)
    if (isOurTun) stop.push(x.name)
    else if (sys.forgetEncap) forget.push(x.name)
    else if (!current.links.includes(x.name)) stop.push(x.name)
    stopped = true
  }
  // (a failed group deletion leaves them to the engine's stop below, one by one: slower, the same result, which the
  // leftover check at the end verifies)
  await deleteStartedAsGroup(sys, stop)
  if (sys.encapBatch && (stop.length || forget.length)) {
    // one engine transaction for all of them
    const r = await sys.encapBatch({stop, forget})
    const failed = [...r].filter(([, why]) => why !== undefined)
    if (failed.length) throw new CommandError(`stopping userspace encapsulators: ${failed.map(([n, why]) => `${n}: ${why}`).join('; ')}`, ['engine'], '')
  } else {
    for (const n of stop) await sys.stopEncap(n)
    for (const n of forget) await sys.forgetEncap!(n)
  }
  if (stopped) current = await sys.observe()
  const rb = rollbackPlan(current, snapshot, drivers, ours, scope.adopted)
  if (rb.steps.length) await runCompiled(sys, compilePlan(rb, drivers, await groupDeleteFor(rb, sys.linkGroups)))
  // tunctl's SAs and policies back to the snapshot's (their keys were read from the kernel before the apply)
  if (current.xfrm || snapshot.xfrm) await runXfrm(sys, reconcile(current.xfrm ?? NO_XFRM, snapshot.xfrm ?? NO_XFRM))
  const after = await sys.observe()
  const left = describeResidual(rollbackPlan(after, snapshot, drivers, ours, scope.adopted))
  if (after.xfrm || snapshot.xfrm) {
    for (const l of reconcile(after.xfrm ?? NO_XFRM, snapshot.xfrm ?? NO_XFRM).shown) left.push(`xfrm: still needs ip ${l.join(' ')}`)
  }
  for (const x of startedNew) if (after.kinds[x.name] === 'tun' && !beforeLinks.has(x.name)) left.push(`${x.name}: TUN device of a userspace encapsulator this apply started is still present`)
  return left
}

/** Restores `snapshot`; throws the original error (host restored: rolledBack) or a RollbackError (exit 3). */
export async function rollback(sys: System, snapshot: ObservedState, cause: TunctlError, drivers: Drivers, scope: RestoreScope = {}, hooks: ExecHooks = {}, operation: Operation = 'apply'): Promise<never> {
  let leftovers: string[] = []
  let rbError: unknown
  try {
    leftovers = await restore(sys, snapshot, drivers, scope, hooks)
  } catch (e) {
    rbError = e
    leftovers.push(`rollback itself failed: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (rbError || leftovers.length) {
    const e = new RollbackError(`${operation} failed and the rollback is incomplete.\ncause: ${cause.message}`, leftovers)
    e.applied = cause.applied
    throw e
  }
  cause.message = `${cause.message}\nThe host was restored to its state before the ${operation}.`
  cause.rolledBack = true
  throw cause
}
