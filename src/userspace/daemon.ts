// The detached encapsulator process: `node dist/userspace/daemon.js <statefile>` runs the native data plane
// for one tunnel, writes counters every second, re-reads its config on SIGHUP and removes its TUN on SIGTERM.
import {readFileSync, readdirSync, unlinkSync, watch} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {writeAtomic} from '../lib/rundir.js'
import type {Counters} from '../model/types.js'
import {loadAddon, type NativeCounters, type TableEntry} from './addon.js'
import type {EncapState, EncapStats} from './paths.js'
import {applyKernelAddresses, applyKernelMtu} from './kernel-twin.js'

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

// kernel twin (issue #6 item 3): the link-local addresses addrconf gives the kernel's device when it comes up, and
// the kernel's default MTU (src/userspace/kernel-twin.ts). Call sites: start, reload, and the device coming up.
function kernelView(state: EncapState, withMtu: boolean) {
  const up = ((sysNet(state.name, 'flags') ?? 0) & 1) === 1
  for (const e of applyKernelAddresses(state.name, state.params, up)) log(`kernel twin: ${e}`)
  const e = withMtu ? applyKernelMtu(state.name, state.params) : undefined
  if (e) log(`kernel twin: ${e}`)
}

function sysNet(dev: string, attr: string): number | undefined {
  try {
    const v = readFileSync(`/sys/class/net/${dev}/${attr}`, 'utf8').trim()
    return attr === 'flags' ? parseInt(v, 16) : Number(v)
  } catch {
    return undefined
  }
}

/**
 * The namespace's userspace tunnel table for the receive dispatch: every state file beside ours whose TUN device
 * exists, in creation order (the kernel's ifindex order), with its device's IFF_UP and its `dev`'s ifindex.
 * Returns the entries and our index in them (-1 if our device is missing).
 */
function tunnelTable(stateFile: string, ownName: string): {table: TableEntry[]; self: number} {
  const dir = dirname(stateFile)
  const rows: {ifindex: number; name: string; entry: TableEntry}[] = []
  let files: string[] = []
  try {
    files = readdirSync(dir)
  } catch {}
  for (const f of files) {
    if (!f.endsWith('.json') || f.endsWith('.stats.json')) continue
    try {
      const st = JSON.parse(readFileSync(join(dir, f), 'utf8')) as EncapState
      if (!st?.params?.mode || !st.name || `${st.name}.json` !== f) continue
      const ifindex = sysNet(st.name, 'ifindex')
      if (ifindex === undefined) continue
      const flags = sysNet(st.name, 'flags') ?? 0
      const link = st.params.dev ? (sysNet(st.params.dev, 'ifindex') ?? 0) : 0
      rows.push({ifindex, name: st.name, entry: {name: st.name, params: st.params, link, up: (flags & 1) === 1}})
    } catch {}
  }
  rows.sort((a, b) => a.ifindex - b.ifindex)
  return {table: rows.map((r) => r.entry), self: rows.findIndex((r) => r.name === ownName)}
}

function ownStartTicks(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const v = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    return Number.isFinite(v) ? v : undefined
  } catch {
    return undefined
  }
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

  // with the pid, identifies this process to the CLI (which signals only a proven daemon)
  const startTicks = ownStartTicks()
  const stats = (): EncapStats => ({
    name: state.name,
    pid: process.pid,
    ...(startTicks !== undefined ? {startTicks} : {}),
    params: state.params,
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
    const {table, self} = tunnelTable(stateFile, state.name)
    const key = JSON.stringify([table, self])
    if (!force && key === siblings) return
    siblings = key
    if (self < 0) return
    try {
      addon.setTable(handle, table, self)
    } catch (e: any) {
      log(`tunnel table: ${e.message}`)
    }
  }
  refreshSiblings(true)
  // a sibling started or stopped: re-read the table now rather than at the next tick (up/down and deleted
  // devices are seen by the data plane itself, see TUNCTL_FLAGS_MS)
  let watchTimer: NodeJS.Timeout | undefined
  try {
    watch(dirname(stateFile), {persistent: false}, (_ev, f) => {
      if (!f || !String(f).endsWith('.json') || String(f).endsWith('.stats.json') || watchTimer) return
      watchTimer = setTimeout(() => {
        watchTimer = undefined
        try {
          refreshSiblings()
        } catch {}
      }, 20)
    })
  } catch (e: any) {
    log(`watching the state directory: ${e.message}`)
  }
  state.pid = process.pid
  if (startTicks !== undefined) state.startTicks = startTicks
  writeAtomic(stateFile, state)
  let wasUp = ((sysNet(state.name, 'flags') ?? 0) & 1) === 1
  kernelView(state, true)
  writeAtomic(statsFile, stats())
  log(`started ${state.params.mode} ${state.name} local ${state.params.local} remote ${state.params.remote}`)

  // the state file damaged or removed under us (startEncap replaces it atomically, so a valid file is never
  // half-written): write back what we run, so the CLI keeps recognising this daemon and its parameters
  const repairState = () => {
    let ok = false
    try {
      const cur = JSON.parse(readFileSync(stateFile, 'utf8'))
      ok = cur?.name === state.name && typeof cur?.params?.mode === 'string'
    } catch {}
    if (ok) return
    log(`state file ${stateFile} unreadable: rewriting it`)
    writeAtomic(stateFile, state)
  }

  const timer = setInterval(() => {
    try {
      if (addon.stats(handle).deviceGone) return deviceGone()
      repairState()
      refreshSiblings()
      // addrconf adds the link-local addresses on NETDEV_UP (and drops them on NETDEV_DOWN)
      const up = ((sysNet(state.name, 'flags') ?? 0) & 1) === 1
      if (up && !wasUp) kernelView(state, false)
      wasUp = up
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
      state = {...next, pid: process.pid, ...(startTicks !== undefined ? {startTicks} : {})}
      handle = addon.start(state.name, state.params, {offload})
      refreshSiblings(true)
      writeAtomic(stateFile, state)
      kernelView(state, true)
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
