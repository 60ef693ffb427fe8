// Where the userspace encapsulator keeps its state: runDir(netns)/<name>.{json,stats.json}, the engine's
// .engine.{sock,json,log} (src/lib/rundir.ts:
// /run/tunctl/host or /run/tunctl/ns/NAME); a tunnel started by an older release keeps its files in the legacy
// /run/tunctl/<netns|default>/ (told apart by the state's own netns field) until it is stopped.
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {manageableName} from '../lib/names.js'
import {legacyRunDir, runDir} from '../lib/rundir.js'
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

/** `<name>.json` of the namespace: the current layout, or a legacy one recorded for this namespace. */
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

export function statsPath(name: string, netns?: string): string {
  return statePath(name, netns).replace(/\.json$/, '.stats.json')
}

export function logPath(name: string, netns?: string): string {
  return statePath(name, netns).replace(/\.json$/, '.log')
}

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0

/** A state file's content as startEncap writes it (anything else is corrupt and not trusted). */
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

/** `<name>.json`: written by the CLI (applyEncaps), pid filled in by the namespace's engine. */
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
