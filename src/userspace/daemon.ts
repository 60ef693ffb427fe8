// The detached encapsulator process: `node dist/userspace/daemon.js <statefile>` runs the native data plane
// for one tunnel, writes counters every second, re-reads its config on SIGHUP and removes its TUN on SIGTERM.
import {execFileSync} from 'node:child_process'
import {readFileSync, readdirSync, unlinkSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {writeAtomic} from '../lib/rundir.js'
import type {Counters} from '../model/types.js'
import {loadAddon, type NativeCounters} from './addon.js'
import type {EncapState, EncapStats} from './paths.js'

function log(msg: string) {
  process.stdout.write(`${new Date().toISOString()} [${process.pid}] ${msg}\n`)
}


type DaemonCounters = Counters & {icmpSent: number; tsoSegments?: number; groMerged?: number; otherTunnel?: number; offload?: boolean}

function toCounters(n: NativeCounters): DaemonCounters {
  const drops: Record<string, number> = {}
  for (const [k, v] of Object.entries(n.drops)) if (v) drops[k] = v
  return {
    rxPackets: n.rxPackets,
    rxBytes: n.rxBytes,
    txPackets: n.txPackets,
    txBytes: n.txBytes,
    rxErrors: n.rxErrors,
    txErrors: n.txErrors,
    rxDropped: n.rxDropped,
    txDropped: n.txDropped,
    icmpSent: n.icmpSent,
    tsoSegments: n.tsoSegments,
    groMerged: n.groMerged,
    otherTunnel: n.otherTunnel,
    offload: n.offload,
    drops,
  }
}

/** isatap: the link-local fe80::5efe:a.b.c.d the kernel gives an ISATAP interface */
function isatapLinkLocal(state: EncapState) {
  if (state.params.mode !== 'isatap' || state.params.local === 'any') return
  try {
    execFileSync('ip', ['-6', 'addr', 'replace', `fe80::5efe:${state.params.local}/64`, 'dev', state.name], {stdio: 'pipe'})
  } catch (e: any) {
    log(`adding the ISATAP link-local address failed: ${String(e.stderr ?? e.message).trim()}`)
  }
}

/** params of the namespace's other userspace tunnels (their state files beside ours) */
function siblingParams(stateFile: string): EncapState['params'][] {
  const dir = dirname(stateFile)
  const own = basename(stateFile)
  const out: EncapState['params'][] = []
  let files: string[] = []
  try {
    files = readdirSync(dir)
  } catch {
    return out
  }
  for (const f of files.sort()) {
    if (f === own || !f.endsWith('.json') || f.endsWith('.stats.json')) continue
    try {
      const st = JSON.parse(readFileSync(join(dir, f), 'utf8')) as EncapState
      if (st?.params?.mode) out.push(st.params)
    } catch {}
  }
  return out
}

function main() {
  const stateFile = process.argv[2]
  if (!stateFile) {
    process.stderr.write('usage: daemon.js <statefile>\n')
    process.exit(64)
  }
  const statsFile = stateFile.replace(/\.json$/, '.stats.json')
  // TUNCTL_OFFLOAD=0: plain TUN without IFF_VNET_HDR (no TSO segmentation / coalescing)
  const offload = process.env.TUNCTL_OFFLOAD !== '0'
  const addon = loadAddon()
  let state = JSON.parse(readFileSync(stateFile, 'utf8')) as EncapState
  const startedAt = new Date().toISOString()
  let handle: number
  let base: DaemonCounters = emptyCounters()

  const stats = (): EncapStats => ({
    name: state.name,
    pid: process.pid,
    generation: state.generation,
    startedAt,
    updatedAt: new Date().toISOString(),
    counters: add(base, toCounters(addon.stats(handle))),
  })

  try {
    handle = addon.start(state.name, state.params, {offload})
  } catch (e: any) {
    log(`start failed: ${e.message}`)
    writeAtomic(statsFile, {name: state.name, pid: process.pid, generation: state.generation, startedAt, updatedAt: startedAt, error: e.message})
    process.exit(1)
  }
  let siblings = ''
  const refreshSiblings = (force = false) => {
    const sib = siblingParams(stateFile)
    const key = JSON.stringify(sib)
    if (!force && key === siblings) return
    siblings = key
    try {
      addon.setSiblings(handle, sib)
    } catch (e: any) {
      log(`sibling tunnels: ${e.message}`)
    }
  }
  refreshSiblings(true)
  state.pid = process.pid
  writeAtomic(stateFile, state)
  isatapLinkLocal(state)
  writeAtomic(statsFile, stats())
  log(`started ${state.params.mode} ${state.name} local ${state.params.local} remote ${state.params.remote}`)

  const timer = setInterval(() => {
    try {
      if (addon.stats(handle).deviceGone) return deviceGone()
      refreshSiblings()
      writeAtomic(statsFile, stats())
    } catch (e: any) {
      log(`writing stats failed: ${e.message}`)
    }
  }, 1000)

  process.on('SIGHUP', () => {
    try {
      const next = JSON.parse(readFileSync(stateFile, 'utf8')) as EncapState
      base = add(base, toCounters(addon.stats(handle)))
      addon.stop(handle, false) // keep the device (and its addresses)
      state = {...next, pid: process.pid}
      handle = addon.start(state.name, state.params, {offload})
      refreshSiblings(true)
      writeAtomic(stateFile, state)
      isatapLinkLocal(state)
      writeAtomic(statsFile, stats())
      log(`reloaded generation ${state.generation}`)
    } catch (e: any) {
      // the data plane is stopped: report the error for this generation (startEncap throws it) and exit;
      // the persistent device stays, so a later start can take over
      log(`reload failed: ${e.message}`)
      clearInterval(timer)
      let generation = state.generation
      try {
        generation = (JSON.parse(readFileSync(stateFile, 'utf8')) as EncapState).generation
      } catch {}
      const now = new Date().toISOString()
      try {
        writeAtomic(statsFile, {name: state.name, pid: process.pid, generation, startedAt, updatedAt: now, error: e.message})
      } catch {}
      process.exit(1)
    }
  })

  const shutdown = (sig: string) => {
    clearInterval(timer)
    log(`${sig}: stopping, removing ${state.name}`)
    try {
      addon.stop(handle, true)
    } catch (e: any) {
      log(`stop failed: ${e.message}`)
    }
    try {
      unlinkSync(statsFile)
    } catch {}
    process.exit(0)
  }
  // the device was deleted by someone else (ip link del): the tunnel is gone, so is its record
  const deviceGone = () => {
    clearInterval(timer)
    log(`${state.name} was deleted; exiting`)
    try {
      addon.stop(handle, false)
    } catch {}
    for (const f of [statsFile, stateFile]) {
      try {
        unlinkSync(f)
      } catch {}
    }
    process.exit(0)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

function emptyCounters(): DaemonCounters {
  return {rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, rxErrors: 0, txErrors: 0, rxDropped: 0, txDropped: 0, icmpSent: 0, drops: {}}
}

function add(a: DaemonCounters, b: DaemonCounters): DaemonCounters {
  const drops: Record<string, number> = {...a.drops}
  for (const [k, v] of Object.entries(b.drops ?? {})) drops[k] = (drops[k] ?? 0) + v
  return {
    rxPackets: a.rxPackets + b.rxPackets,
    rxBytes: a.rxBytes + b.rxBytes,
    txPackets: a.txPackets + b.txPackets,
    txBytes: a.txBytes + b.txBytes,
    rxErrors: a.rxErrors + b.rxErrors,
    txErrors: a.txErrors + b.txErrors,
    rxDropped: a.rxDropped + b.rxDropped,
    txDropped: a.txDropped + b.txDropped,
    icmpSent: a.icmpSent + b.icmpSent,
    tsoSegments: (a.tsoSegments ?? 0) + (b.tsoSegments ?? 0),
    groMerged: (a.groMerged ?? 0) + (b.groMerged ?? 0),
    otherTunnel: (a.otherTunnel ?? 0) + (b.otherTunnel ?? 0),
    offload: b.offload,
    drops,
  }
}

main()
