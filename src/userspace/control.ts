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

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T
  } catch {
    return undefined
  }
}

/** A live process that is our daemon (guards against pid reuse). */
export function isDaemonAlive(pid: number | undefined): boolean {
  if (!pid || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (e: any) {
    if (e.code !== 'EPERM') return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (/\) Z /.test(stat)) return false // zombie
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    return cmd.includes('daemon')
  } catch {
    return false
  }
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
  const generation = (prev?.generation ?? 0) + 1
  const running = prev && isDaemonAlive(prev.pid) ? prev.pid : undefined
  const state: EncapState = {name, ...(netns ? {netns} : {}), params, generation, ...(running ? {pid: running} : {})}
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

  try {
    return await awaitStart(name, sf, stf, generation, pid, () => exited, netns)
  } catch (e) {
    // a start that failed leaves nothing of its own behind: the process we spawned is killed; a brand-new
    // tunnel's device, state, counters and log are removed; a restart (of a dead daemon) gets its old state back
    if (child) {
      if (exited === null && pid > 0) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
      }
      if (prev) writeAtomic(sf, prev)
      else await stopEncap(name, opts).catch(() => {})
    }
    throw e
  }
}

/** Waits until the daemon reports this generation running (resolves its pid) or failed (throws, with its log). */
async function awaitStart(name: string, sf: string, stf: string, generation: number, pid: number, exited: () => number | null, netns?: string): Promise<{pid: number}> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const st = readJson<EncapStats>(stf)
    if (st?.error && st.generation === generation) {
      throw new CommandError(`userspace encapsulator for ${name} failed to start: ${st.error}`, ['daemon', sf], st.error)
    }
    if (st && st.generation === generation && !st.error) return {pid: st.pid}
    const code = exited()
    if (code !== null) {
      throw new CommandError(`userspace encapsulator for ${name} exited (${code}) before starting`, ['daemon', sf], readLog(name, netns))
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
  try {
    await execFileP('ip', [...(netns ? ['-n', netns] : []), 'link', 'show', 'dev', name])
    return true
  } catch {
    return false
  }
}

/** Stops the encapsulator (SIGTERM, then SIGKILL after 3 s), deletes its device if left behind, removes its state, counters and log. */
export async function stopEncap(name: string, opts: EncapOptions = {}): Promise<void> {
  const netns = opts.netns
  const sf = statePath(name, netns)
  const state = readJson<EncapState>(sf)
  const pid = state?.pid
  if (pid && isDaemonAlive(pid)) {
    process.kill(pid, 'SIGTERM')
    const deadline = Date.now() + 3000
    while (isDaemonAlive(pid) && Date.now() < deadline) await sleep(50)
    if (isDaemonAlive(pid)) {
      process.kill(pid, 'SIGKILL')
      const d2 = Date.now() + 2000
      while (isDaemonAlive(pid) && Date.now() < d2) await sleep(50)
    }
  }
  if (state && (await linkExists(name, netns))) {
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
  for (const f of files.sort()) {
    if (!f.endsWith('.json') || f.endsWith('.stats.json')) continue
    const state = readJson<EncapState>(join(dir, f))
    if (!state?.name || !state.params) continue
    if (`${state.name}.json` !== f) continue // not one of ours
    const st = readJson<EncapStats>(statsPath(state.name, opts.netns))
    const pid = state.pid ?? st?.pid
    const alive = isDaemonAlive(pid)
    const o: ObservedEncap = {params: state.params, alive, ...(pid ? {pid} : {})}
    if (st?.counters) {
      const {icmpSent: _i, tsoSegments: _t, groMerged: _g, otherTunnel: _o, offload, ...c} = st.counters as EncapStats['counters'] & Record<string, any>
      o.counters = c
      o.updatedAt = st.updatedAt
      if (offload !== undefined) o.offload = offload
    }
    if (st?.error) o.error = st.error
    out.set(state.name, o)
  }
  return out
}
