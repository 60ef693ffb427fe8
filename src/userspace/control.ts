// Starts, stops and observes the detached userspace encapsulator daemons (one per tunnel, per namespace).
import {spawn, execFile} from 'node:child_process'
import {existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import type {Counters, Mode, TunnelParams} from '../model/types.js'
import {CommandError, UnavailableError} from '../lib/errors.js'
import {addonAvailable} from './addon.js'
import {type EncapState, type EncapStats, logPath, nsDir, statePath, statsPath} from './paths.js'

const execFileP = promisify(execFile)

export interface EncapOptions {
  netns?: string
}

export interface ObservedEncap {
  params: TunnelParams
  pid?: number
  alive: boolean
  counters?: Counters
  /** the last error the daemon reported (it could not start) */
  error?: string
  /** ISO time of the last counters update */
  updatedAt?: string
  /** the TUN device uses offloads (TSO segmentation / TCP coalescing in the daemon) */
  offload?: boolean
}

const USERSPACE_MODES: readonly Mode[] = ['ipip', 'gre', 'sit', 'isatap']

/** Modes the userspace encapsulator implements (not vti: it needs IPsec). */
export function supportsUserspace(mode: Mode): boolean {
  return USERSPACE_MODES.includes(mode)
}

/** Why the userspace encapsulator cannot run here, or undefined if it can. */
export function userspaceUnavailableReason(): string | undefined {
  if (!addonAvailable()) return 'the native addon is not built (node scripts/build-native.mjs)'
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing'
  return undefined
}

const here = dirname(fileURLToPath(import.meta.url))

/** argv running the daemon: the compiled daemon.js beside this file, else dist/, else the TypeScript source via tsx. */
function daemonArgv(stateFile: string): string[] {
  // TUNCTL_DAEMON_NODE: another node binary or wrapper for the daemon. Otherwise this node, with the V8 flags
  // it was started with (e.g. --no-enable-avx inside user-mode-linux), but not loaders or the inspector.
  const envNode = process.env.TUNCTL_DAEMON_NODE
  const node = envNode ? [envNode] : [process.execPath, ...process.execArgv.filter((a) => /^--(no-|max-|stack-size)/.test(a))]
  const js = join(here, 'daemon.js')
  if (existsSync(js)) return [...node, js, stateFile]
  const dist = join(here, '..', '..', 'dist', 'userspace', 'daemon.js')
  if (existsSync(dist)) return [...node, dist, stateFile]
  return [...node, '--import', 'tsx', join(here, 'daemon.ts'), stateFile]
}

function writeAtomic(path: string, data: unknown) {
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n')
  renameSync(tmp, path)
}

function isParams(p: any): p is TunnelParams {
  return !!p && typeof p === 'object' && typeof p.mode === 'string' && USERSPACE_MODES.includes(p.mode)
}

function readJson<T>(path: string): T | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8'))
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as T) : undefined
  } catch {
    return undefined
  }
}

/** /proc/PID/stat field 22 (start time in clock ticks since boot), or undefined */
export function procStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // fields after the command name (which may hold spaces and parentheses): state is field 3
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const v = Number(rest[19])
    return Number.isFinite(v) ? v : undefined
  } catch {
    return undefined
  }
}

/**
 * A live (not zombie) process that is a tunctl encapsulator daemon: its command line runs daemon.js/daemon.ts, and
 * — when `stateFile` is given — for that state file, and — when `startTicks` is given — it started at that time.
 * The CLI signals only processes this proves to be the daemon of the tunnel (a reused pid fails the check).
 */
export function isDaemonAlive(pid: number | undefined, stateFile?: string, startTicks?: number): boolean {
  if (!pid || pid <= 0 || !Number.isInteger(pid)) return false
  try {
    process.kill(pid, 0)
  } catch (e: any) {
    if (e.code !== 'EPERM') return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (/\) Z /.test(stat)) return false // zombie
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    if (!argv.some((a) => /(^|\/)daemon\.[jt]s$/.test(a))) return false
    if (stateFile !== undefined && !argv.includes(stateFile)) return false
    if (startTicks !== undefined && procStartTicks(pid) !== startTicks) return false
    return true
  } catch {
    return false
  }
}

/** The daemon of tunnel `name` as recorded in its state file (else its stats file), if that process is it. */
function recordedDaemon(name: string, netns?: string): number | undefined {
  const sf = statePath(name, netns)
  for (const rec of [readJson<EncapState>(sf), readJson<EncapStats>(statsPath(name, netns))]) {
    if (rec && typeof rec.pid === 'number' && isDaemonAlive(rec.pid, sf, typeof rec.startTicks === 'number' ? rec.startTicks : undefined)) return rec.pid
  }
  return undefined
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Starts the encapsulator for `name` (or reconfigures a running one with SIGHUP) and resolves once its TUN
 * device exists and the data plane runs. Does not set addresses, mtu, up or alias: the engine does.
 */
export async function startEncap(name: string, params: TunnelParams, opts: EncapOptions = {}): Promise<{pid: number}> {
  if (!supportsUserspace(params.mode)) throw new UnavailableError(`mode ${params.mode} has no userspace encapsulator`)
  const why = userspaceUnavailableReason()
  if (why) throw new UnavailableError(`userspace encapsulator unavailable: ${why}`)
  if (params.proto === 'mplsip') throw new UnavailableError('the userspace encapsulator does not carry MPLS (encapsulated: mplsip)')
  const netns = opts.netns
  mkdirSync(nsDir(netns), {recursive: true})
  const sf = statePath(name, netns)
  const stf = statsPath(name, netns)
  const prev = readJson<EncapState>(sf)
  const generation = (typeof prev?.generation === 'number' ? prev.generation : 0) + 1
  const running = recordedDaemon(name, netns)
  const startTicks = running ? procStartTicks(running) : undefined
  const state: EncapState = {name, ...(netns ? {netns} : {}), params, generation, ...(running ? {pid: running, ...(startTicks ? {startTicks} : {})} : {})}
  writeAtomic(sf, state)

  let pid: number
  let child: ReturnType<typeof spawn> | undefined
  let exited: number | null = null
  if (running) {
    pid = running
    process.kill(pid, 'SIGHUP')
  } else {
    try {
      unlinkSync(stf)
    } catch {}
    const argv = daemonArgv(sf)
    const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv
    const fd = openSync(logPath(name, netns), 'a')
    try {
      child = spawn(full[0]!, full.slice(1), {detached: true, stdio: ['ignore', fd, fd], cwd: '/'})
    } finally {
      closeSync(fd)
    }
    child.on('exit', (code) => (exited = code ?? -1))
    child.on('error', () => (exited = -1))
    child.unref()
    pid = child.pid ?? 0
  }

  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const st = readJson<EncapStats>(stf)
    if (st?.error && st.generation === generation) {
      throw new CommandError(`userspace encapsulator for ${name} failed to start: ${st.error}`, ['daemon', sf], st.error)
    }
    if (st && st.generation === generation && !st.error) return {pid: st.pid}
    if (exited !== null) {
      const tail = readLog(name, netns)
      throw new CommandError(`userspace encapsulator for ${name} exited (${exited}) before starting`, ['daemon', sf], tail)
    }
    await sleep(50)
  }
  throw new CommandError(`userspace encapsulator for ${name} did not start within 10 s (pid ${pid})`, ['daemon', sf], readLog(name, netns))
}

function readLog(name: string, netns?: string): string {
  try {
    return readFileSync(logPath(name, netns), 'utf8').split('\n').slice(-10).join('\n')
  } catch {
    return ''
  }
}

async function linkExists(name: string, netns?: string): Promise<boolean> {
  return (await linkInfo(name, netns)) !== undefined
}

/** `ip -j -d link show dev NAME`, or undefined if there is no such link */
async function linkInfo(name: string, netns?: string): Promise<any | undefined> {
  try {
    const r = await execFileP('ip', [...(netns ? ['-n', netns] : []), '-j', '-d', 'link', 'show', 'dev', name])
    return (JSON.parse(String(r.stdout)) as any[])[0]
  } catch {
    return undefined
  }
}

/** a TUN device carrying tunctl's ownership mark (set by the native code before the device is made persistent) */
function isOwnedTun(link: any): boolean {
  return link?.linkinfo?.info_kind === 'tun' && typeof link.ifalias === 'string' && link.ifalias.startsWith('tunctl')
}

/**
 * Stops the encapsulator (SIGTERM, then SIGKILL after 3 s) — only a process proven to be this tunnel's daemon —,
 * deletes its device if left behind (when a state file records it, or the device is a tunctl-marked TUN device:
 * its state may be lost), removes its state, counters and log.
 */
export async function stopEncap(name: string, opts: EncapOptions = {}): Promise<void> {
  const netns = opts.netns
  const sf = statePath(name, netns)
  const state = readJson<EncapState>(sf)
  const pid = recordedDaemon(name, netns)
  if (pid) {
    const ticks = procStartTicks(pid)
    const same = () => isDaemonAlive(pid, sf, ticks)
    try {
      process.kill(pid, 'SIGTERM')
    } catch {}
    const deadline = Date.now() + 3000
    while (same() && Date.now() < deadline) await sleep(50)
    if (same()) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
      const d2 = Date.now() + 2000
      while (same() && Date.now() < d2) await sleep(50)
    }
  }
  const link = await linkInfo(name, netns)
  if (link && (state || isOwnedTun(link))) {
    try {
      await execFileP('ip', [...(netns ? ['-n', netns] : []), 'link', 'del', 'dev', name])
    } catch (e: any) {
      if (await linkExists(name, netns)) throw new CommandError(`deleting ${name}: ${String(e.stderr).trim()}`, ['ip', 'link', 'del', name], String(e.stderr))
    }
  }
  for (const f of [sf, statsPath(name, netns), logPath(name, netns)]) {
    try {
      unlinkSync(f)
    } catch {}
  }
}

/** Every encapsulator recorded for the namespace: params, pid, whether it is alive, last counters. */
export async function observeEncaps(opts: EncapOptions = {}): Promise<Map<string, ObservedEncap>> {
  const out = new Map<string, ObservedEncap>()
  const dir = nsDir(opts.netns)
  let files: string[]
  try {
    files = readdirSync(dir)
  } catch {
    return out
  }
  const names = new Set<string>()
  for (const f of files) {
    if (f.endsWith('.stats.json')) names.add(f.slice(0, -'.stats.json'.length))
    else if (f.endsWith('.json')) names.add(f.slice(0, -'.json'.length))
  }
  for (const name of [...names].sort()) {
    const sf = statePath(name, opts.netns)
    let state = readJson<EncapState>(sf)
    const st = readJson<EncapStats>(statsPath(name, opts.netns))
    if (state && (state.name !== name || !isParams(state.params))) state = undefined // not one of ours, or damaged
    // the state file is unreadable: the daemon's stats file names its parameters too
    const params = state?.params ?? (st?.name === name && isParams(st.params) ? st.params : undefined)
    if (!params) continue
    const rec = state?.pid !== undefined ? state : st
    const pid = typeof rec?.pid === 'number' ? rec.pid : undefined
    const alive = isDaemonAlive(pid, sf, typeof rec?.startTicks === 'number' ? rec.startTicks : undefined)
    const o: ObservedEncap = {params, alive, ...(pid ? {pid} : {})}
    if (st?.counters) {
      const {icmpSent: _i, tsoSegments: _t, groMerged: _g, otherTunnel: _o, offload, ...c} = st.counters as EncapStats['counters'] & Record<string, any>
      o.counters = c
      o.updatedAt = st.updatedAt
      if (offload !== undefined) o.offload = offload
    }
    if (st?.error) o.error = st.error
    out.set(name, o)
  }
  return out
}
