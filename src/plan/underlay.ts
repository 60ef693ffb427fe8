// A tunnel's underlay device (`dev`) against the observed namespace: the kernel looks the device up when it creates
// or changes the tunnel (ip link add … dev X: "Cannot find device"), so a plan refuses one that will not be there
// then, at the `dev` value in the file (exit 65), instead of an apply that fails in its batch and rolls back.
import type {ObservedState, PlanStep} from '../model/types.js'
import type {Conflict} from './diff.js'

export function underlayConflicts(steps: readonly PlanStep[], observed: ObservedState): Conflict[] {
  const out: Conflict[] = []
  let links: Set<string> | undefined
  const stepOf = new Map(steps.map((s) => [s.name, s]))
  const where = observed.netns ? `network namespace ${observed.netns}` : 'the root network namespace'
  for (const s of steps) {
    if (s.kind === 'delete' || !s.desired?.params.dev) continue
    const dev = s.desired.params.dev
    const other = stepOf.get(dev)
    let message: string | undefined
    // a tunnel of the same plan: the batch creates (or deletes and creates again) it in the same run, and the
    // kernel resolves `dev` to an ifindex once, when it creates this tunnel
    if (other?.kind === 'create') message = `device ${dev} does not exist yet: this file creates it, and the kernel needs the underlay device when it creates ${s.name}; apply ${dev} first, then ${s.name} with dev: ${dev}`
    else if (other?.kind === 'replace') message = `device ${dev} is replaced (deleted and created again) by this file: ${s.name} would point at the deleted device; apply ${dev} first, then ${s.name}`
    else if (other?.kind === 'delete') message = `device ${dev} is deleted by this file: ${s.name} would point at a deleted device`
    else if (!(links ??= new Set(observed.links)).has(dev)) message = `device ${dev} does not exist in ${where}`
    if (message) out.push({name: s.name, pointer: `${s.desired.pointer}/dev`, at: s.desired.devAt ?? s.desired.at, message})
  }
  return out
}
