// Reads the namespace's tunnels (links, addresses, routes, userspace encapsulators) into an ObservedState.
import {existsSync} from 'node:fs'
import type {Mode, ObservedState} from '../model/types.js'
import {DRIVERS} from '../drivers/index.js'
import {run} from '../lib/exec.js'
import {ipJson} from '../lib/ip.js'
import {hostRtTables} from '../lib/rttables.js'
import {addXfrm} from '../ipsec/observe.js'
import {type EncapInfo, type ObserveOptions, type RawState, buildObserved, hasIsatap, isOwned} from './parse.js'

export * from './parse.js'

async function loadEncaps(opts: ObserveOptions): Promise<Map<string, EncapInfo> | undefined> {
  let mod: any
  try {
    mod = await import('../userspace/control.js')
  } catch {
    return undefined // the userspace driver is not built/installed
  }
  if (typeof mod?.observeEncaps !== 'function') return undefined
  return (await mod.observeEncaps({netns: opts.netns, counters: opts.counters})) as Map<string, EncapInfo>
}

/** Observes the namespace: `ip -j -d -s link show`, `ip -j addr show`, `ip -j -d route show table all` (not with routes: false)
 * (+ `ip tunnel show` only when an isatap tunnel exists, for its router list) and the userspace encapsulators.
 * counters: false leaves the tunnels' counters out (no `-s`, no userspace counters files read): planning,
 * verifying and rolling back compare configuration only, `show` prints the counters. */
export async function observe(opts: ObserveOptions & {routes?: boolean; xfrm?: boolean} = {}): Promise<ObservedState> {
  const o = {netns: opts.netns}
  const [links, addrs, routes] = await Promise.all([
    ipJson<any[]>([...(opts.counters === false ? [] : ['-s']), 'link', 'show'], o),
    ipJson<any[]>(['addr', 'show'], {...o, details: false}), // (addressesOf reads ifname and addr_info only)
    opts.routes === false ? [] : ipJson<any[]>(['route', 'show', 'table', 'all'], o),
  ])
  const raw: RawState = {links, addrs, routes, routesObserved: opts.routes !== false}
  if (hasIsatap(links)) {
    raw.tunnelShow = (await run('ip', [...(opts.netns ? ['-n', opts.netns] : []), 'tunnel', 'show'])).stdout
  }
  if (links.some((l) => l?.linkinfo?.info_kind === 'tun' && isOwned(l))) raw.encaps = await loadEncaps(opts)
  const state = buildObserved(raw, {...opts, tableNames: hostRtTables()})
  // vti ipsec blocks: tunctl's SAs and policies (+ foreign SA/policy ids), only where xfrm can exist
  await addXfrm(state, links, {netns: opts.netns, required: opts.xfrm})
  return state
}

// ---------- kernel support ----------

async function exitCode(cmd: string, args: string[]): Promise<number> {
  return (await run(cmd, args)).exitCode
}

/** What a support check may take from elsewhere instead of asking again (apply: its observation, observeEarly). */
export interface SupportHints {
  /** every link of the namespace (an observation's ObservedState.links): a mode's fallback device among them */
  links?: readonly string[]
  /** `modprobe -n -q MODULE` succeeded (true) or found nothing (false), by module (modulesLoadable) */
  loadable?: Map<string, boolean>
}

/**
 * Whether the kernel provides a mode in the namespace: its fallback device exists there (module loaded),
 * or /sys/module/<module> exists, or `modprobe -n -q <module>` says it could be loaded.
 */
export async function kernelSupport(mode: Mode, opts: ObserveOptions & {hints?: SupportHints} = {}): Promise<{available: boolean; reason: string; loaded?: boolean}> {
  const d = DRIVERS[mode]
  const mod = d.modules[0]!
  const dev = d.fallbackDevice
  const links = opts.hints?.links
  const args = [...(opts.netns ? ['-n', opts.netns] : []), 'link', 'show', 'dev', dev]
  if (links ? links.includes(dev) : (await exitCode('ip', args)) === 0) return {available: true, loaded: true, reason: `module ${mod} loaded (fallback device ${dev} exists)`}
  if (existsSync(`/sys/module/${mod}`)) return {available: true, loaded: true, reason: `module ${mod} loaded`}
  if (opts.hints?.loadable?.get(mod) ?? (await exitCode('modprobe', ['-n', '-q', mod])) === 0) return {available: true, reason: `module ${mod} loadable`}
  return {available: false, reason: `kernel has no ${mod} (no fallback device ${dev}, not in /sys/module, modprobe cannot find it)`}
}

/** The kernel modules of every mode. */
export function modeModules(): string[] {
  return [...new Set(Object.values(DRIVERS).map((d) => d.modules[0]!))]
}

/**
 * `modprobe -n -q` of each module (a dry run: loads nothing), all in one child process: true = loadable, false =
 * not found; a module whose modprobe could not tell (not installed: exit 127) is left out (kernelSupport asks itself).
 */
export async function modulesLoadable(mods: string[]): Promise<Map<string, boolean>> {
  const r = await run('sh', ['-c', 'for m; do modprobe -n -q "$m" 2>/dev/null; echo "$m $?"; done', 'sh', ...mods])
  const out = new Map<string, boolean>()
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) (\d+)$/.exec(line)
    if (m && mods.includes(m[1]!) && (m[2] === '0' || m[2] === '1')) out.set(m[1]!, m[2] === '0')
  }
  return out
}
