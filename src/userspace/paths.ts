// Where the userspace encapsulator keeps its state: /run/tunctl/<netns|default>/<name>.{json,stats.json,log}.
import {join} from 'node:path'
import type {Counters, TunnelParams} from '../model/types.js'

export const RUN_DIR = process.env.TUNCTL_RUN_DIR ?? '/run/tunctl'

export function nsDir(netns?: string): string {
  return join(RUN_DIR, netns || 'default')
}

export function statePath(name: string, netns?: string): string {
  return join(nsDir(netns), `${name}.json`)
}

export function statsPath(name: string, netns?: string): string {
  return join(nsDir(netns), `${name}.stats.json`)
}

export function logPath(name: string, netns?: string): string {
  return join(nsDir(netns), `${name}.log`)
}

/** `<name>.json`: written by startEncap, pid filled in by the daemon. */
export interface EncapState {
  name: string
  netns?: string
  params: TunnelParams
  /** bumped by every startEncap; the daemon echoes the generation it runs in its stats file */
  generation: number
  pid?: number
  /** the daemon's start time (/proc/PID/stat field 22, clock ticks since boot): with pid, identifies the process */
  startTicks?: number
}

/** `<name>.stats.json`: rewritten (atomic rename) by the daemon every second. */
export interface EncapStats {
  name: string
  pid: number
  generation: number
  startedAt: string
  updatedAt: string
  /** set when the daemon could not start (it exits right after writing it) */
  error?: string
  /** see EncapState.startTicks */
  startTicks?: number
  /** the parameters it runs (observe's fallback when the state file is unreadable) */
  params?: TunnelParams
  counters?: Counters & {icmpSent?: number}
}
