// Starts, stops and observes the detached userspace encapsulator daemons (one per tunnel, per namespace).
import {spawn, execFile} from 'node:child_process'
import {existsSync, closeSync, readFileSync, readdirSync, unlinkSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import type {Counters, Mode, TunnelParams} from '../model/types.js'
import {CommandError, UnavailableError} from '../lib/errors.js'
import {addonAvailable} from './addon.js'
import {ensureRunDir, openAppend, warnOnce, writeAtomic} from '../lib/rundir.js'
import type {IpsecParams} from '../ipsec/spec.js'
import {espRecord, observedIpsec} from '../ipsec/userspace.js'
import {KEYFILE_RECORDS} from '../ipsec/record.js'
import {type EncapState, type EncapStats, type EspStats, isEncapState, isEncapStats, legacyNsDir, legacyStateIsFor, logPath, nsDir, statePath, statsPath} from './paths.js'

const execFileP = promisify(execFile)

export interface EncapOptions {
  netns?: string
  /** vti: its ipsec block, key file already read (src/ipsec/userspace.ts: only its path and fingerprint are recorded) */
  ipsec?: IpsecParams
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
  /** vti: the ipsec block it runs (key-free; keys compare by fingerprint) and its ESP counters */
  ipsec?: IpsecParams
  esp?: EspStats
}

const USERSPACE_MODES: readonly Mode[] = ['ipip', 'gre', 'sit', 'isatap', 'vti']

/** Modes the userspace encapsulator implements (vti: ESP in native/vti.c). */
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

/** A state or stats file, validated: missing → undefined; corrupt → undefined with a warning (never trusted). */
function readChecked<T>(path: string, valid: (v: unknown) => v is T, what: string): T | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
  try {
    const v = JSON.parse(text)
    if (valid(v)) return v
  } catch {}
  // a stats file can be caught mid-rewrite only by a non-atomic writer; say so once, go on without it
  warnOnce(path, `ignoring ${what} ${path}: not what tunctl writes (corrupt or edited)`)
  return undefined
}

const readState = (path: string) => readChecked(path, isEncapState, 'state file')
const readStats = (path: string) => readChecked(path, isEncapStats, 'counters file')

/** The pid of a daemon started with this state file (its argv names it), when the state file cannot say. */
function daemonFor(stateFile: string): number | undefined {
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p))
  } catch {
    return undefined
  }
  for (const p of pids) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')
      if (argv.includes(stateFile) && isDaemonAlive(Number(p), stateFile)) return Number(p)
    } catch {}
  }
  return undefined
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

function isParams(p: any): p is TunnelParams {
  return !!p && typeof p === 'object' && typeof p.mode === 'string' && USERSPACE_MODES.includes(p.mode)
}

/**
 * The daemon of tunnel `name`: the pid its state file (else its stats file) records, if that process is proven to
 * be it (cmdline, state file, start time); with a corrupt state file, the process whose argv names that file.
 */
export function recordedDaemon(name: string, netns?: string): number | undefined {
  const sf = statePath(name, netns)
  const stf = statsPath(name, netns)
  for (const rec of [existsSync(sf) ? readState(sf) : undefined, existsSync(stf) ? readStats(stf) : undefined]) {
    if (rec && typeof rec.pid === 'number' && isDaemonAlive(rec.pid, sf, typeof rec.startTicks === 'number' ? rec.startTicks : undefined)) return rec.pid
  }
  return existsSync(sf) && !readState(sf) ? daemonFor(sf) : undefined
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
  ensureRunDir(netns)
  const sf = statePath(name, netns)
  const stf = statsPath(name, netns)
  const prev = readState(sf)
  const generation = (prev?.generation ?? 0) + 1
  // a live daemon (also one whose state file was corrupt) is reconfigured with SIGHUP from the state written here
  const running = recordedDaemon(name, netns)
  const startTicks = running ? procStartTicks(running) : undefined
  const ipsec = params.mode === 'vti' && opts.ipsec ? {ipsec: espRecord(opts.ipsec)} : {}
  const state: EncapState = {name, ...(netns ? {netns} : {}), params, generation, ...(running ? {pid: running, ...(startTicks ? {startTicks} : {})} : {}), ...ipsec}
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
    const fd = openAppend(logPath(name, netns))
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
    const st = existsSync(stf) ? readStats(stf) : undefined
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
  return link?.linkinfo?.info_kind === 'tun' && link.ifalias === 'tunctl' // the exact mark, as observe's isOwned
}

/**
 * Stops the encapsulator (SIGTERM, then SIGKILL after 3 s) — only a process proven to be this tunnel's daemon —,
 * deletes its device if left behind (when a state file records it, or the device is a tunctl-marked TUN device:
 * its state may be lost), removes its state, counters and log.
 */
export async function stopEncap(name: string, opts: EncapOptions = {}): Promise<void> {
  const netns = opts.netns
  const sf = statePath(name, netns)
  const state = existsSync(sf) ? readState(sf) : undefined
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
  // the current directory, then the legacy one (a tunnel started by an older release), whose files must name
  // this namespace; a name found in the current one wins
  for (const [dir, legacy] of [[nsDir(opts.netns), false], [legacyNsDir(opts.netns), true]] as const) {
    let files: string[]
    try {
      files = readdirSync(dir)
    } catch {
      continue
    }
    const names = new Set<string>()
    for (const f of files) {
      // not tunnels: vti ipsec's key-file references (src/ipsec/record.ts), the apply journal (src/lib/journal.ts)
      if (f.startsWith('.') || f === KEYFILE_RECORDS || f === 'journal.json') continue
      if (f.endsWith('.stats.json')) names.add(f.slice(0, -'.stats.json'.length))
      else if (f.endsWith('.json')) names.add(f.slice(0, -'.json'.length))
    }
    for (const name of [...names].sort()) {
      if (out.has(name)) continue // shadowed by the current layout
      const sf = join(dir, `${name}.json`)
      const stf = join(dir, `${name}.stats.json`)
      if (legacy && !legacyStateIsFor(sf, opts.netns)) continue
      let state = existsSync(sf) ? readState(sf) : undefined
      const st = existsSync(stf) ? readStats(stf) : undefined
      if (state && state.name !== name) state = undefined // not one of ours
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
      if (state?.ipsec) o.ipsec = observedIpsec(state.ipsec)
      if (st?.esp) o.esp = st.esp
      out.set(name, o)
    }
  }
  return out
}
