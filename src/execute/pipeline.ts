// The plan pipeline apply and plan share: observe the namespace, check what each needed mode can use, make the plan.
import {mark} from '../lib/timing.js'
import type {DesiredState, DriverChoice, ObservedState, Plan} from '../model/types.js'
import {observe} from '../observe/index.js'
import {makePlan} from '../plan/index.js'
import {gatherSupport} from './support.js'

export interface PlanRequest {
  netns?: string
  /** also delete tunctl-owned tunnels the file does not list */
  prune?: boolean
  /** --driver: overrides every tunnel's driver */
  driver?: DriverChoice
  /** --adopt names */
  adopt?: string[]
}

/** observe → support of the modes the file uses → makePlan (ConflictError / UnavailableError as makePlan throws them). */
export async function planSpec(desired: DesiredState, req: PlanRequest): Promise<{observed: ObservedState; plan: Plan}> {
  // (the plan compares configuration, never counters)
  const observed = await observe({netns: req.netns, xfrm: desired.tunnels.some((t) => t.ipsec), counters: false})
  mark('observed')
  const modes = desired.tunnels.filter((t) => t.state === 'present').map((t) => t.params.mode)
  const support = await gatherSupport(modes, req.netns)
  mark('support checked')
  const plan = makePlan(desired, observed, {prune: Boolean(req.prune), driver: req.driver, support, adopt: new Set(req.adopt ?? [])})
  mark('planned')
  return {observed, plan}
}
