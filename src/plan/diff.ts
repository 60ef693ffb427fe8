// Pure diff of desired vs observed tunnels: chooses a driver per tunnel and yields create/update/replace/delete steps.
import {tunnelIdentity} from '../drivers/common.js'
import {COMMON_PARAM_FIELDS, DEVICE_FIELDS, PARAM_FIELDS} from '../model/fields.js'
import {effectiveMetric, routeKey, tableText} from '../net/route.js'
import type {ModeDriver} from '../drivers/contract.js'
import {diffIpsec, stepXfrmShown, survivorSpiConflicts, xfrmConflicts} from '../ipsec/plan.js'
import {TunctlError, EXIT, UnavailableError} from '../lib/errors.js'
import {quoteName, visible} from '../lib/text.js'
import {underlayConflicts} from './underlay.js'
import type {
  DesiredState,
  DesiredTunnel,
  DriverChoice,
  DriverName,
  FieldChange,
  Mode,
  ObservedState,
  ObservedTunnel,
  Plan,
  PlanStep,
  RouteHolder,
  RouteSpec,
  SourceLocation,
  TunnelParams,
} from '../model/types.js'

export type Drivers = Record<Mode, ModeDriver>

export interface ModeSupport {
  kernel: boolean
  userspace: boolean
  reason: string
  /** the mode's kernel module is loaded (not merely loadable): driver userspace is refused */
  kernelLoaded?: boolean
}

const OUTER_PROTO: Record<string, string> = {gre: 'GRE, IP protocol 47', ipip: 'IPIP, IP protocol 4', sit: 'IP protocol 41 (and 4)', isatap: 'IP protocol 41'}

export interface PlanOptions {
  prune: boolean
  /** CLI --driver: overrides every tunnel's own `driver:` */
  driver?: DriverChoice
  support: Partial<Record<Mode, ModeSupport>>
  /** internal (rollback): trust each tunnel's kernel/userspace driver without consulting `support` */
  trustDrivers?: boolean
  /** internal (rollback): names to treat as owned even if the system does not say so */
  ownedOverride?: Set<string>
  /** --adopt: foreign tunnels the user hands over to tunctl (they get the ownership alias) */
  adopt?: Set<string>
  /** internal (rollback of an adoption): owned tunnels to give back (ownership alias cleared) */
  disown?: Set<string>
  /**
   * internal (rollback): skip the checks against what the namespace holds besides the plan's tunnels (a route key
   * another route holds, an underlay device, an SA or policy tunctl does not own): a restore refuses nothing, and
   * its batch reports what the kernel refuses
   */
  restoring?: boolean
}

export interface Conflict {
  name: string
  pointer?: string
  message: string
  /** the tunnel's place in the file, when it came from one */
  at?: SourceLocation
}

/**
 * A tunnel in the file cannot be reconciled with what exists (foreign tunnel, non-tunnel link, endpoint clash).
 * Rendered like a spec error: file:line:col, the message, the source line and a caret.
 */
export class ConflictError extends TunctlError {
  override exitCode: number = EXIT.DATAERR
  override code = 'conflict'
  constructor(public conflicts: Conflict[], public file?: string) {
    super(
      conflicts
        .map((c) =>
          c.at && file
            ? `${file}:${c.at.line}:${c.at.column}: tunnel "${c.name}": ${c.message}\n${c.at.excerpt}`
            : `${file ? file + ': ' : ''}${c.name}: ${c.message}`,
        )
        .join('\n'),
    )
  }
  override toJSON() {
    return {
      ...super.toJSON(),
      conflicts: this.conflicts.map(({at, ...c}) => (at && this.file ? {...c, file: this.file, line: at.line, column: at.column} : c)),
    }
  }
}

export {PARAM_FIELDS} from '../model/fields.js'

/** Fields of a userspace tunnel that are link attributes (ip batch), not encapsulator parameters (the field table's device fields). */
export const USERSPACE_LINK_FIELDS = DEVICE_FIELDS

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ra = a as Record<string, unknown>
    const rb = b as Record<string, unknown>
    const ka = Object.keys(ra).filter((k) => ra[k] !== undefined)
    const kb = Object.keys(rb).filter((k) => rb[k] !== undefined)
    if (ka.length !== kb.length) return false
    return ka.every((k) => deepEqual(ra[k], rb[k]))
  }
  return false
}

function emptyish(v: unknown): boolean {
  return v === undefined || (Array.isArray(v) && v.length === 0)
}

/** Desired params with "kernel default" fields (mtu undefined) taken from what exists, so they never show as a change. */
export function effectiveParams(desired: TunnelParams, observed?: TunnelParams): TunnelParams {
  if (!observed) return desired
  return {...desired, mtu: desired.mtu ?? observed.mtu}
}

/** Field-by-field changes of link params (mode excluded). */
export function diffParams(from: TunnelParams, to: TunnelParams): FieldChange[] {
  const out: FieldChange[] = []
  for (const f of PARAM_FIELDS) {
    const a = from[f]
    const b = to[f]
    if (emptyish(a) && emptyish(b)) continue
    if (!deepEqual(a, b)) out.push({field: f, from: a, to: b})
  }
  return out
}

export function routeEqual(a: RouteSpec, b: RouteSpec): boolean {
  return a.to === b.to && a.table === b.table && (a.via ?? undefined) === (b.via ?? undefined) && a.metric === b.metric
}

/** A desired route (metric unset = any metric the kernel picked) matches an observed one. */
export function routeMatches(desired: RouteSpec, observed: RouteSpec): boolean {
  return (
    desired.to === observed.to &&
    desired.table === observed.table &&
    (desired.via ?? undefined) === (observed.via ?? undefined) &&
    (desired.metric === undefined || desired.metric === observed.metric)
  )
}

/** Routes to delete (observed, not desired) and to add (desired, not observed). */
export function diffRoutes(observed: RouteSpec[], desired: RouteSpec[]): {del: RouteSpec[]; add: RouteSpec[]} {
  const del = observed.filter((o) => !desired.some((d) => routeMatches(d, o)))
  const add = desired.filter((d) => !observed.some((o) => routeMatches(d, o)))
  return {del, add}
}

export function diffAddresses(observed: string[], desired: string[]): {del: string[]; add: string[]} {
  return {del: observed.filter((a) => !desired.includes(a)), add: desired.filter((a) => !observed.includes(a))}
}

/** All changes between an observed tunnel and a desired one (params, addresses, routes, encapsulator). */
export function diffTunnel(observed: ObservedTunnel, desired: DesiredTunnel, driver: DriverName): FieldChange[] {
  const changes: FieldChange[] = []
  if (observed.params.mode !== desired.params.mode) changes.push({field: 'mode', from: observed.params.mode, to: desired.params.mode})
  if (observed.driver !== driver) changes.push({field: 'driver', from: observed.driver, to: driver})
  const modeChange = observed.params.mode !== desired.params.mode
  for (const c of diffParams(observed.params, effectiveParams(desired.params, observed.params))) {
    // across a mode change, fields only one of the modes has are not changes worth listing (every mode has
    // the common ones: dev none → lo is a change)
    if (modeChange && !COMMON_PARAM_FIELDS.has(c.field) && (c.from === undefined || c.to === undefined)) continue
    changes.push(c)
  }
  const a = diffAddresses(observed.addresses, desired.addresses)
  if (a.del.length || a.add.length) changes.push({field: 'addresses', from: observed.addresses, to: desired.addresses})
  const r = diffRoutes(observed.routes, desired.routes)
  if (r.del.length || r.add.length) changes.push({field: 'routes', from: observed.routes, to: desired.routes})
  const ipsec = diffIpsec(observed.ipsec, desired.ipsec) // kernel: SAs in xfrm; userspace: the vti daemon's SA
  if (ipsec) changes.push(ipsec)
  if (observed.driver === 'userspace' && driver === 'userspace' && observed.alive === false) {
    changes.push({field: 'encapsulator', from: 'dead', to: 'running'})
  }
  return changes
}

/** Why the changes cannot be made in place, or undefined. Engine reasons first, then the mode driver's. */
export function replaceReasonFor(
  observed: ObservedTunnel,
  desired: DesiredTunnel,
  driver: DriverName,
  changes: FieldChange[],
  drivers: Drivers,
): string | undefined {
  if (observed.params.mode !== desired.params.mode) return `mode ${observed.params.mode} → ${desired.params.mode} cannot change in place`
  if (observed.driver !== driver) return `driver ${observed.driver} → ${driver}`
  // The same reasons for both drivers: the userspace engine is the kernel's twin, so a file plans alike whichever
  // driver carries it (PRODUCT.md names remote any ↔ address and the inner protocol as replacements), although
  // the engine itself could change those in place.
  const to = effectiveParams(desired.params, observed.params)
  if (diffParams(observed.params, to).length === 0) return undefined
  return drivers[desired.params.mode]?.replaceReason(observed.params, to)
}

/** Picks kernel/userspace for one tunnel; throws UnavailableError when no allowed driver supports the mode. */
export function chooseDriver(
  t: DesiredTunnel,
  opts: PlanOptions,
): {driver: DriverName; reason: string} {
  const choice: DriverChoice = opts.driver ?? t.driver ?? 'auto'
  const mode = t.params.mode
  if (opts.trustDrivers && choice !== 'auto') return {driver: choice, reason: `${choice}: restores the previous state`}
  const s = opts.support[mode]
  if (!s) throw new UnavailableError(`${t.name}: no support information for mode ${mode}`)
  if (choice === 'kernel') {
    if (!s.kernel) throw new UnavailableError(`${t.name}: mode ${mode} is unavailable with driver kernel: ${s.reason}`)
    return {driver: 'kernel', reason: `kernel (requested): ${s.reason}`}
  }
  if (choice === 'userspace') {
    if (!s.userspace) throw new UnavailableError(`${t.name}: mode ${mode} is unavailable with driver userspace${s.kernel ? '' : ': ' + s.reason}`)
    if (s.kernelLoaded) {
      // the kernel's handler gets every packet of the protocol as well; those no kernel tunnel of the namespace
      // takes it answers with ICMP protocol/port unreachable (or its fallback device takes them when up)
      throw new UnavailableError(
        `${t.name}: driver userspace refused: ${s.reason}, so the kernel handles ${OUTER_PROTO[mode] ?? mode} in this namespace too and would answer each packet for the userspace encapsulator with ICMP unreachable; use driver kernel (or auto), or unload the module`,
      )
    }
    return {driver: 'userspace', reason: 'userspace (requested)'}
  }
  if (s.kernel) return {driver: 'kernel', reason: `kernel: ${s.reason}`}
  if (s.userspace) return {driver: 'userspace', reason: `userspace: ${s.reason}`}
  throw new UnavailableError(`${t.name}: mode ${mode} is unavailable: kernel: ${s.reason}; no userspace driver for ${mode}`)
}


/**
 * Routes the plan adds whose (table, prefix, metric) a route that survives the plan already holds: on another
 * device (a foreign default route, say), a route without a device (blackhole, unreachable, multipath), or the
 * tunnel's own kernel-made route. `route add` would fail on them and `route replace` would silently take them
 * over, so the plan refuses them, at the route's place in the file. Routes on tunnels this plan deletes or
 * replaces, and routes an update removes (their `route del` runs first), are freed.
 */
function routeConflicts(steps: PlanStep[], observed: ObservedState): Conflict[] {
  if (!observed.routeKeys) return []
  const gone = new Set(steps.filter((s) => s.kind === 'delete' || s.kind === 'replace').map((s) => s.name))
  const freed = new Set<string>() // dev|key of routes updates delete
  const adds: Array<{s: PlanStep; r: RouteSpec; i: number}> = []
  for (const s of steps) {
    const t = s.desired
    if (!t || s.kind === 'delete') continue
    if (s.kind === 'update' && s.observed) {
      const d = diffRoutes(s.observed.routes, t.routes)
      for (const r of d.del) freed.add(`${s.name}|${routeKey(r)}`)
      for (const r of d.add) adds.push({s, r, i: t.routes.indexOf(r)})
    } else t.routes.forEach((r, i) => adds.push({s, r, i}))
  }
  if (adds.length === 0) return []
  const holders = new Map<string, RouteHolder[]>()
  for (const h of observed.routeKeys) {
    if (h.dev !== undefined && (gone.has(h.dev) || freed.has(`${h.dev}|${routeKey(h)}`))) continue
    const k = routeKey(h)
    const list = holders.get(k)
    if (list) list.push(h)
    else holders.set(k, [h])
  }
  const out: Conflict[] = []
  for (const {s, r, i} of adds) {
    const held = (holders.get(routeKey(r)) ?? []).filter((h) => !(h.dev === s.name && s.kind === 'update' && s.observed?.routes.some((o) => routeKey(o) === routeKey(h))))
    if (held.length === 0) continue
    const h = held[0]!
    const by =
      h.dev === undefined ? `a ${h.type ?? 'multipath'} route`
      : h.dev === s.name ? `a route the kernel made on ${visible(h.dev)}${h.type ? ` (${h.type})` : ''}`
      : `a${h.type ? ' ' + h.type : ''} route on ${quoteName(h.dev)}`
    const at = s.desired!.routeAt?.[i]
    out.push({
      name: s.name,
      pointer: s.desired!.routePointers?.[i] ?? s.desired!.pointer,
      at: at ?? s.desired!.at,
      message: `route to ${r.to} (table ${tableText(r.table)}, metric ${effectiveMetric(r)}) is already held by ${by}; tunctl never replaces another device's route — remove that route, or give this one another metric or table`,
    })
  }
  return out
}

const ORDER: Record<PlanStep['kind'], number> = {delete: 0, replace: 1, update: 2, create: 3}

export function countSteps(steps: PlanStep[]): Plan['counts'] {
  const counts = {create: 0, update: 0, replace: 0, delete: 0}
  for (const s of steps) counts[s.kind]++
  return counts
}

/** Pure: desired + observed → ordered steps (deletes, replaces, updates, creates). */
export function computePlan(desired: DesiredState, observed: ObservedState, opts: PlanOptions, drivers: Drivers): Plan {
  const byName = new Map(observed.tunnels.map((t) => [t.name, t]))
  const isOwned = (t: ObservedTunnel) => t.owned || Boolean(opts.ownedOverride?.has(t.name) || opts.adopt?.has(t.name))
  const listed = new Set(desired.tunnels.map((t) => t.name))
  const conflicts: Conflict[] = []
  const unavailable: string[] = []
  const steps: PlanStep[] = []

  // names that will not exist / be ours after the plan → endpoints freed
  for (const t of desired.tunnels) {
    const o = byName.get(t.name)
    if (t.state === 'absent') {
      if (o && !isOwned(o)) {
        conflicts.push({
          name: t.name,
          pointer: t.pointer,
          at: t.at,
          message: `exists but is not managed by tunctl (ifalias is not 'tunctl'); tunctl never deletes it — use 'tunctl del --force ${t.name}' (or --adopt ${t.name})`,
        })
      } else if (!o && observed.links.includes(t.name)) {
        // a non-tunnel link of that name: nothing of ours to delete
      } else if (o) {
        steps.push({kind: 'delete', name: t.name, driver: o.driver, changes: [], desired: t, observed: o})
      }
      continue
    }
    if (o && !isOwned(o)) {
      conflicts.push({
        name: t.name,
        pointer: t.pointer,
        at: t.at,
        message: `a ${o.params.mode} tunnel of that name exists but is not managed by tunctl (ifalias is not 'tunctl'); adopt it with --adopt ${t.name}, delete it with 'tunctl del --force ${t.name}', or choose another name`,
      })
      continue
    }
    if (!o && observed.links.includes(t.name)) {
      const kind = observed.kinds[t.name] ?? 'unknown'
      conflicts.push({name: t.name, pointer: t.pointer, at: t.at, message: `a non-tunnel link of that name exists (kind ${kind}); choose another name`})
      continue
    }
    let choice: {driver: DriverName; reason: string}
    try {
      choice = chooseDriver(t, opts)
    } catch (e) {
      if (e instanceof UnavailableError) {
        // where the tunnel is in the file, as every other error about it
        unavailable.push(t.at && desired.file ? `${desired.file}:${t.at.line}:${t.at.column}: ${e.message}` : e.message)
        continue
      }
      throw e
    }
    const disown = Boolean(opts.disown?.has(t.name))
    if (!o) {
      const changes = disown ? [{field: 'owned', from: undefined, to: false}] : []
      steps.push({kind: 'create', name: t.name, driver: choice.driver, driverReason: choice.reason, changes, desired: t})
      continue
    }
    const changes = diffTunnel(o, t, choice.driver)
    if (!o.owned && !disown) changes.push({field: 'owned', from: false, to: true})
    if (o.owned && disown) changes.push({field: 'owned', from: true, to: false})
    if (changes.length === 0) continue
    const reason = replaceReasonFor(o, t, choice.driver, changes, drivers)
    steps.push({
      kind: reason ? 'replace' : 'update',
      name: t.name,
      driver: choice.driver,
      driverReason: choice.reason,
      reason,
      changes,
      desired: t,
      observed: o,
    })
  }

  if (opts.prune) {
    for (const o of observed.tunnels) {
      if (!listed.has(o.name) && isOwned(o)) steps.push({kind: 'delete', name: o.name, driver: o.driver, reason: 'not in the file (--prune)', changes: [], observed: o})
    }
  }

  // (kind, local, remote, dev, key) must stay unique against tunnels that survive the plan, whatever their
  // drivers: the kernel refuses a second kernel tunnel, and a userspace one would receive the same packets as
  // the other (raw sockets see every packet of their protocol, before any kernel tunnel takes it)
  const identity = (p: TunnelParams) => tunnelIdentity(p.mode, p.local, p.remote, p.dev, p.ikey)
  const touched = new Set(steps.map((s) => s.name))
  const survivors = observed.tunnels.filter((o) => !listed.has(o.name) && !touched.has(o.name))
  for (const s of steps) {
    if (s.kind !== 'create' && s.kind !== 'replace' && s.kind !== 'update') continue
    const p = s.desired!.params
    const key = identity(p)
    const clash = survivors.find((o) => identity(o.params) === key)
    if (clash) {
      const why = s.driver === 'kernel' && clash.driver === 'kernel' ? 'the kernel would refuse it' : 'both would receive the same packets'
      conflicts.push({
        name: s.name,
        pointer: s.desired!.pointer,
        at: s.desired!.at,
        message: `same kind, local, remote, dev${p.mode === 'gre' ? ' and input key' : ''} as existing ${isOwned(clash) ? 'tunctl-managed' : 'foreign'} tunnel ${clash.name}; ${why}${isOwned(clash) ? ` (list ${clash.name} with state: absent, or use --prune)` : ''}`,
      })
    }
  }

  // each tunnel's step (one per name), looked up once: a scan of the steps per tunnel was quadratic (~13 ms of
  // planning 1000 tunnels, before the apply can launch their engine)
  const stepOf = new Map(steps.map((s) => [s.name, s]))
  // vti ipsec, any driver: no SPI towards a destination that a surviving vti's SA uses (created or changed tunnels)
  const changing = desired.tunnels.filter((t) => {
    const s = stepOf.get(t.name)
    return s !== undefined && (s.kind === 'create' || s.kind === 'replace' || s.kind === 'update')
  })
  for (const c of survivorSpiConflicts(changing, survivors)) conflicts.push({name: c.t.name, pointer: c.t.pointer, at: c.t.at, message: c.message})

  if (!opts.restoring) conflicts.push(...routeConflicts(steps, observed))
  // each `dev` exists when the batch reaches its tunnel
  if (!opts.restoring) conflicts.push(...underlayConflicts(steps, observed))
  // vti ipsec, kernel driver: never an SPI or a policy mark that an SA/policy tunctl does not own holds (the userspace
  // driver's SA lives in its daemon, native/vti.c: no kernel object to clash with)
  if (!opts.restoring) {
    const present = desired.tunnels.filter((t) => {
      const s = stepOf.get(t.name)
      return t.state === 'present' && s !== undefined && s.kind !== 'delete' && s.driver === 'kernel'
    })
    for (const c of xfrmConflicts(present, observed)) conflicts.push({name: c.t.name, pointer: c.t.pointer, at: c.t.at, message: c.message})
  }

  if (conflicts.length) throw new ConflictError(conflicts, desired.file)
  if (unavailable.length) throw new UnavailableError(unavailable.join('\n'))

  steps.sort((a, b) => ORDER[a.kind] - ORDER[b.kind])
  for (const s of steps) {
    if (!s.desired?.ipsec && !s.observed?.ipsec) continue
    const shown = stepXfrmShown(s, observed)
    if (shown.length) s.xfrmShown = shown
  }
  return {steps, counts: countSteps(steps)}
}
