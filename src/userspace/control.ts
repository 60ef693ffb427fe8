// Starts, changes, stops and observes the userspace tunnels of a namespace: one engine process per namespace
// (engine.ts), configured by the tunnels' state files and one commit per apply on its control socket.
import {existsSync, closeSync, readFileSync, readdirSync, unlinkSync} from 'node:fs'
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
import {ensureRunDir, openAppend, removeTempFiles, syncWritten, warnOnce, writeAtomic} from '../lib/rundir.js'
import type {IpsecParams} from '../ipsec/spec.js'
import {espRecord, observedIpsec} from '../ipsec/userspace.js'
import {KEYFILE_RECORDS} from '../ipsec/record.js'
import {type EncapState, type EncapStats, type EspStats, engineFiles, isEncapState, isEncapStats, legacyNsDir, legacyStateIsFor, logPath, nsDir, statePath, statsPath} from './paths.js'
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

/** The pid of an engine started for the run dir of this state file (its argv names the dir), when no record says. */
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

/**
 * The engine running tunnel `name`: the pid its state file (else its stats file) records, if that process is
 * proven to be the namespace's engine (cmdline, run dir, start time); with a corrupt state file, the engine whose
 * argv names the run dir.
 */
export function recordedDaemon(name: string, netns?: string): number | undefined {
  const sf = statePath(name, netns)
  const stf = statsPath(name, netns)
  for (const rec of [existsSync(sf) ? readState(sf) : undefined, existsSync(stf) ? readStats(stf) : undefined]) {
    if (rec && typeof rec.pid === 'number' && isDaemonAlive(rec.pid, sf, typeof rec.startTicks === 'number' ? rec.startTicks : undefined)) return rec.pid
  }
  return existsSync(sf) && !readState(sf) ? engineByArgv(sf) : undefined
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

/**
 * Starts an engine for the namespace (the caller knows none runs): `pid` at once (the spawned process becomes the
 * engine: `ip netns exec` execs it, so the caller can name it in state files while it boots), `ready` resolves
 * with the engine's pid (from its record) once its control socket answers.
 */
function launchEngine(netns?: string): {pid: number | undefined; ready: Promise<number>} {
  const dir = ensureRunDir(netns)
  const files = engineFiles(dir)
  const argv = engineArgv(dir)
  const full = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv
  const fd = openAppend(files.log)
  let child: ReturnType<typeof spawnDetached>
  try {
    child = spawnDetached(full, [fd, fd])
  } finally {
    closeSync(fd)
  }
  let exited: string | null = null
  child.on('exit', (code, signal) => (exited = signal ? `killed by ${signal}` : `exit ${code}`))
  child.on('error', (e) => (exited = e.message))
  child.unref()
  const ready = (async () => {
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
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
  ready.catch(() => {}) // awaited by the caller; not an unhandled rejection while it writes state files
  return {pid: child.pid, ready}
}

/** One apply's userspace changes, as one engine transaction. */
export interface EncapBatch {
  /** tunnels to run with these parameters (added, or changed in place); a vti with its ipsec block */
  start?: Array<{name: string; params: TunnelParams; ipsec?: IpsecParams}>
  /** tunnels to remove with their TUN devices */
  stop?: string[]
  /** tunnels to remove from the engine, their devices left alone */
  forget?: string[]
}

/** Per tunnel of a batch: undefined = done, else why it failed. */
export type EncapResults = Map<string, string | undefined>

/** Why `params` cannot run in the userspace engine, or undefined. */
function refusal(params: TunnelParams): string | undefined {
  if (!supportsUserspace(params.mode)) return `mode ${params.mode} has no userspace encapsulator`
  const why = userspaceUnavailableReason()
  if (why) return `userspace encapsulator unavailable: ${why}`
  if (params.proto === 'mplsip') return 'the userspace encapsulator does not carry MPLS (encapsulated: mplsip)'
  return undefined
}

/**
 * Applies a batch of userspace changes in one transaction: writes (or removes) the tunnels' state files, then one
 * commit to the namespace's engine (started if needed), which converges to them and answers per tunnel. A tunnel
 * that failed leaves nothing of its own: a new one's state, device and counters are removed, a changed one gets
 * its previous state back (the engine keeps running it as it was).
 */
export async function applyEncaps(batch: EncapBatch, opts: EncapOptions = {}): Promise<EncapResults> {
  const netns = opts.netns
  const starts = batch.start ?? []
  for (const s of starts) {
    const why = refusal(s.params)
    if (why) throw new UnavailableError(why)
  }
  const results: EncapResults = new Map()
  const stops = [...(batch.stop ?? []), ...(batch.forget ?? [])]
  if (!starts.length && !stops.length) return results
  const dir = ensureRunDir(netns)
  // the engine first (started if needed, booting while the state files are written), so the state files name it
  // from the start: the engine need not rewrite them (it reads them only when the commit comes)
  let engine = runningEngine(netns)
  let failure: Error | undefined
  let launch: ReturnType<typeof launchEngine> | undefined
  if (starts.length && !engine) {
    try {
      launch = launchEngine(netns)
      engine = launch.pid
    } catch (e: any) {
      failure = e
    }
  }
  const prevs = new Map<string, EncapState | undefined>()
  const stopStates = new Map<string, EncapState | undefined>()
  // TUNCTL_OFFLOAD=0: this tunnel's TUN device without IFF_VNET_HDR (no TSO segmentation / coalescing)
  const offload = process.env.TUNCTL_OFFLOAD === '0' ? {offload: false} : {}
  const written: string[] = []
  const writeStates = (pid: number | undefined) => {
    const startTicks = pid ? processStart(pid) : undefined
    for (const s of starts) {
      // vti: the ipsec block's key-free record (the engine reads the key file itself, src/ipsec/userspace.ts)
      const ipsec = s.params.mode === 'vti' && s.ipsec ? {ipsec: espRecord(s.ipsec)} : {}
      const state: EncapState = {name: s.name, ...(netns ? {netns} : {}), params: s.params, generation: (prevs.get(s.name)?.generation ?? 0) + 1, ...offload, ...ipsec, ...(pid ? {pid, ...(startTicks ? {startTicks} : {})} : {})}
      // no fsync per file: syncWritten makes them all durable at once before the commit
      const sf = join(dir, `${s.name}.json`)
      writeAtomic(sf, state, undefined, {sync: false})
      written.push(sf)
    }
  }
  for (const s of starts) {
    const old = statePath(s.name, netns)
    prevs.set(s.name, existsSync(old) ? readState(old) : undefined)
    if (old !== join(dir, `${s.name}.json`)) {
      // the engine's dir replaces a legacy-layout file
      try {
        unlinkSync(old)
      } catch {}
    }
  }
  writeStates(engine)
  mark(`userspace: ${written.length} state files written${launch ? ' (the engine booting meanwhile)' : ''}`)
  if (launch) {
    try {
      const pid = await launch.ready
      // not the spawned process after all (the engine's own record names it): the state files name the engine
      if (pid !== engine) writeStates(pid)
      engine = pid
    } catch (e: any) {
      failure = e
      engine = undefined
    }
  }
  if (launch) mark('userspace: the engine answers')
  if (written.length) syncWritten(dir, written)
  const unlinkStates = (names: string[]) => {
    for (const n of names) {
      // a legacy-layout state file (an older release) is not the engine's: removed here, its device below
      for (const f of [statePath(n, netns), join(dir, `${n}.json`)]) {
        try {
          unlinkSync(f)
        } catch {}
      }
    }
  }
  for (const n of stops) {
    const sf = statePath(n, netns)
    stopStates.set(n, existsSync(sf) ? readState(sf) : undefined)
  }
  // with a live engine, the commit names the stops and the engine removes their state files itself (it would
  // otherwise write back a state file it still runs, taking it for damaged); without one, they go now
  if (!engine) unlinkStates(stops)
  mark(`userspace: state files synced, ${stops.length} stops recorded`)
  let reply: CommitReply | undefined
  const req = {op: 'commit', stop: batch.stop ?? [], forget: batch.forget ?? [], order: starts.map((s) => s.name)}
  const timeout = 60_000 + 50 * (starts.length + stops.length)
  if (!failure && engine) {
    try {
      reply = await request(engineFiles(dir).sock, req, timeout)
    } catch (e: any) {
      // the engine was exiting (its last tunnel had just been removed) when this commit reached it, and took
      // nothing of it: a new engine for the starts (it names itself in their state files)
      if (starts.length && (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') && !runningEngine(netns)) {
        try {
          await ensureEngine(netns)
          reply = await request(engineFiles(dir).sock, req, timeout)
        } catch (e2: any) {
          failure = e2
        }
      } else failure = e
    }
    if (reply && !reply.ok) failure = new Error(reply.error ?? 'the engine refused the commit')
  }
  mark('userspace: engine committed')
  unlinkStates(stops) // also when the commit failed: a stop is never undone
  // starts: the engine's answer, per tunnel
  const failedNew: string[] = []
  for (const s of starts) {
    const r = reply?.results[s.name]
    const why = failure ? failure.message : !r ? 'the engine did not report it' : r.ok ? undefined : (r.error ?? 'failed')
    results.set(s.name, why)
    if (!why) continue
    const prev = prevs.get(s.name)
    if (prev) writeAtomic(join(dir, `${s.name}.json`), prev)
    else {
      failedNew.push(s.name)
      try {
        unlinkSync(statePath(s.name, netns))
      } catch {}
    }
  }
  if (failedNew.length && reply && !failure) {
    // the engine runs none of them (a failed add closes its device); a second commit drops any it half-took
    try {
      await request(engineFiles(dir).sock, {op: 'commit', forget: []}, 60_000)
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
    for (const f of [statsPath(n, netns), logPath(n, netns)]) {
      try {
        unlinkSync(f)
      } catch {}
    }
  }
  // temporary files (the engine record's, a tunnel's state or counters) whose writer, an engine or CLI killed while
  // writing them, is gone
  removeTempFiles(dir)
  // no engine runs and no tunnel is left for one: its stale record and socket (a killed engine's) go too
  if (!runningEngine(netns)) {
    const files = engineFiles(dir)
    const left = readdirSync(dir).some((f) => !f.startsWith('.') && f.endsWith('.json') && !f.endsWith('.stats.json') && f !== 'journal.json' && f !== KEYFILE_RECORDS)
    if (!left) {
      for (const f of [files.record, files.sock]) {
        try {
          unlinkSync(f)
        } catch {}
      }
    }
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
 * and the engine runs it. Does not set addresses, mtu, up or alias: the batch does.
 */
export async function startEncap(name: string, params: TunnelParams, opts: EncapOptions = {}): Promise<{pid: number}> {
  const r = await applyEncaps({start: [{name, params, ...(opts.ipsec ? {ipsec: opts.ipsec} : {})}]}, opts)
  const why = r.get(name)
  if (why) throw new CommandError(`userspace encapsulator for ${name} failed to start: ${why}`, ['engine', nsDir(opts.netns)], readEngineLog(opts.netns))
  return {pid: runningEngine(opts.netns) ?? 0}
}

/**
 * Stops the encapsulator of `name`: the engine removes it with its device (a device left by a dead engine is
 * deleted when a state file records it or it is a tunctl-marked TUN device: its state may be lost); its state and
 * counters are removed.
 */
export async function stopEncap(name: string, opts: EncapOptions = {}): Promise<void> {
  throwFailures(await applyEncaps({stop: [name]}, opts), opts.netns)
}

/** Removes `name` from the engine and forgets its files, never deleting its link (its start failed or was cut short). */
export async function forgetEncap(name: string, opts: EncapOptions = {}): Promise<void> {
  throwFailures(await applyEncaps({forget: [name]}, opts), opts.netns)
}

/** Every encapsulator recorded for the namespace: params, pid, whether it is alive, last counters. */
export async function observeEncaps(opts: EncapOptions = {}): Promise<Map<string, ObservedEncap>> {
  const out = new Map<string, ObservedEncap>()
  const aliveChecked = new Map<string, boolean>()
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
      // the state file is unreadable: the engine's stats file names its parameters too
      const params = state?.params ?? (st?.name === name && isParams(st.params) ? st.params : undefined)
      if (!params) continue
      const rec = state?.pid !== undefined ? state : st
      const pid = typeof rec?.pid === 'number' ? rec.pid : undefined
      const ticks = typeof rec?.startTicks === 'number' ? rec.startTicks : undefined
      // one engine runs all of a namespace's tunnels: prove it once per observation, not once per tunnel
      const key = `${pid}:${dirname(sf)}:${ticks}`
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
