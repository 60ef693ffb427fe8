// Renders a Plan as text (`+`, `~`, `-/+`, `-` lines ending with the Plan: summary) or as JSON.
import {quoteBatchWord, visible} from '../lib/text.js'
import {ipsecSummary, ipsecText} from '../ipsec/plan.js'

/** A batch line as ip -batch gets it (a word it cannot carry shown in JSON quotes). */
function shownLine(l: string[]): string {
  return l.map((w) => {
    try {
      return quoteBatchWord(w)
    } catch {
      return JSON.stringify(w)
    }
  }).join(' ')
}
import {Chalk} from 'chalk'
import type {FieldChange, Plan, PlanStep, RouteSpec, TunnelParams} from '../model/types.js'
import {FIELD_BY_NAME, fieldLabel, isDefault} from '../model/fields.js'
import {compilePlan, formatSide, type Compiled, type GroupDelete} from './lines.js'
import type {Drivers} from './diff.js'

export interface RenderOptions {
  color: boolean
  showCommands?: boolean
  /** needed for showCommands */
  drivers?: Drivers
  /** with showCommands: the group apply would delete many userspace tunnels through (groupDeleteFor) */
  group?: GroupDelete
  /** name of the spec file, for the "No changes" line */
  file?: string
}

export {fieldLabel}

export function formatRoute(r: RouteSpec): string {
  const to = r.to === '0.0.0.0/0' || r.to === '::/0' ? 'default' : r.to
  let s = to
  if (r.via) s += ` via ${r.via}`
  if (r.metric !== undefined) s += ` metric ${r.metric}`
  if (r.table !== 254) s += ` table ${r.table}`
  return s
}

export function formatValue(field: string, v: unknown): string {
  if (field === 'ipsec') return ipsecText(v) // algorithm, SPIs, replay window: never keys
  if (v === undefined || v === null) {
    if (field === 'mtu') return 'default'
    if (field === 'dev') return 'none'
    return 'none'
  }
  if (FIELD_BY_NAME.get(field)?.inherit === v) return 'inherit' // ttl 0, tos 1
  if (field === 'routers' && Array.isArray(v)) {
    return '[' + v.map((r: any) => (r.default ? `${r.address} (default)` : r.address)).join(', ') + ']'
  }
  if (Array.isArray(v)) return '[' + v.map((x) => visible(String(x))).join(', ') + ']'
  return visible(String(v)) // a foreign underlay name, say: never raw
}

/** One line per field change; addresses and routes as per-item +/- lines. */
export function changeLines(c: FieldChange): Array<{sym: '+' | '-' | '~'; text: string}> {
  if (c.field === 'addresses') {
    const from = (c.from as string[]) ?? []
    const to = (c.to as string[]) ?? []
    return [
      ...from.filter((a) => !to.includes(a)).map((a) => ({sym: '-' as const, text: `address ${a}`})),
      ...to.filter((a) => !from.includes(a)).map((a) => ({sym: '+' as const, text: `address ${a}`})),
    ]
  }
  if (c.field === 'routes') {
    const from = ((c.from as RouteSpec[]) ?? []).map(formatRoute)
    const to = ((c.to as RouteSpec[]) ?? []).map(formatRoute)
    return [
      ...from.filter((a) => !to.includes(a)).map((a) => ({sym: '-' as const, text: `route ${a}`})),
      ...to.filter((a) => !from.includes(a)).map((a) => ({sym: '+' as const, text: `route ${a}`})),
    ]
  }
  return [{sym: '~', text: `${fieldLabel(c.field)}: ${formatValue(c.field, c.from)} → ${formatValue(c.field, c.to)}`}]
}

/** The attributes of a tunnel to be created, non-default ones only (local/remote always). */
export function createLines(s: PlanStep): string[] {
  const t = s.desired!
  const p = t.params
  const out: string[] = []
  for (const [k, v] of Object.entries(p) as Array<[keyof TunnelParams, unknown]>) {
    if (k === 'mode' || v === undefined) continue
    if (Array.isArray(v) && v.length === 0) continue
    if (k !== 'local' && k !== 'remote' && isDefault(k, v)) continue
    out.push(`${fieldLabel(k)}: ${formatValue(k, v)}`)
  }
  for (const a of t.addresses) out.push(`address ${a}`)
  for (const r of t.routes) out.push(`route ${formatRoute(r)}`)
  if (t.ipsec) out.push(`ipsec: ${ipsecText(ipsecSummary(t.ipsec))}`)
  return out
}

const SYM: Record<PlanStep['kind'], string> = {create: '+', update: '~', replace: '-/+', delete: '-'}

export function summaryLine(plan: Plan): string {
  const c = plan.counts
  return `Plan: ${c.create} to create, ${c.update} to update, ${c.replace} to replace, ${c.delete} to delete.`
}

export function renderPlan(plan: Plan, opts: RenderOptions): string {
  const ch = new Chalk({level: opts.color ? 1 : 0})
  const paint: Record<string, (s: string) => string> = {
    '+': ch.green,
    '~': ch.yellow,
    '-/+': ch.magenta,
    '-': ch.red,
  }
  const out: string[] = []
  if (plan.steps.length === 0) {
    out.push(`No changes. The system matches ${opts.file ?? 'the file'}.`)
    out.push(summaryLine(plan))
    return out.join('\n') + '\n'
  }
  let compiled: Compiled | undefined
  if (opts.showCommands) {
    if (!opts.drivers) throw new Error('renderPlan: showCommands needs drivers')
    compiled = compilePlan(plan, opts.drivers, opts.group)
  }
  // each step's batch lines (0-based), as compiled: a step's early lines run before every step's other lines, and a
  // group deletion replaces the steps' `link del dev`
  const stepLines: number[][] = []
  compiled?.lineStep.forEach((i, j) => (stepLines[i] ??= []).push(j))
  plan.steps.forEach((s, i) => {
    const sym = SYM[s.kind]
    const mode = stepMode(s)
    let head = `${sym} ${ch.bold(visible(s.name))} (${mode}, ${s.driver})`
    if (s.kind === 'replace' && s.reason) head += ` — replace: ${s.reason}`
    if (s.kind === 'delete' && s.reason) head += ` — ${s.reason}`
    out.push(paint[sym]!(head))
    if (s.driverReason && s.kind !== 'delete') out.push(ch.dim(`    driver ${s.driverReason}`))
    if (s.kind === 'create') {
      for (const l of createLines(s)) out.push(paint['+']!(`    + ${l}`))
    } else if (s.kind !== 'delete') {
      for (const c of s.changes) {
        if (c.field === 'mode' || c.field === 'driver') {
          out.push(paint['~']!(`    ~ ${c.field}: ${formatValue(c.field, c.from)} → ${formatValue(c.field, c.to)}`))
          continue
        }
        for (const l of changeLines(c)) out.push(paint[l.sym]!(`    ${l.sym} ${l.text}`))
      }
    }
    if (compiled) {
      const prog = compiled.programs[i]!
      for (const a of prog.pre) out.push(ch.cyan(`    $ ${formatSide(a)}`))
      for (const j of stepLines[i] ?? []) out.push(ch.cyan(`    $ [${j + 1}] ip ${visible(shownLine(compiled.lines[j]!))}`))
      for (const a of prog.post) out.push(ch.cyan(`    $ ${formatSide(a)}`))
      // vti ipsec: the SA/policy lines (their own stdin-fed ip -batch, run before the link batch; keys hidden)
      for (const l of s.xfrmShown ?? []) out.push(ch.cyan(`    $ [xfrm] ip ${visible(shownLine(l))}`))
    }
  })
  out.push('')
  out.push(summaryLine(plan))
  return out.join('\n') + '\n'
}

/** The mode a step shows: a delete's is the tunnel's that exists (`state: absent` names it by its name whatever mode
 * the file says), every other step's the one it makes. */
export function stepMode(s: PlanStep): string | undefined {
  return s.kind === 'delete' ? (s.observed?.params.mode ?? s.desired?.params.mode) : (s.desired?.params.mode ?? s.observed?.params.mode)
}

/** JSON form of a plan (see schemas/plan-output.schema.json). */
export function planToJSON(plan: Plan): Record<string, unknown> {
  return {
    steps: plan.steps.map((s) => ({
      action: s.kind,
      name: s.name,
      mode: stepMode(s),
      driver: s.driver,
      driverReason: s.driverReason,
      reason: s.reason,
      changes: s.changes,
      desired: s.desired
        ? {params: s.desired.params, addresses: s.desired.addresses, routes: s.desired.routes, ...(s.desired.ipsec ? {ipsec: ipsecSummary(s.desired.ipsec)} : {})}
        : undefined,
    })),
    counts: plan.counts,
    changes: plan.steps.length > 0,
  }
}
