// Pure: plan steps → ip batch lines (argv without `ip`) plus userspace encapsulator actions, with line → step mapping.
import type {PlanStep, Plan, RouteSpec, TunnelParams} from '../model/types.js'
import type {IpsecParams} from '../ipsec/spec.js'
import {diffAddresses, diffRoutes, effectiveParams, PARAM_FIELDS, USERSPACE_LINK_FIELDS, deepEqual, type Drivers} from './diff.js'

/**
 * What the engine sets on the TUN device a userspace create makes, in the commit that makes it (native/nlbatch.c:
 * one netlink batch for all of them), instead of batch lines: its addresses and up state (its ownership mark and
 * MTU, `params.mtu` or the kernel's default, it gets when it is made).
 */
export interface CreatedDevice {
  addresses: string[]
  up: boolean
}

/** Something done outside the batch: start/stop a userspace encapsulator, or delete a link on its own. */
export type SideAction =
  | {op: 'start'; name: string; params: TunnelParams; ipsec?: IpsecParams; device?: CreatedDevice}
  | {op: 'stop'; name: string}
  | {op: 'dellink'; name: string}

export interface StepProgram {
  step: PlanStep
  /** run before the batch, in order */
  pre: SideAction[]
  /** batch lines that run before every step's `lines`: the routes updates remove (so that another tunnel of the
   * same plan can add a route with that key; `route add` refuses a key that is still held) */
  early: string[][]
  lines: string[][]
  /** run after the batch */
  post: SideAction[]
}

export interface Compiled {
  programs: StepProgram[]
  /** every batch line, in order */
  lines: string[][]
  /** lineStep[i] = index into programs of the step that batch line i+1 belongs to */
  lineStep: number[]
  /** the userspace deletions made as one group deletion (see GroupDelete), when the plan has them */
  groupDelete?: GroupedDeletion
}

/**
 * Many userspace tunnels deleted at once: each TUN device's unregistration alone waits for an RCU grace period
 * (~18 ms: 1000 devices ~18 s), while one RTM_DELLINK by group (`ip link del group G`) unregisters them all in one
 * unregister_netdevice_many (1000 devices ~0.2-0.3 s, measured on this host). So each device is moved to group
 * `group`, a number no link of the namespace uses (the executor checks that under the namespace lock), then the
 * group is deleted: only the devices of the plan's delete steps are ever in it.
 */
export interface GroupDelete {
  group: number
  /** each link's group as `ip` prints it ("default", a number or a name), to put back a device not deleted */
  groups: Map<string, string>
}

export interface GroupedDeletion {
  group: number
  /** 1-based batch line of `link del group G` */
  line: number
  /** the `link set dev NAME group G` lines (1-based) and the group each device had before */
  moved: Array<{line: number; name: string; from: string}>
}

/** Fewer userspace deletions than this run as one `link del dev` each (a group costs two more lines). */
export const GROUP_DELETE_MIN = 2

/** the steps whose deletion can go through a group: deletes of userspace (TUN) devices */
export function groupDeletable(s: PlanStep): boolean {
  return s.kind === 'delete' && s.observed?.driver === 'userspace'
}

export const OWNER_ALIAS = 'tunctl'

export function describeStep(s: PlanStep): string {
  const sym = {create: '+', update: '~', replace: '-/+', delete: '-'}[s.kind]
  return `${sym} ${s.name} (${s.kind})`
}

function routeArgs(r: RouteSpec, name: string): string[] {
  const a = [r.to, 'dev', name]
  if (r.via) a.push('via', r.via)
  if (r.metric !== undefined) a.push('metric', String(r.metric))
  a.push('table', String(r.table))
  return a
}

export function addrAddLine(name: string, cidr: string): string[] {
  return ['addr', 'add', cidr, 'dev', name]
}
export function addrDelLine(name: string, cidr: string): string[] {
  return ['addr', 'del', cidr, 'dev', name]
}
/** `route add`, never `route replace`: the kernel refuses (EEXIST) a (table, prefix, metric) another route holds
 * instead of silently taking it over (plan refuses those beforehand: ConflictError). */
export function routeAddLine(name: string, r: RouteSpec): string[] {
  return ['route', 'add', ...routeArgs(r, name)]
}
export function routeDelLine(name: string, r: RouteSpec): string[] {
  return ['route', 'del', ...routeArgs(r, name)]
}
export function linkDelLine(name: string): string[] {
  return ['link', 'del', 'dev', name]
}

/** Lines bringing a freshly made link (kernel: after encodeCreate; userspace: the TUN device) to the desired state. */
export function disowns(s: PlanStep): boolean {
  return s.changes.some((c) => c.field === 'owned' && c.to === false)
}

function createTail(s: PlanStep, userspace: boolean): string[][] {
  const t = s.desired!
  const lines: string[][] = []
  // a userspace device gets its mark, MTU, addresses and up state from the engine that makes it (CreatedDevice)
  if (!userspace) {
    if (!disowns(s)) lines.push(['link', 'set', 'dev', s.name, 'alias', OWNER_ALIAS])
    for (const a of t.addresses) lines.push(addrAddLine(s.name, a))
    if (t.params.up) lines.push(['link', 'set', 'dev', s.name, 'up'])
  }
  // routes need the device up (the kernel refuses routes on a down link)
  for (const r of t.routes) lines.push(routeAddLine(s.name, r))
  return lines
}

function compileStep(s: PlanStep, drivers: Drivers): StepProgram {
  const prog: StepProgram = {step: s, pre: [], early: [], lines: [], post: []}
  const name = s.name
  if (s.kind === 'delete') {
    prog.lines.push(linkDelLine(name))
    if (s.observed?.driver === 'userspace') prog.post.push({op: 'stop', name})
    return prog
  }
  const t = s.desired!
  if (s.kind === 'create' || s.kind === 'replace') {
    const oldUser = s.kind === 'replace' && s.observed?.driver === 'userspace'
    if (s.driver === 'userspace') {
      if (s.kind === 'replace') {
        if (oldUser) prog.pre.push({op: 'stop', name})
        prog.pre.push({op: 'dellink', name})
      }
      prog.pre.push({op: 'start', name, params: t.params, ...(t.ipsec ? {ipsec: t.ipsec} : {}), device: {addresses: t.addresses, up: t.params.up}})
      prog.lines.push(...createTail(s, true))
    } else {
      if (s.kind === 'replace') {
        if (oldUser) {
          prog.pre.push({op: 'stop', name})
          prog.pre.push({op: 'dellink', name})
        } else prog.lines.push(linkDelLine(name))
      }
      prog.lines.push(...drivers[t.params.mode].encodeCreate(name, t.params))
      prog.lines.push(...createTail(s, false))
    }
    return prog
  }
  // update in place
  const o = s.observed!
  const from = o.params
  const to = effectiveParams(t.params, from)
  const paramChanged = PARAM_FIELDS.some((f) => f !== 'up' && !deepEqual(from[f], to[f]))
  const encapChanged = s.driver === 'userspace' && PARAM_FIELDS.some((f) => !USERSPACE_LINK_FIELDS.has(f) && !deepEqual(from[f], to[f]))
  // (re)start the encapsulator: a dead one is restarted, a live one reloads its parameters
  // vti: a changed ipsec block (SPIs, algorithm, window, keys) reloads the daemon with the new SA
  const espChanged = s.driver === 'userspace' && s.changes.some((c) => c.field === 'ipsec')
  if (s.changes.some((c) => c.field === 'encapsulator') || encapChanged || espChanged) prog.pre.push({op: 'start', name, params: t.params, ...(t.ipsec ? {ipsec: t.ipsec} : {})})
  if (paramChanged) {
    if (s.driver === 'kernel') {
      prog.lines.push(...drivers[t.params.mode].encodeUpdate(name, {...from, up: to.up}, to))
    } else if (from.mtu !== to.mtu && to.mtu !== undefined) {
      prog.lines.push(['link', 'set', 'dev', name, 'mtu', String(to.mtu)])
    }
  }
  if (!o.owned && !disowns(s)) prog.lines.push(['link', 'set', 'dev', name, 'alias', OWNER_ALIAS])
  if (o.owned && disowns(s)) prog.lines.push(['link', 'set', 'dev', name, 'alias', ''])
  const a = diffAddresses(o.addresses, t.addresses)
  for (const x of a.del) prog.lines.push(addrDelLine(name, x))
  for (const x of a.add) prog.lines.push(addrAddLine(name, x))
  if (!from.up && to.up) prog.lines.push(['link', 'set', 'dev', name, 'up'])
  const r = diffRoutes(o.routes, t.routes)
  for (const x of r.del) prog.early.push(routeDelLine(name, x))
  for (const x of r.add) prog.lines.push(routeAddLine(name, x))
  if (from.up && !to.up) prog.lines.push(['link', 'set', 'dev', name, 'down'])
  return prog
}

/**
 * Compile a whole plan; steps keep the plan's order (deletes, replaces, updates, creates). With `group` and at
 * least GROUP_DELETE_MIN userspace deletions, those run as one group deletion (GroupDelete), right after the
 * last of their steps' lines: before any replace or create, which may reuse their addresses and routes.
 */
export function compilePlan(plan: Plan, drivers: Drivers, group?: GroupDelete): Compiled {
  const programs = plan.steps.map((s) => compileStep(s, drivers))
  const grouped = group && plan.steps.filter(groupDeletable).length >= GROUP_DELETE_MIN ? group : undefined
  let lastGrouped = -1
  if (grouped) plan.steps.forEach((s, i) => groupDeletable(s) && (lastGrouped = i))
  const lines: string[][] = []
  const lineStep: number[] = []
  const moved: GroupedDeletion['moved'] = []
  let delLine = 0
  programs.forEach((p, i) => {
    for (const l of p.early) {
      lines.push(l)
      lineStep.push(i)
    }
  })
  programs.forEach((p, i) => {
    const toGroup = grouped !== undefined && groupDeletable(p.step)
    for (const l of p.lines) {
      if (toGroup && l[0] === 'link' && l[1] === 'del') {
        lines.push(['link', 'set', 'dev', p.step.name, 'group', String(grouped.group)])
        moved.push({line: lines.length, name: p.step.name, from: grouped.groups.get(p.step.name) ?? 'default'})
      } else lines.push(l)
      lineStep.push(i)
    }
    if (i === lastGrouped) {
      lines.push(['link', 'del', 'group', String(grouped!.group)])
      lineStep.push(i)
      delLine = lines.length
    }
  })
  return {programs, lines, lineStep, ...(grouped ? {groupDelete: {group: grouped.group, line: delLine, moved}} : {})}
}

/**
 * A group number for GroupDelete that no link uses: ip prints a link's group as "default" (0), a number, or a
 * name from /etc/iproute2/group (whose numbers are small by convention); tunctl's numbers start far above them.
 */
export function freeGroup(groups: Map<string, string>): number {
  const used = new Set(groups.values())
  let g = 0x74756e63 // "tunc"
  while (used.has(String(g))) g++
  return g
}

/**
 * The group for a plan's userspace deletions, when there are at least GROUP_DELETE_MIN of them and `linkGroups`
 * (every link's group as ip prints it) is given: apply's executor and `plan --show-commands` both take it from here.
 */
export async function groupDeleteFor(plan: Plan, linkGroups?: () => Promise<Map<string, string>>): Promise<GroupDelete | undefined> {
  if (!linkGroups || plan.steps.filter(groupDeletable).length < GROUP_DELETE_MIN) return undefined
  const groups = await linkGroups()
  return {group: freeGroup(groups), groups}
}

/** The plan step a 1-based batch line belongs to. */
export function stepForLine(c: Compiled, line: number): PlanStep | undefined {
  const i = c.lineStep[line - 1]
  return i === undefined ? undefined : c.programs[i]!.step
}

export function formatSide(a: SideAction): string {
  if (a.op === 'start' && a.device) {
    // what the engine does to the device it makes (native/nlbatch.c), in the words of the ip lines it replaces
    const d = a.device
    const what = [`alias ${OWNER_ALIAS}`, ...(a.params.mtu !== undefined ? [`mtu ${a.params.mtu}`] : []), ...d.addresses.map((x) => `addr ${x}`), ...(d.up ? ['up'] : [])]
    return `(userspace) start encapsulator for ${a.name}, its new device: ${what.join(', ')}`
  }
  if (a.op === 'start') return `(userspace) start encapsulator for ${a.name}`
  if (a.op === 'stop') return `(userspace) stop encapsulator of ${a.name}`
  return `ip link del dev ${a.name}`
}
