// Plan stage entry points: makePlan (pure diff with the real mode drivers), renderPlan, planToJSON.
import {DRIVERS} from '../drivers/index.js'
import type {DesiredState, ObservedState, Plan} from '../model/types.js'
import {computePlan, type Drivers, type PlanOptions} from './diff.js'
import {renderPlan as renderWith, type RenderOptions} from './render.js'

export {ConflictError, type PlanOptions, type ModeSupport, type Drivers} from './diff.js'
export {planToJSON, summaryLine} from './render.js'
export {compilePlan, groupDeleteFor, stepForLine} from './lines.js'

/** Pure: what has to change so `observed` becomes `desired`. Throws ConflictError (65) / UnavailableError (69). */
export function makePlan(desired: DesiredState, observed: ObservedState, opts: PlanOptions & {drivers?: Drivers}): Plan {
  return computePlan(desired, observed, opts, opts.drivers ?? DRIVERS)
}

export function renderPlan(plan: Plan, opts: RenderOptions): string {
  return renderWith(plan, {...opts, drivers: opts.drivers ?? DRIVERS})
}
