// Runs a plan against an injected System: userspace actions + one ip batch, verify by re-observing, roll back on failure.
import {CommandError, RollbackError, TunctlError, VerifyError} from '../lib/errors.js'
import {mark} from '../lib/timing.js'
import type {DesiredState, FieldChange, ObservedState, Plan, TunnelParams} from '../model/types.js'
import {computePlan, diffTunnel, type Drivers} from '../plan/diff.js'
import {compilePlan, describeStep, formatSide, stepForLine, type Compiled, type SideAction} from '../plan/lines.js'
import {xfrmLines, targetXfrm} from '../ipsec/plan.js'
import {reconcile, type XfrmSet} from '../ipsec/xfrm.js'

/** Everything execute needs from the outside world (real implementation in ./index.ts, fakes in tests). */
export interface System {
  /** routes: false leaves every tunnel's routes empty (skips the largest dump when nothing involves routes) */
  observe(opts?: {routes?: boolean}): Promise<ObservedState>
  ipBatch(lines: string[][]): Promise<void>
  ip(args: string[]): Promise<void>
  startEncap(name: string, params: TunnelParams): Promise<void>
  stopEncap(name: string): Promise<void>
  /** vti ipsec: xfrm lines (keys in `lines`, hidden in `shown`) through their own stdin-fed batch */
  xfrmBatch?(lines: string[][], shown: string[][]): Promise<void>
  /** vti ipsec: disable_policy=1 on these devices */
  disablePolicy?(names: string[]): Promise<void>
}

const NO_XFRM: XfrmSet = {sas: [], policies: []}

async function runXfrm(sys: System, x: {lines: string[][]; shown: string[][]}): Promise<void> {
  if (!x.lines.length) return
  if (!sys.xfrmBatch) throw new Error('internal: xfrm lines to run but no xfrm batch runner')
  await sys.xfrmBatch(x.lines, x.shown)
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
}

export interface ApplyResult {
  applied: boolean
  /** number of ip lines run in the batch */
  lines: number
  verified: boolean
  rolledBack: boolean
}

export type Residual = Array<{name: string; changes: FieldChange[]}>

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
  if (a.op === 'start') return sys.startEncap(a.name, a.params)
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

/** Userspace pre-actions, the one batch, userspace post-actions. Failures name the plan step. */
export async function runCompiled(sys: System, c: Compiled, failAtLine?: number): Promise<number> {
  for (const p of c.programs) {
    for (const a of p.pre) {
      try {
        await side(sys, a)
      } catch (e) {
        throw annotate(e, `${describeStep(p.step)}: ${formatSide(a)}`)
      }
    }
  }
  const lines = batchLines(c, failAtLine)
  try {
    await sys.ipBatch(lines)
  } catch (e) {
    if (e instanceof CommandError && e.batchLine) {
      const step = stepForLine(c, e.batchLine)
      if (step) {
        e.step = describeStep(step)
        annotate(e, `batch line ${e.batchLine} (step ${e.step})`)
      }
    }
    throw e
  }
  for (const p of c.programs) {
    for (const a of p.post) {
      try {
        await side(sys, a)
      } catch (e) {
        throw annotate(e, `${describeStep(p.step)}: ${formatSide(a)}`)
      }
    }
  }
  return lines.length
}

/** What still differs from the plan's intent after executing it (empty = verified). */
export function verifyPlan(plan: Plan, after: ObservedState): Residual {
  const residual: Residual = []
  const byName = new Map(after.tunnels.map((t) => [t.name, t]))
  for (const s of plan.steps) {
    const o = byName.get(s.name)
    if (s.kind === 'delete') {
      if (o) residual.push({name: s.name, changes: [{field: 'exists', from: true, to: false}]})
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
  return computePlan(snapshotDesired(snapshot, adopted), current, {prune: true, support: {}, trustDrivers: true, ownedOverride: override, disown, ignoreRouteHolders: true}, drivers)
}

function describeResidual(plan: Plan): string[] {
  return plan.steps.map((s) => {
    const what = s.changes.length ? ': ' + s.changes.map((c) => c.field).join(', ') : ''
    return `${s.name}: still needs ${s.kind}${s.reason ? ` (${s.reason})` : ''}${what}`
  })
}

/** Executes a plan; on any failure restores the snapshot and rethrows (or throws RollbackError). */
export async function executeWith(sys: System, plan: Plan, opts: ExecOptions): Promise<ApplyResult> {
  if (plan.steps.length === 0) return {applied: false, lines: 0, verified: true, rolledBack: false}
  const snapshot = opts.snapshot ?? (await sys.observe())
  const compiled = compilePlan(plan, opts.drivers)
  // a plan whose tunnels have no routes, before or after, cannot leave a route to verify (the kernel's own
  // routes are not observed): the route dump, the largest of the three, is skipped then
  const routes = plan.steps.some((s) => (s.desired?.routes.length ?? 0) > 0 || (s.observed?.routes.length ?? 0) > 0)
  let lines = 0
  // vti ipsec SAs and policies: their own stdin batch before the link batch (they do not need the device), so a
  // failing link batch finds them installed and the rollback removes them; disable_policy once the device exists
  const xfrm = xfrmLines(plan, snapshot)
  const xfrmTarget = xfrm.lines.length ? targetXfrm(plan, snapshot) : undefined
  const xfrmResidual = (after: ObservedState): Residual => {
    if (!xfrmTarget) return []
    const left = reconcile(after.xfrm ?? NO_XFRM, xfrmTarget).shown
    return left.length ? [{name: '(xfrm)', changes: left.map((l) => ({field: 'xfrm', from: 'pending', to: l.slice(0, 4).join(' ')}))}] : []
  }
  try {
    await runXfrm(sys, xfrm)
    lines = await runCompiled(sys, compiled, opts.failAtLine)
    if (xfrm.disablePolicy.length) await sys.disablePolicy!(xfrm.disablePolicy)
    lines += xfrm.lines.length
    mark('batch run')
    const check = (after: ObservedState) => [...verifyPlan(plan, after), ...xfrmResidual(after)]
    let residual = check(await sys.observe({routes}))
    mark(`verified${residual.length ? ' (differences: observing again)' : ''}`)
    // some changes settle asynchronously (a daemon's state file, DAD): re-observe a few times before failing
    for (const ms of residual.length ? (opts.verifyRetryMs ?? [100, 400]) : []) {
      await new Promise((r) => setTimeout(r, ms))
      residual = check(await sys.observe({routes}))
      if (!residual.length) break
    }
    if (residual.length) {
      const text = residual.map((r) => `${r.name}: ${r.changes.map((c) => `${c.field} is ${JSON.stringify(c.from)}, wanted ${JSON.stringify(c.to)}`).join('; ')}`)
      throw new VerifyError(`verification failed after apply (the kernel did not take every change):\n  ${text.join('\n  ')}`, residual)
    }
    return {applied: true, lines, verified: true, rolledBack: false}
  } catch (err) {
    await rollback(sys, snapshot, err, opts.drivers, new Set(plan.steps.map((s) => s.name)), opts.adopted)
    throw err // unreachable: rollback always throws
  }
}

/** Restores `snapshot`; throws the original error (host restored) or a RollbackError (exit 3). */
export async function rollback(sys: System, snapshot: ObservedState, cause: unknown, drivers: Drivers, touched?: Set<string>, adopted?: Set<string>): Promise<never> {
  const causeMsg = cause instanceof Error ? cause.message : String(cause)
  let leftovers: string[] = []
  let rbError: unknown
  try {
    const current = await sys.observe()
    const rb = rollbackPlan(current, snapshot, drivers, touched, adopted)
    if (rb.steps.length) await runCompiled(sys, compilePlan(rb, drivers))
    // tunctl's SAs and policies back to the snapshot's (their keys were read from the kernel before the apply)
    if (current.xfrm || snapshot.xfrm) await runXfrm(sys, reconcile(current.xfrm ?? NO_XFRM, snapshot.xfrm ?? NO_XFRM))
    const after = await sys.observe()
    leftovers = describeResidual(rollbackPlan(after, snapshot, drivers, touched, adopted))
    if (after.xfrm || snapshot.xfrm) {
      for (const l of reconcile(after.xfrm ?? NO_XFRM, snapshot.xfrm ?? NO_XFRM).shown) leftovers.push(`xfrm: still needs ip ${l.join(' ')}`)
    }
  } catch (e) {
    rbError = e
    leftovers.push(`rollback itself failed: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (rbError || leftovers.length) {
    throw new RollbackError(`apply failed and the rollback is incomplete.\ncause: ${causeMsg}`, cause, leftovers)
  }
  if (cause instanceof TunctlError) {
    cause.message = `${cause.message}\nThe host was restored to its state before the apply.`
    ;(cause as any).rolledBack = true
    throw cause
  }
  const e = new TunctlError(`${causeMsg}\nThe host was restored to its state before the apply.`)
  ;(e as any).rolledBack = true
  throw e
}
