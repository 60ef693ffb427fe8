// Where the userspace encapsulator keeps its state, in runDir(netns) (src/lib/rundir.ts: /run/tunctl/host or
// /run/tunctl/ns/NAME): the namespace's state record .tunnels.json (every tunnel's parameters, one file written
// atomically per change however many tunnels change), each tunnel's counters <name>.stats.json, the engine's
// .engine.{sock,json,log}. Older releases kept one state file per tunnel: <name>.json in the same directory, or in
// the legacy /run/tunctl/<netns|default>/ (told apart by the state's own netns field); they are read as long as
// they are there, and the next apply moves them into the record.
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {manageableName} from '../lib/names.js'
import {RUN_DIR_FILES, legacyRunDir, removeQuiet, runDir, writeAtomic} from '../lib/rundir.js'
import {MODES, type Counters, type TunnelParams} from '../model/types.js'
import {isEspRecord, type EspRecord} from '../ipsec/userspace.js'

export function nsDir(netns?: string): string {
  return runDir(netns)
}

/** The legacy directory that may hold this namespace's older state files. */
export function legacyNsDir(netns?: string): string {
  return legacyRunDir(netns)
}

/** Whether a legacy state file belongs to this namespace (its netns field; none = the root namespace). */
export function legacyStateIsFor(file: string, netns?: string): boolean {
  try {
    const st = JSON.parse(readFileSync(file, 'utf8'))
    return isEncapState(st) && (st.netns || undefined) === (netns || undefined)
  } catch {
    return false
  }
}

/** An older release's per-tunnel state file `<name>.json` of the namespace: in the run dir, or a legacy one recorded
 * for this namespace (the next apply moves it into the state record). */
export function statePath(name: string, netns?: string): string {
  const p = join(nsDir(netns), `${name}.json`)
  if (existsSync(p)) return p
  const legacy = join(legacyNsDir(netns), `${name}.json`)
  if (existsSync(legacy) && legacyStateIsFor(legacy, netns)) return legacy
  return p
}

/** The engine's own files in a run dir (dot files: never a tunnel's): control socket, identity record, log. */
export function engineFiles(dir: string): {sock: string; record: string; log: string} {
  return {sock: join(dir, '.engine.sock'), record: join(dir, '.engine.json'), log: join(dir, '.engine.log')}
}

/** `<name>.stats.json`: the run dir's, or a legacy-layout tunnel's (beside its state file) */
export function statsPath(name: string, netns?: string): string {
  return statePath(name, netns).replace(/\.json$/, '.stats.json')
}

/** The state record of a run dir: a dot file (never a tunnel's, like the engine's files). */
export function recordPath(dir: string): string {
  return join(dir, '.tunnels.json')
}

/**
 * `.tunnels.json`: the parameters of every userspace tunnel of the namespace, written (writeAtomic, one fsync) by
 * the CLI before each commit and by the engine when what it runs differs from it (another engine pid, tunnels it
 * removed, an entry it runs that is missing). No file: no tunnel.
 */
export interface StateRecord {
  /** the engine that runs (or is starting to run) the tunnels, with its start time; trusted only once proven
   * (control.ts isDaemonAlive: command line, run dir, start time) */
  pid?: number
  startTicks?: number
  netns?: string
  /** by name; each entry as EncapState (its own pid, if any, is not used: the record's is) */
  tunnels: Record<string, EncapState>
}

/** What readRecord found: the valid entries (a damaged entry is left out and `damaged` set); undefined = no file;
 * null = unreadable (corrupt or edited: nothing in it is trusted) */
export type RecordRead = (StateRecord & {damaged?: string[]}) | undefined | null

/** The state record of `dir` (see RecordRead). */
export function readRecord(dir: string): RecordRead {
  let text: string
  try {
    text = readFileSync(recordPath(dir), 'utf8')
  } catch {
    return undefined
  }
  let v: any
  try {
    v = JSON.parse(text)
  } catch {
    return null
  }
  if (!isObj(v) || !isObj(v.tunnels)) return null
  const tunnels: Record<string, EncapState> = {}
  const damaged: string[] = []
  for (const [name, st] of Object.entries(v.tunnels)) {
    if (isEncapState(st) && st.name === name) tunnels[name] = st
    else damaged.push(name)
  }
  const pid = isCount(v.pid) && v.pid > 0 ? (v.pid as number) : undefined
  const startTicks = isCount(v.startTicks) ? (v.startTicks as number) : undefined
  return {...(pid ? {pid} : {}), ...(startTicks !== undefined ? {startTicks} : {}), ...(typeof v.netns === 'string' ? {netns: v.netns} : {}), tunnels, ...(damaged.length ? {damaged} : {})}
}

/** The record's content as written: compact (1000 tunnels), entries by name in a stable order. */
export function recordText(r: StateRecord): string {
  const tunnels: Record<string, EncapState> = {}
  for (const n of Object.keys(r.tunnels).sort()) {
    const {pid: _p, startTicks: _s, netns: _n, ...st} = r.tunnels[n]! // the record's pid, start time and netns hold for all
    tunnels[n] = st as EncapState
  }
  return JSON.stringify({...(r.pid ? {pid: r.pid} : {}), ...(r.startTicks !== undefined ? {startTicks: r.startTicks} : {}), ...(r.netns ? {netns: r.netns} : {}), tunnels}) + '\n'
}

/**
 * Writes the namespace's state record (`recordText`: its engine's pid and start time, the netns, every tunnel's
 * entry) atomically with one fsync; no tunnel: no file. Its writers: the CLI (control.ts) and the engine (engine.ts).
 */
export function writeRecord(dir: string, tunnels: Map<string, EncapState>, engine: {pid?: number; startTicks?: number; netns?: string}): void {
  if (!tunnels.size) return removeQuiet(recordPath(dir))
  writeAtomic(recordPath(dir), recordText({...(engine.pid ? {pid: engine.pid} : {}), ...(engine.pid && engine.startTicks !== undefined ? {startTicks: engine.startTicks} : {}), ...(engine.netns ? {netns: engine.netns} : {}), tunnels: Object.fromEntries(tunnels)}))
}

const OWN_JSON = new Set<string>(Object.values(RUN_DIR_FILES))

/**
 * The one rule for which files of a run dir are a tunnel's: `<name>.stats.json` (its counters) or `<name>.json` (an
 * older release's state file), where `name` is a name tunctl manages (src/lib/names.ts), and the file is none of
 * tunctl's own (dot files: the state record, the engine's; RUN_DIR_FILES: the journal, the confirm outcome, the
 * ipsec key-file references). Anything else is not a tunnel's and is never read as one.
 */
export function tunnelFileOf(file: string): {name: string; stats: boolean} | undefined {
  if (file.startsWith('.') || OWN_JSON.has(file)) return undefined
  const stats = file.endsWith('.stats.json')
  if (!stats && !file.endsWith('.json')) return undefined
  const name = file.slice(0, -(stats ? '.stats.json' : '.json').length)
  return manageableName(name) ? {name, stats} : undefined
}

/** An older release's per-tunnel state files `<name>.json` in `dir` (valid ones, by name) and their paths. */
export function perTunnelStates(dir: string): {states: Map<string, EncapState>; files: string[]} {
  const states = new Map<string, EncapState>()
  const files: string[] = []
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return {states, files}
  }
  for (const f of names.sort()) {
    const t = tunnelFileOf(f)
    if (!t || t.stats) continue
    try {
      const st = JSON.parse(readFileSync(join(dir, f), 'utf8'))
      if (isEncapState(st) && `${st.name}.json` === f) {
        states.set(st.name, st)
        files.push(join(dir, f))
      }
    } catch {}
  }
  return {states, files}
}

export function logPath(name: string, netns?: string): string {
  return statePath(name, netns).replace(/\.json$/, '.log')
}

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0

/** A state-record entry (or an older release's state file) as applyEncaps writes it (anything else is corrupt and not trusted). */
export function isEncapState(v: unknown): v is EncapState {
  if (!isObj(v) || !manageableName(v.name) || !isObj(v.params)) return false
  const p = v.params
  if (!(MODES as readonly string[]).includes(p.mode) || typeof p.local !== 'string' || typeof p.remote !== 'string') return false
  if (typeof p.up !== 'boolean' || !isCount(p.fwmark)) return false
  if (!isCount(v.generation)) return false
  if (v.pid !== undefined && !(isCount(v.pid) && v.pid > 0)) return false
  if (v.netns !== undefined && typeof v.netns !== 'string') return false
  if (v.ipsec !== undefined && !(p.mode === 'vti' && isEspRecord(v.ipsec))) return false
  return true
}

/** A stats file's content as the engine writes it. */
export function isEncapStats(v: unknown): v is EncapStats {
  if (!isObj(v) || typeof v.name !== 'string' || !isCount(v.pid) || !isCount(v.generation)) return false
  if (v.error !== undefined && typeof v.error !== 'string') return false
  if (v.counters !== undefined) {
    if (!isObj(v.counters)) return false
    for (const k of ['rxPackets', 'rxBytes', 'txPackets', 'txBytes']) if (!isCount(v.counters[k])) return false
  }
  return true
}

/** One tunnel's entry of the state record (an older release's `<name>.json` file: the same, with the engine's pid). */
export interface EncapState {
  name: string
  netns?: string
  params: TunnelParams
  /** bumped by every start; the engine echoes the generation it runs in the stats file */
  generation: number
  pid?: number
  /** false: a plain TUN device without offloads (TUNCTL_OFFLOAD=0 in the CLI's environment at start) */
  offload?: boolean
  /** the engine's start time (/proc/PID/stat field 22, clock ticks since boot): with pid, identifies the process */
  startTicks?: number
  /** vti: its ipsec block (key-file path and key fingerprint, never keys; src/ipsec/userspace.ts) */
  ipsec?: EspRecord
}

/** `<name>.stats.json`: rewritten (atomic rename) by the engine (every second while counters change). */
export interface EncapStats {
  name: string
  pid: number
  generation: number
  startedAt: string
  updatedAt: string
  /** set when the engine could not start the tunnel */
  error?: string
  /** see EncapState.startTicks */
  startTicks?: number
  /** the parameters it runs (observe's fallback when the state file is unreadable) */
  params?: TunnelParams
  counters?: Counters & {icmpSent?: number}
  /** vti: ESP counters and the outbound sequence number (native/vti.c) */
  esp?: EspStats
}

/** vti: what the engine reports of its SA (never keys) */
export interface EspStats {
  txPackets: number
  txBytes: number
  rxPackets: number
  rxBytes: number
  /** last outbound sequence number sent; seqLimit: reserved (persisted) up to */
  txSeq: number
  seqLimit: number
  hasSa: boolean
  /** set when the SA can send no more (2^32 - 1 sequence numbers used): it needs new keys */
  exhausted?: boolean
}

/** `<name>.esp-seq` of a run dir: a userspace vti's outbound sequence-number reservation (engine.ts), kept across
 * engine restarts */
export function espSeqPath(dir: string, name: string): string {
  return join(dir, `${name}.esp-seq`)
}
