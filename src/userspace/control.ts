// Starts, changes, stops and observes the userspace tunnels of a namespace: one engine process per namespace
// (engine.ts), configured by the namespace's state record (paths.ts, one file for all its tunnels) and one commit
// per apply on its control socket.
import {existsSync, closeSync, readFileSync, readdirSync} from 'node:fs'
import {unlink as unlinkAsync} from 'node:fs/promises'
import {connect} from 'node:net'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {Counters, Mode, TunnelParams} from '../model/types.js'
import {CommandError, UnavailableError} from '../lib/errors.js'
import {addonAvailable} from './addon.js'
import {ip, ipJson} from '../lib/ip.js'
import {spawnDetached} from '../lib/exec.js'
import {mark} from '../lib/timing.js'
import {processAlive, startTicks as processStart} from '../lib/proc.js'
import {ensureRunDir, openAppend, removeQuiet, removeTempFiles, warnOnce} from '../lib/rundir.js'
import type {IpsecParams} from '../ipsec/spec.js'
import type {CreatedDevice} from '../plan/lines.js'
import {espRecord, observedIpsec} from '../ipsec/userspace.js'
import {type EncapState, type EncapStats, type EspStats, engineFiles, isEncapState, isEncapStats, legacyNsDir, legacyStateIsFor, logPath, nsDir, perTunnelStates, readRecord, recordPath, statePath, statsPath, tunnelFileOf, writeRecord} from './paths.js'
import type {CommitReply} from './engine.js'


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
  /** the last error the engine reported for it (it could not start) */
  error?: string
  /** ISO time of the last counters update */
  updatedAt?: string
  /** the TUN device uses offloads (TSO segmentation / TCP coalescing in the engine) */
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

/**
 * argv running the engine: the bundled engine (dist/bundle/engine.js, one module: it answers in about half the
 * time of the ~25 modules of dist/userspace/), else the compiled engine.js beside this file, else dist/userspace/,
 * else the TypeScript source via tsx. Every one of them is named engine.js/engine.ts (isDaemonAlive).
 */
export function engineArgv(dir: string): string[] {
  // TUNCTL_DAEMON_NODE: another node binary or wrapper for the engine. Otherwise this node, with the V8 flags
  // it was started with (e.g. --no-enable-avx inside user-mode-linux), but not loaders or the inspector.
  const envNode = process.env.TUNCTL_DAEMON_NODE
  const node = envNode ? [envNode] : [process.execPath, ...process.execArgv.filter((a) => /^--(no-|max-|stack-size)/.test(a))]
  // this file is dist/bundle/tunctl.cjs, dist/userspace/control.js or src/userspace/control.ts: all two levels down
  const dist = join(here, '..', '..', 'dist')
  for (const js of [join(dist, 'bundle', 'engine.js'), join(here, 'engine.js'), join(dist, 'userspace', 'engine.js')]) {
    if (existsSync(js)) return [...node, js, dir]
  }
  return [...node, '--import', 'tsx', join(here, 'engine.ts'), dir]
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

/** The pid of an engine started for the run dir of this file (its argv names the dir), when no record says. */
function engineByArgv(stateFile: string): number | undefined {
  let pids: string[]
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p))
  } catch {
    return undefined
  }
  for (const p of pids) {
    try {
      if (isDaemonAlive(Number(p), stateFile)) return Number(p)
    } catch {}
  }
  return undefined
}

/**
 * A live (not zombie) process that is a tunctl userspace engine: its command line runs engine.js/engine.ts, and —
 * when `stateFile` is given — for the run dir holding that state file, and — when `startTicks` is given — it
 * started at that time (src/lib/proc.ts processAlive). The CLI signals only processes this proves to be the
 * namespace's engine (a reused pid fails the check).
 */
export function isDaemonAlive(pid: number | undefined, stateFile?: string, startTicks?: number): boolean {
  if (!pid || pid <= 0 || !Number.isInteger(pid)) return false
  return processAlive({
    pid,
    startTicks,
    cmdline: (argv) => {
      const at = argv.findIndex((a) => /(^|\/)engine\.[jt]s$/.test(a))
      return at >= 0 && (stateFile === undefined || argv[at + 1] === dirname(stateFile))
    },
  })
}

function isParams(p: any): p is TunnelParams {
  return !!p && typeof p === 'object' && typeof p.mode === 'string' && USERSPACE_MODES.includes(p.mode)
}

/** The namespace's running engine (its record, proven by cmdline, run dir and start time), or undefined. */
export function runningEngine(netns?: string): number | undefined {
  const dir = nsDir(netns)
  const files = engineFiles(dir)
  const marker = join(dir, '.engine') // any file of the dir: isDaemonAlive compares its directory
  try {
    const rec = JSON.parse(readFileSync(files.record, 'utf8'))
    if (typeof rec?.pid === 'number' && isDaemonAlive(rec.pid, marker, typeof rec.startTicks === 'number' ? rec.startTicks : undefined)) return rec.pid
  } catch {}
  return existsSync(dir) ? engineByArgv(marker) : undefined
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Whether the namespace's engine `pid` (proven by runningEngine) is an older release's, which takes its tunnels from
 * per-tunnel state files, not from the state record: its `.engine.json` does not say `stateRecord: 1`.
 */
function olderEngine(netns?: string): boolean {
  try {
    return JSON.parse(readFileSync(engineFiles(nsDir(netns)).record, 'utf8'))?.stateRecord !== 1
  } catch {
    return false // no readable record: nothing says it is older (runningEngine found it by its command line)
  }
}

/** Stops an older release's engine (SIGTERM: its tunnels' devices stay, a new engine takes them from the record) and
 * waits until it has gone. */
async function retireEngine(pid: number, netns?: string): Promise<void> {
  process.kill(pid, 'SIGTERM')
  if (!(await engineGone(pid, netns, 10_000))) throw new CommandError(`the older release's userspace engine (pid ${pid}) did not stop within 10 s of SIGTERM`, ['engine', nsDir(netns)], readEngineLog(netns))
}

/** Waits up to `ms` until the namespace's engine `pid` has ended; whether it has. */
async function engineGone(pid: number, netns: string | undefined, ms: number): Promise<boolean> {
  const marker = join(nsDir(netns), '.engine')
  const deadline = Date.now() + ms
  while (isDaemonAlive(pid, marker)) {
    if (Date.now() > deadline) return false
    await sleep(20)
  }
  return true
}

/** One request on the engine's control socket; rejects if the engine closes it without an answer. */
function request(sock: string, req: unknown, timeoutMs: number): Promise<CommitReply> {
  return new Promise((resolve, reject) => {
    const c = connect(sock)
    let buf = ''
    let done = false
    const finish = (e: Error | undefined, v?: CommitReply) => {
      if (done) return
      done = true
      clearTimeout(timer)
      c.destroy()
      if (e) reject(e)
      else resolve(v!)
    }
    const timer = setTimeout(() => finish(new Error(`no answer from the engine within ${timeoutMs / 1000} s`)), timeoutMs)
    c.setEncoding('utf8')
    c.on('connect', () => c.write(JSON.stringify(req) + '\n'))
    c.on('data', (d: string) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      try {
        finish(undefined, JSON.parse(buf.slice(0, nl)))
      } catch (e: any) {
        finish(new Error(`unreadable answer from the engine: ${e.message}`))
      }
    })
    c.on('error', (e) => finish(e))
    c.on('close', () => finish(new Error('the engine closed the control socket without answering (it died?)')))
  })
}

function readEngineLog(netns?: string): string {
  try {
    return readFileSync(engineFiles(nsDir(netns)).log, 'utf8').split('\n').slice(-10).join('\n')
  } catch {
    return ''
  }
}

/** The namespace's engine, started if none runs; resolves once its control socket answers. */
async function ensureEngine(netns?: string): Promise<number> {
  const live = runningEngine(netns)
  if (live) return live
  return launchEngine(netns).ready
}

/** The fd number of the pipe on which a launched engine says it listens (engine.ts: TUNCTL_ENGINE_READY_FD). */
const READY_FD = 3

/**
 * Starts an engine for the namespace (the caller knows none runs): `pid` at once (the spawned process becomes the
 * engine: `ip netns exec` execs it, so the caller can name it in the state record while it boots), `ready`
 * resolves with the engine's pid once its control socket listens: the engine writes its pid on an inherited pipe
 * then (no polling); a pipe closed without it (another engine answered and this one left, or it died) falls
 * back to finding the running engine by its record and pinging it.
 */
function launchEngine(netns?: string): {pid: number | undefined; ready: Promise<number>; stop(): Promise<void>} {
  const dir = ensureRunDir(netns)
  const files = engineFiles(dir)
  const argv = engineArgv(dir)
  const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv
  const fd = openAppend(files.log)
  let child: ReturnType<typeof spawnDetached>
  try {
    child = spawnDetached(full, [fd, fd, 'pipe'], {env: {...process.env, TUNCTL_ENGINE_READY_FD: String(READY_FD)}})
  } finally {
    closeSync(fd)
  }
  let exited: string | null = null
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.on('exit', (code, signal) => (exited = signal ? `killed by ${signal}` : `exit ${code}`))
  child.on('error', (e) => (exited = e.message))
  child.unref()
  const deadline = Date.now() + 15_000
  // the engine's pid from the pipe, or undefined when the pipe closed without it (or at the deadline)
  const signalled = new Promise<number | undefined>((resolve) => {
    // (referenced: an apply waiting for it stays alive; it closes within the engine's boot, or when it dies)
    const pipe = child.stdio[READY_FD] as (NodeJS.ReadableStream & {destroy(): void}) | null | undefined
    if (!pipe) return resolve(undefined)
    let buf = ''
    const timer = setTimeout(() => done(undefined), 15_000)
    timer.unref()
    const done = (pid: number | undefined) => {
      clearTimeout(timer)
      pipe.removeAllListeners('data')
      pipe.destroy()
      resolve(pid)
    }
    pipe.setEncoding('utf8')
    pipe.on('data', (d: string) => {
      buf += d
      const m = /^(\d+)\n/.exec(buf)
      if (m) done(Number(m[1]))
    })
    pipe.on('end', () => done(undefined))
    pipe.on('close', () => done(undefined))
    pipe.on('error', () => done(undefined))
  })
  let said: number | undefined
  void signalled.then((pid) => (said = pid))
  const ready = (async () => {
    // the line, or the pipe closed, or a second without either (a wrapper, TUNCTL_DAEMON_NODE, that keeps the pipe
    // from the engine): then also look for the engine the old way, every 30 ms
    let grace: ReturnType<typeof setTimeout> | undefined
    const first = await Promise.race([
      signalled,
      new Promise<undefined>((r) => {
        grace = setTimeout(() => r(undefined), 1000)
      }),
    ])
    clearTimeout(grace)
    if (first) return first
    while (Date.now() < deadline) {
      if (said) return said
      // the running engine, also when it is not the one spawned here (that one then left: engine.ts main)
      const pid = runningEngine(netns)
      if (pid) {
        try {
          await request(files.sock, {op: 'ping'}, 5000)
          return pid
        } catch {}
      }
      if (exited !== null) throw new CommandError(`the userspace engine ended (${exited}) before it answered`, ['engine', dir], readEngineLog(netns))
      await sleep(30)
    }
    if (exited === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {}
    }
    throw new CommandError(`the userspace engine did not start within 15 s`, ['engine', dir], readEngineLog(netns))
  })()
  ready.catch(() => {}) // awaited by the caller; not an unhandled rejection while it writes the state record
  // SIGTERM to the spawned process only while it is this process's unreaped child (Node reaps it and records its
  // exit in the same callback, so the pid cannot belong to another process), then until it has gone (5 s, then
  // SIGKILL): the engine's SIGTERM shutdown removes its socket and record; it never created a device uncommitted
  const stop = async () => {
    if (exited !== null || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = await Promise.race([gone.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 5000)))])
    clearTimeout(timer)
    if (late && exited === null) {
      child.kill('SIGKILL')
      await gone
    }
  }
  return {pid: child.pid, ready, stop}
}

// engines launched ahead of their apply's commit (prepareEngine), by namespace
const prepared = new Map<string, ReturnType<typeof launchEngine>>()

/**
 * Starts the namespace's engine now if none runs, so that it boots while the apply journals its starts and writes
 * the state record: an apply calls it as soon as its plan starts a userspace tunnel. The next applyEncaps with
 * starts takes it. One that never gets a commit (the apply failed, was interrupted or had no starts) is stopped by
 * releaseEngine, or exits by itself (engine.ts: idle 30 s) if the apply was killed. Never throws: a launch that
 * fails is retried (and reported) by applyEncaps.
 */
export function prepareEngine(netns?: string): void {
  const key = netns ?? ''
  if (prepared.has(key) || userspaceUnavailableReason()) return
  try {
    if (!runningEngine(netns)) prepared.set(key, launchEngine(netns))
  } catch {}
}

/**
 * An engine prepareEngine launched that no commit took (the apply failed, was interrupted or stopped before its
 * starts): stopped once it answers (SIGTERM: it leaves no socket or record), so it does not wait out its 30 s idle
 * exit. Call it while holding the namespace lock, after the apply's userspace work. No-op otherwise.
 */
export async function releaseEngine(netns?: string): Promise<void> {
  const key = netns ?? ''
  const launch = prepared.get(key)
  if (!launch) return
  prepared.delete(key)
  await launch.ready.catch(() => undefined)
  await launch.stop()
}

/** The state record (paths.ts readRecord), saying once on stderr what of it is ignored (unreadable, damaged entries). */
function readRecordWarned(dir: string): ReturnType<typeof readRecord> {
  const rec = readRecord(dir)
  if (rec === null) warnOnce(`${recordPath(dir)}:unreadable`, `ignoring state record ${recordPath(dir)}: not what tunctl writes (corrupt or edited); the engine writes back what it runs`)
  else if (rec?.damaged) warnOnce(`${recordPath(dir)}:${rec.damaged.join()}`, `ignoring entries ${rec.damaged.join(', ')} of state record ${recordPath(dir)}: not what tunctl writes`)
  return rec
}

/** The namespace's state: the record's tunnels, with an older release's per-tunnel files not in it (to migrate). */
interface Loaded {
  tunnels: Map<string, EncapState>
  /** an older release's state files (moved into the record by the next write, then removed) */
  migrated: string[]
  /** the record needs writing even if nothing changes (it holds what an older release's files held, or is damaged) */
  stale: boolean
}

function loadStates(dir: string, netns?: string): Loaded {
  const rec = readRecordWarned(dir)
  const tunnels = new Map(Object.entries(rec?.tunnels ?? {}))
  // an older release's <name>.json files in the run dir (its engine ran them from there); the record wins. (Files
  // of the legacy layout, an even older release's, stay where they are until their tunnel is started or stopped.)
  const old = perTunnelStates(dir)
  for (const st of old.states.values()) if (!tunnels.has(st.name)) tunnels.set(st.name, st)
  const migrated = old.files
  return {tunnels, migrated, stale: migrated.length > 0 || !!rec?.damaged}
}

/** Writes the namespace's state record naming `pid` (proven by its start time) as its engine (paths.ts writeRecord). */
function recordFor(dir: string, tunnels: Map<string, EncapState>, pid: number | undefined, netns?: string): void {
  const startTicks = pid ? processStart(pid) : undefined
  writeRecord(dir, tunnels, {...(pid ? {pid} : {}), ...(startTicks !== undefined ? {startTicks} : {}), ...(netns ? {netns} : {})})
}

/** One apply's userspace changes, as one engine transaction. */
export interface EncapBatch {
  /** tunnels to run with these parameters (added, or changed in place); a vti with its ipsec block; `device`: what
   * the engine sets on the device it creates for it (addresses, up; CreatedDevice) */
  start?: Array<{name: string; params: TunnelParams; ipsec?: IpsecParams; device?: CreatedDevice}>
  /** tunnels to remove with their TUN devices */
  stop?: string[]
  /** tunnels to remove from the engine, their devices left alone */
  forget?: string[]
}

/** Per tunnel of a batch: undefined = done, else why it failed. */
export type EncapResults = Map<string, string | undefined>

/** Why `params` cannot run in the userspace engine, or undefined. */
function refusal(params: TunnelParams, unavailable = userspaceUnavailableReason()): string | undefined {
  if (!supportsUserspace(params.mode)) return `mode ${params.mode} has no userspace encapsulator`
  const why = unavailable
  if (why) return `userspace encapsulator unavailable: ${why}`
  if (params.proto === 'mplsip') return 'the userspace encapsulator does not carry MPLS (encapsulated: mplsip)'
  return undefined
}

/**
 * Applies a batch of userspace changes in one transaction: writes the namespace's state record (the starts in it;
 * without a live engine, the stops out of it), then one commit to the namespace's engine (started if needed),
 * which converges to it and answers per tunnel. A tunnel that failed leaves nothing of its own: a new one's
 * entry, device and counters are removed, a changed one gets its previous entry back (the engine keeps running it
 * as it was).
 */
export async function applyEncaps(batch: EncapBatch, opts: EncapOptions = {}): Promise<EncapResults> {
  const netns = opts.netns
  const starts = batch.start ?? []
  // (asked once per batch, not per tunnel: two existsSync each, ~7 ms for 1000 starts)
  const unavailable = starts.length ? userspaceUnavailableReason() : undefined
  for (const s of starts) {
    const why = refusal(s.params, unavailable)
    if (why) throw new UnavailableError(why)
  }
  const results: EncapResults = new Map()
  const stops = [...(batch.stop ?? []), ...(batch.forget ?? [])]
  if (!starts.length && !stops.length) return results
  const dir = ensureRunDir(netns)
  // the engine first (started if needed, or by prepareEngine earlier: booting while the record is written), so the
  // record names it from the start: the engine need not rewrite it
  let launch = starts.length ? prepared.get(netns ?? '') : undefined
  if (launch) prepared.delete(netns ?? '')
  // an engine booting for this apply's starts (prepareEngine) runs nothing yet: the stops before them are not its
  // (a commit of stops alone would leave it with no tunnel, and it would exit before the starts reach it)
  let engine = launch ? launch.pid : !starts.length && prepared.has(netns ?? '') ? undefined : runningEngine(netns)
  let failure: Error | undefined
  // an older release's engine would take the record's tunnels, which are not in its per-tunnel files, for removed:
  // it stops (the devices stay) and a new engine takes over every tunnel from the record
  if (engine && !launch && olderEngine(netns)) {
    try {
      await retireEngine(engine, netns)
      engine = undefined
      launch = launchEngine(netns)
      engine = launch.pid
    } catch (e: any) {
      failure = e
    }
  }
  if (starts.length && !engine && !failure) {
    try {
      launch = launchEngine(netns)
      engine = launch.pid
    } catch (e: any) {
      failure = e
    }
  }
  const loaded = loadStates(dir, netns)
  const tunnels = loaded.tunnels
  const prevs = new Map<string, EncapState | undefined>()
  const stopStates = new Map<string, EncapState | undefined>()
  // TUNCTL_OFFLOAD=0: this tunnel's TUN device without IFF_VNET_HDR (no TSO segmentation / coalescing)
  const offload = process.env.TUNCTL_OFFLOAD === '0' ? {offload: false} : {}
  // a tunnel of the legacy layout (an even older release's file, statePath): looked for only if that dir exists
  const hasLegacy = existsSync(legacyNsDir(netns))
  const legacyFile = (n: string): string | undefined => {
    const f = hasLegacy ? statePath(n, netns) : undefined
    return f && f !== join(dir, `${n}.json`) ? f : undefined
  }
  for (const s of starts) {
    const legacy = legacyFile(s.name)
    const prev = tunnels.get(s.name) ?? (legacy ? readState(legacy) : undefined)
    prevs.set(s.name, prev)
    // vti: the ipsec block's key-free record (the engine reads the key file itself, src/ipsec/userspace.ts)
    const ipsec = s.params.mode === 'vti' && s.ipsec ? {ipsec: espRecord(s.ipsec)} : {}
    tunnels.set(s.name, {name: s.name, ...(netns ? {netns} : {}), params: s.params, generation: (prev?.generation ?? 0) + 1, ...offload, ...ipsec})
  }
  for (const n of stops) {
    const legacy = legacyFile(n)
    stopStates.set(n, tunnels.get(n) ?? (legacy ? readState(legacy) : undefined))
  }
  // with a live engine, the commit names the stops and the engine takes them out of the record itself (it would
  // otherwise write back a tunnel it still runs, taking the record for damaged); without one, they go now
  if (!engine) for (const n of stops) tunnels.delete(n)
  const write = starts.length > 0 || (!engine && stops.some((n) => stopStates.get(n))) || loaded.stale
  if (write) recordFor(dir, tunnels, engine, netns)
  mark(`userspace: state record ${write ? 'written' : 'read'} (${tunnels.size} tunnels)${launch ? ', the engine booting meanwhile' : ''}`)
  // an older release's files, now in the record; a legacy-layout file of a tunnel started or stopped here
  if (write) for (const f of loaded.migrated) removeQuiet(f)
  for (const n of hasLegacy ? [...starts.map((s) => s.name), ...stops] : []) {
    const legacy = legacyFile(n)
    if (legacy) removeQuiet(legacy)
  }
  if (launch) {
    try {
      const pid = await launch.ready
      // not the spawned process after all (another engine answered): the record names the engine
      if (pid !== engine && write) recordFor(dir, tunnels, pid, netns)
      engine = pid
    } catch (e: any) {
      failure = e
      engine = undefined
    }
    mark('userspace: the engine answers')
  }
  let reply: CommitReply | undefined
  // devices: what the engine sets on the devices it creates (addresses, up) in the same transaction
  const devices = Object.fromEntries(starts.filter((s) => s.device).map((s) => [s.name, s.device!]))
  const req = {op: 'commit', stop: batch.stop ?? [], forget: batch.forget ?? [], order: starts.map((s) => s.name), devices}
  const timeout = 60_000 + 50 * (starts.length + stops.length)
  if (!failure && engine) {
    try {
      reply = await request(engineFiles(dir).sock, req, timeout)
    } catch (e: any) {
      // the engine was exiting (its last tunnel had just been removed) when this commit reached it, and took
      // nothing of it: once it has gone (its socket goes before its record and its process), a new engine for the
      // starts (the record names the old one: rewritten for the new one)
      if (starts.length && (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') && (await engineGone(engine, netns, 5000))) {
        try {
          const pid = await ensureEngine(netns)
          recordFor(dir, tunnels, pid, netns)
          reply = await request(engineFiles(dir).sock, req, timeout)
        } catch (e2: any) {
          failure = e2
        }
      } else failure = e
    }
    if (reply && !reply.ok) failure = new Error(reply.error ?? 'the engine refused the commit')
  }
  mark('userspace: engine committed')
  // starts: the engine's answer, per tunnel
  const failedNew: string[] = []
  const fixes = new Map<string, EncapState | undefined>()
  for (const s of starts) {
    const r = reply?.results[s.name]
    // the engine ran another generation than the one written for this apply (the record was overwritten between
    // the write and the commit): not this apply's start
    const wrote = tunnels.get(s.name)?.generation
    const why = failure ? failure.message : !r ? 'the engine did not report it' : !r.ok ? (r.error ?? 'failed') : r.generation !== undefined && wrote !== undefined && r.generation !== wrote ? `the engine ran generation ${r.generation} of it, not ${wrote} (the state record changed under the apply)` : undefined
    results.set(s.name, why)
    if (!why) continue
    const prev = prevs.get(s.name)
    fixes.set(s.name, prev)
    if (!prev) failedNew.push(s.name)
  }
  // the record as the engine left it, with a failed start's previous entry back (a new one's out), and the stops
  // out also when the commit failed (a stop is never undone; the engine took them out itself when it committed)
  const stopsLeft = engine && reply?.ok ? [] : stops
  if (fixes.size || stopsLeft.length) {
    const now = loadStates(dir, netns).tunnels
    let changed = false
    for (const [n, prev] of fixes) {
      if (prev) now.set(n, prev)
      else now.delete(n)
      changed = true
    }
    for (const n of stopsLeft) changed = now.delete(n) || changed
    if (changed) recordFor(dir, now, reply?.ok ? reply.pid : runningEngine(netns), netns)
  }
  if (failedNew.length && reply && !failure) {
    // the engine runs none of them (a failed add closes its device); a second commit drops any it half-took
    try {
      await request(engineFiles(dir).sock, {op: 'commit', forget: failedNew}, 60_000)
    } catch {}
  }
  // stops: the engine removed the devices; without a (live) engine, delete what is left here (one link dump for
  // all of them: a prune of 1000 tunnels must not run 1000 ip processes)
  const forget = new Set(batch.forget ?? [])
  const linksNow = stops.length + failedNew.length ? await allLinks(netns) : new Map<string, any>()
  const leftFiles = new Set<string>()
  for (const n of stops) {
    results.set(n, undefined)
    if (!forget.has(n)) {
      const link = linksNow.get(n)
      if (link && (stopStates.get(n) || isOwnedTun(link))) {
        const why = await deleteLink(n, netns)
        if (why) results.set(n, why)
      }
    }
    for (const f of [statsPath(n, netns), logPath(n, netns), join(dir, `${n}.stats.json`)]) leftFiles.add(f)
  }
  // in parallel (libuv's pool): one at a time, a prune's 1000 unlinks took up to 2 s on a disk-backed /run that
  // discards each freed block at once (this VM); most are already gone (the engine removed them)
  await Promise.all([...leftFiles].map((f) => unlinkAsync(f).catch(() => {})))
  // a new tunnel that failed: its device (marked from creation) goes too, unless the engine runs it after all
  for (const n of failedNew) {
    const link = linksNow.get(n)
    if (link && isOwnedTun(link) && !reply?.running.includes(n)) {
      await deleteLink(n, netns)
    }
    for (const f of [statsPath(n, netns), logPath(n, netns)]) removeQuiet(f)
  }
  // temporary files (the engine record's, the state record's, a tunnel's counters) whose writer, an engine or CLI
  // killed while writing them, is gone
  removeTempFiles(dir)
  // no engine runs and no tunnel is left for one: its stale record and socket (a killed engine's) go too
  if (!runningEngine(netns) && !existsSync(recordPath(dir)) && !perTunnelStates(dir).files.length) {
    const files = engineFiles(dir)
    for (const f of [files.record, files.sock]) removeQuiet(f)
  }
  return results
}

/** `ip -j -d link show dev NAME`, or undefined if there is no such link */
async function linkInfo(name: string, netns?: string): Promise<any | undefined> {
  try {
    return (await ipJson<any[]>(['link', 'show', 'dev', name], {netns}))[0]
  } catch {
    return undefined
  }
}

/** every link of the namespace by name (`ip -j -d link show`) */
async function allLinks(netns?: string): Promise<Map<string, any>> {
  const links = await ipJson<any[]>(['link', 'show'], {netns})
  return new Map(links.map((l) => [l.ifname, l]))
}

/** a TUN device carrying tunctl's ownership mark (set by the native code before the device is made persistent) */
function isOwnedTun(link: any): boolean {
  return link?.linkinfo?.info_kind === 'tun' && link.ifalias === 'tunctl' // the exact mark, as observe's isOwned
}

/** deletes link `name`; undefined, or why it is still there */
async function deleteLink(name: string, netns?: string): Promise<string | undefined> {
  try {
    await ip(['link', 'del', 'dev', name], {netns})
  } catch (e: any) {
    if (await linkInfo(name, netns)) return `deleting ${name}: ${e.message}`
  }
  return undefined
}

/** Throws a CommandError for the first failed tunnel of a batch's results. */
export function throwFailures(results: EncapResults, netns?: string): void {
  const failed = [...results].filter(([, why]) => why !== undefined)
  if (!failed.length) return
  const text = failed.map(([n, why]) => `${n}: ${why}`).join('; ')
  throw new CommandError(`userspace engine: ${text}`, ['engine', nsDir(netns)], readEngineLog(netns))
}

/**
 * Starts the encapsulator for `name` (or changes the running one in place) and resolves once its TUN device exists
 * and the engine runs it. A device it creates gets the ownership mark and the MTU, and with `device` its addresses
 * and up state (a create's; otherwise the batch sets those).
 */
export async function startEncap(name: string, params: TunnelParams, opts: EncapOptions & {device?: CreatedDevice} = {}): Promise<{pid: number}> {
  const r = await applyEncaps({start: [{name, params, ...(opts.ipsec ? {ipsec: opts.ipsec} : {}), ...(opts.device ? {device: opts.device} : {})}]}, opts)
  const why = r.get(name)
  if (why) throw new CommandError(`userspace encapsulator for ${name} failed to start: ${why}`, ['engine', nsDir(opts.netns)], readEngineLog(opts.netns))
  return {pid: runningEngine(opts.netns) ?? 0}
}

/**
 * Stops the encapsulator of `name`: the engine removes it with its device (a device left by a dead engine is
 * deleted when the state record has it or it is a tunctl-marked TUN device: its state may be lost); its state and
 * counters are removed.
 */
export async function stopEncap(name: string, opts: EncapOptions = {}): Promise<void> {
  throwFailures(await applyEncaps({stop: [name]}, opts), opts.netns)
}

/** Removes `name` from the engine and forgets its files, never deleting its link (its start failed or was cut short). */
export async function forgetEncap(name: string, opts: EncapOptions = {}): Promise<void> {
  throwFailures(await applyEncaps({forget: [name]}, opts), opts.netns)
}

/** Every encapsulator recorded for the namespace: params, pid, whether it is alive, last counters (counters:
 * false: a tunnel's counters file is read only when the record does not name its parameters or its engine). */
export async function observeEncaps(opts: EncapOptions & {counters?: boolean} = {}): Promise<Map<string, ObservedEncap>> {
  const out = new Map<string, ObservedEncap>()
  const aliveChecked = new Map<string, boolean>()
  // the current directory (the state record, then an older release's per-tunnel files), then the legacy one (a
  // tunnel started by an even older release), whose files must name this namespace; a name found first wins
  for (const [dir, legacy] of [[nsDir(opts.netns), false], [legacyNsDir(opts.netns), true]] as const) {
    let files: string[]
    try {
      files = readdirSync(dir)
    } catch {
      continue
    }
    const present = new Set(files)
    const rec = legacy ? undefined : readRecordWarned(dir)
    const names = new Set<string>(Object.keys(rec?.tunnels ?? {}))
    for (const f of files) {
      const t = tunnelFileOf(f) // a tunnel's counters or older state file, never tunctl's own (journal, confirm outcome, …)
      if (t) names.add(t.name)
    }
    for (const name of [...names].sort()) {
      if (out.has(name)) continue // shadowed by the current layout
      const sf = join(dir, `${name}.json`)
      const stf = join(dir, `${name}.stats.json`)
      if (legacy && !legacyStateIsFor(sf, opts.netns)) continue
      const entry = rec?.tunnels[name]
      let state = entry ?? (present.has(`${name}.json`) ? readState(sf) : undefined)
      if (state && state.name !== name) state = undefined // not one of ours
      // without counters, the counters file only for what the state does not say (parameters, the engine)
      const needStats = opts.counters !== false || !state?.params || !((entry && rec?.pid !== undefined) || state?.pid !== undefined)
      const st = needStats && present.has(`${name}.stats.json`) ? readStats(stf) : undefined
      // no (readable) entry: the engine's stats file names its parameters too
      const params = state?.params ?? (st?.name === name && isParams(st.params) ? st.params : undefined)
      if (!params) continue
      // the engine: the record's (one for all of them), an older release's file's, else the stats file's
      const who = entry && rec?.pid !== undefined ? rec : state?.pid !== undefined ? state : st
      const pid = typeof who?.pid === 'number' ? who.pid : undefined
      const ticks = typeof who?.startTicks === 'number' ? who.startTicks : undefined
      // one engine runs all of a namespace's tunnels: prove it once per observation, not once per tunnel
      const key = `${pid}:${dir}:${ticks}`
      let alive = aliveChecked.get(key)
      if (alive === undefined) aliveChecked.set(key, (alive = isDaemonAlive(pid, sf, ticks)))
      const o: ObservedEncap = {params, alive, ...(pid ? {pid} : {})}
      if (st?.counters) {
        const {icmpSent: _i, tsoSegments: _t, groMerged: _g, otherTunnel: _o, collisions: _c, icmpErrors: _e, offload, ...c} = st.counters as EncapStats['counters'] & Record<string, any>
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
