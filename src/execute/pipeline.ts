// The plan pipeline apply and plan share: observe the namespace, check what each needed mode can use, make the plan.
import {mark} from '../lib/timing.js'
import type {DesiredState, DriverChoice, ObservedState, Plan} from '../model/types.js'
import {modeModules, modulesLoadable, observe} from '../observe/index.js'
import {makePlan} from '../plan/index.js'
import {gatherSupport} from './support.js'

type Settled<T> = {ok: true; value: T} | {ok: false}
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ok: true as const, value}),
    () => ({ok: false as const}), // (observed again after the parse: the error, if any, comes from there, in order)
  )

/**
 * The observation and the support check, started before the spec file is parsed (both read only: `ip … show`,
 * the run dir's files, `modprobe -n`), so that the ip children run while the parse runs. They never reject (a
 * failure is done again after the parse) and change nothing: a file that fails to parse leaves the system as it was.
 * planSpec uses them only where they are what it would observe itself (see PlanRequest.early).
 */
export interface EarlyObservation {
  observed: Promise<Settled<ObservedState>>
  /** every mode's module (the modes the file uses are not known yet): one child process, not one per module
   * (each spawn costs this process ~2 ms, before the parse) */
  loadable: Promise<Settled<Map<string, boolean>>>
}

export function observeEarly(netns: string | undefined): EarlyObservation {
  return {
    observed: settle(observe({netns, counters: false})),
    loadable: settle(modulesLoadable(modeModules())),
  }
}

export interface PlanRequest {
  netns?: string
  /** also delete tunctl-owned tunnels the file does not list */
  prune?: boolean
  /** --driver: overrides every tunnel's driver */
  driver?: DriverChoice
  /** --adopt names */
  adopt?: string[]
  /** observeEarly's, to use instead of observing now: only when nothing can have changed since it began (for a
   * mutating command: it began under the lock, or the lock stayed undisturbed since, and no recovery ran) */
  early?: EarlyObservation
}

/** observe → support of the modes the file uses → makePlan (ConflictError / UnavailableError as makePlan throws them). */
export async function planSpec(desired: DesiredState, req: PlanRequest): Promise<{observed: ObservedState; plan: Plan}> {
  const xfrm = desired.tunnels.some((t) => t.ipsec)
  // (an early observation has no xfrm unless the namespace has a vti: one that the file's ipsec needs is redone)
  const early = req.early && !xfrm ? await req.early.observed : undefined
  // (the plan compares configuration, never counters)
  const observed = early?.ok ? early.value : await observe({netns: req.netns, xfrm, counters: false})
  mark(`observed${early?.ok ? ' (while the spec was parsed)' : ''}`)
  const modes = desired.tunnels.filter((t) => t.state === 'present').map((t) => t.params.mode)
  // the fallback devices from the observation (not one `ip link show dev` per mode); modprobe's dry run from the
  // early one's if it began under the same conditions as the observation
  const loadable = req.early ? await req.early.loadable : undefined
  const support = await gatherSupport(modes, req.netns, {links: observed.links, ...(loadable?.ok ? {loadable: loadable.value} : {})})
  mark('support checked')
  const plan = makePlan(desired, observed, {prune: Boolean(req.prune), driver: req.driver, support, adopt: new Set(req.adopt ?? [])})
  mark('planned')
  return {observed, plan}
}
