// The ipsec block in plans: a field change (key-free summaries), the xfrm lines an apply runs, and the checks
// against SAs and policies tunctl does not own.
import type {DesiredTunnel, FieldChange, ObservedState, ObservedTunnel, Plan} from '../model/types.js'
import {visible} from '../lib/text.js'
import {sameKeys} from './keys.js'
import {algorithmText, hex32, type IpsecParams} from './spec.js'
import {cloneSet, objectsFor, policyId, reconcile, saId, type XfrmSet} from './xfrm.js'

export interface IpsecSummary {
  algorithm: string
  spiOut: string
  spiIn: string
  replayWindow: number
  keys?: 'old' | 'new'
  problems?: string[]
}

/** What plan, show and --json say about a block: algorithm, SPIs, replay window; never keys. */
export function ipsecSummary(p: IpsecParams): IpsecSummary {
  return {algorithm: algorithmText(p), spiOut: hex32(p.spiOut), spiIn: hex32(p.spiIn), replayWindow: p.replayWindow}
}

export function ipsecText(v: unknown): string {
  if (!v || typeof v !== 'object') return 'none'
  const s = v as IpsecSummary
  let t = `${s.algorithm} spi-out ${s.spiOut} spi-in ${s.spiIn} replay-window ${s.replayWindow}`
  if (s.keys) t += ` (${s.keys} keys)`
  if (s.problems?.length) t += ` (${s.problems.join('; ')})`
  return visible(t)
}

/** The ipsec change of a tunnel, or undefined: summaries differ, keys differ (compared, never shown), or the kernel lacks part of it. */
export function diffIpsec(observed: IpsecParams | undefined, desired: IpsecParams | undefined): FieldChange | undefined {
  if (!observed && !desired) return undefined
  const from: IpsecSummary | null = observed ? ipsecSummary(observed) : null
  const to: IpsecSummary | null = desired ? ipsecSummary(desired) : null
  let changed = JSON.stringify(from) !== JSON.stringify(to)
  if (from && to && sameKeys(observed, desired) === false) {
    from.keys = 'old'
    to.keys = 'new'
    changed = true
  }
  if (from && observed?.problems?.length) {
    from.problems = observed.problems
    changed = true
  }
  return changed ? {field: 'ipsec', from, to} : undefined
}

/** The tunctl-owned xfrm objects the namespace should hold after `plan` (from what `observed` holds). */
export function targetXfrm(plan: Plan, observed: ObservedState): XfrmSet {
  const current = cloneSet(observed.xfrm ?? {sas: [], policies: []})
  const sas = new Map(current.sas.map((s) => [saId(s), s]))
  const pols = new Map(current.policies.map((p) => [policyId(p), p]))
  for (const s of plan.steps) {
    const o = s.observed
    if (o && o.params.mode === 'vti' && o.ipsec) {
      // everything marked for the old tunnel: its two SAs and its policies
      const old = objectsFor({params: o.params, ipsec: {...o.ipsec, spiOut: o.ipsec.spiOut, spiIn: o.ipsec.spiIn}})
      for (const x of old.sas) if (x.spi) sas.delete(saId(x))
      for (const x of old.policies) pols.delete(policyId(x))
    }
    if (s.kind !== 'delete' && s.desired?.ipsec && s.driver === 'kernel') {
      const now = objectsFor(s.desired)
      for (const x of now.sas) sas.set(saId(x), x)
      for (const x of now.policies) pols.set(policyId(x), x)
    }
  }
  return {sas: [...sas.values()], policies: [...pols.values()]}
}

/** The xfrm lines of an apply: keys in `lines` (for a stdin batch only), hidden in `shown`. */
export function xfrmLines(plan: Plan, observed: ObservedState): {lines: string[][]; shown: string[][]; disablePolicy: string[]} {
  const needs = plan.steps.some((s) => s.desired?.ipsec || s.observed?.ipsec)
  if (!needs) return {lines: [], shown: [], disablePolicy: []}
  const r = reconcile(observed.xfrm ?? {sas: [], policies: []}, targetXfrm(plan, observed))
  const disablePolicy = plan.steps.filter((s) => s.kind !== 'delete' && s.desired?.ipsec && s.driver === 'kernel').map((s) => s.name)
  return {...r, disablePolicy}
}

/** Problems of the desired ipsec blocks against what tunctl does not own: an SA with the same (dst, SPI), a policy with the same mark. */
export function xfrmConflicts(tunnels: DesiredTunnel[], observed: ObservedState): Array<{t: DesiredTunnel; message: string}> {
  const out: Array<{t: DesiredTunnel; message: string}> = []
  const x = observed.xfrm
  const wanted = tunnels.filter((t) => t.state === 'present' && t.ipsec)
  if (!wanted.length) return out
  if (!x) {
    for (const t of wanted) out.push({t, message: 'the kernel has no xfrm (IPsec) support here (`ip xfrm state` fails): load xfrm_user and esp4, or drop the ipsec block'})
    return out
  }
  const sas = new Set(x.foreignSas)
  const pols = new Set(x.foreignPolicies)
  for (const t of wanted) {
    const objs = objectsFor(t)
    for (const s of objs.sas) {
      if (sas.has(`${s.dst}|${s.spi}`)) out.push({t, message: `an SA tunctl does not own already uses SPI ${hex32(s.spi)} towards ${s.dst}; pick another ${s.dst === t.params.remote ? 'spi-out' : 'spi-in'}`})
    }
    const clash = objs.policies.filter((p) => pols.has(policyId(p)))
    if (clash.length) out.push({t, message: `xfrm policies tunctl does not own already use mark ${clash[0]!.mark} (dir ${clash.map((p) => `${p.dir} IPv${p.family}`).join(', ')}); pick another key`})
  }
  return out
}

/** Desired ipsec blocks against the SAs of the namespace's vtis that stay (not in the file, not deleted by the plan),
 * whatever their drivers: (destination, SPI) unique against the system as across the file (spec/semantic.ts). */
export function survivorSpiConflicts(tunnels: DesiredTunnel[], survivors: ObservedTunnel[]): Array<{t: DesiredTunnel; message: string}> {
  const held = new Map<string, string>()
  for (const o of survivors) if (o.ipsec) for (const s of objectsFor({params: o.params, ipsec: o.ipsec}).sas) held.set(`${s.dst}|${s.spi}`, o.name)
  const out: Array<{t: DesiredTunnel; message: string}> = []
  if (!held.size) return out
  for (const t of tunnels) {
    if (t.state !== 'present' || !t.ipsec) continue
    for (const s of objectsFor(t).sas) {
      const other = held.get(`${s.dst}|${s.spi}`)
      if (other) out.push({t, message: `SPI ${hex32(s.spi)} towards ${s.dst} is also used by an SA of existing tunnel "${visible(other)}"; the kernel keys SAs on (destination, SPI): pick another ${s.dst === t.params.remote ? 'spi-out' : 'spi-in'} (or list ${visible(other)} with state: absent, or use --prune)`})
    }
  }
  return out
}

/** `tunnel del`: the xfrm lines removing these tunnels' SAs and policies (tunctl's only). */
export function xfrmDeleteLines(observed: ObservedState, tunnels: Array<{params: {local: string; remote: string; ikey?: number; okey?: number}; ipsec?: IpsecParams}>): {lines: string[][]; shown: string[][]} {
  const x = observed.xfrm
  if (!x || !tunnels.some((t) => t.ipsec)) return {lines: [], shown: []}
  const target = cloneSet(x)
  for (const t of tunnels) {
    if (!t.ipsec) continue
    const old = objectsFor(t)
    const sa = new Set(old.sas.map(saId))
    const pol = new Set(old.policies.map(policyId))
    target.sas = target.sas.filter((s) => !sa.has(saId(s)))
    target.policies = target.policies.filter((p) => !pol.has(policyId(p)))
  }
  return reconcile(x, target)
}

/** The xfrm lines of one step as shown (keys hidden), for `plan --show-commands`: its tunnel's objects before → after. */
export function stepXfrmShown(s: {kind: string; driver: string; desired?: DesiredTunnel; observed?: {params: any; ipsec?: IpsecParams}}, observed: ObservedState): string[][] {
  const x = observed.xfrm ?? {sas: [], policies: []}
  let current: XfrmSet = {sas: [], policies: []}
  if (s.observed?.ipsec) {
    const old = objectsFor({params: s.observed.params, ipsec: s.observed.ipsec})
    const sa = new Set(old.sas.map(saId))
    const pol = new Set(old.policies.map(policyId))
    current = {sas: x.sas.filter((a) => sa.has(saId(a))), policies: x.policies.filter((p) => pol.has(policyId(p)))}
  }
  const target = s.kind !== 'delete' && s.desired?.ipsec && s.driver === 'kernel' ? objectsFor(s.desired) : {sas: [], policies: []}
  return reconcile(current, target).shown
}
