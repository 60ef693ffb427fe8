// The namespace's userspace engine: `node dist/bundle/engine.js <run dir>` (bundled; started by control.ts inside the
// namespace) runs every userspace tunnel of the namespace in one native data plane (native/engine.c). Its
// configuration is the namespace's state record in the run dir (.tunnels.json, written by the CLI: paths.ts); a
// "commit" on the control socket (.engine.sock, 0600) makes the engine converge to it in one transaction and
// answers per tunnel. It writes each tunnel's counters to <name>.stats.json, and exits when its last tunnel is
// removed. Once its control socket listens it writes its pid on the pipe TUNCTL_ENGINE_READY_FD names, if any
// (the CLI that launched it waits for that line instead of polling).
import {chmodSync, closeSync, constants, existsSync, fstatSync, openSync, readFileSync, statSync, writeSync} from 'node:fs'
import {unlink} from 'node:fs/promises'
import {connect, createServer, type Socket} from 'node:net'
import {join} from 'node:path'
import {removeQuiet, writeAtomic} from '../lib/rundir.js'
import {flockAddon} from '../lib/lock.js'
import type {Counters, TunnelParams} from '../model/types.js'
import {loadAddon, type NativeCounters} from './addon.js'
import {startTicks as processStart} from '../lib/proc.js'
import {applyKernelView, createdDeviceView, type TwinTunnel} from './kernel-twin.js'
import {type EncapState, type EncapStats, type EspStats, engineFiles, espSeqPath, readRecord, recordPath, writeRecord} from './paths.js'
import {espStartOptions, loadEspKeys, wipe, type EspRecord} from '../ipsec/userspace.js'
import {keyFingerprint, type KeyMaterial} from '../ipsec/keys.js'
import type {CreatedDevice} from '../plan/lines.js'

function log(msg: string) {
  process.stdout.write(`${new Date().toISOString()} [${process.pid}] ${msg}\n`)
}

type EngineCounters = Counters & {
  icmpSent: number
  tsoSegments?: number
  groMerged?: number
  otherTunnel?: number
  collisions?: number
  icmpErrors?: number
  offload?: boolean
}

function toCounters(n: NativeCounters): EngineCounters {
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
    collisions: n.collisions,
    icmpErrors: n.icmpErrors,
    offload: n.offload,
    drops,
  }
}

/** A commit's `devices` (what to set on the devices it creates), the well-formed entries only. */
function createdDevices(v: unknown): Map<string, CreatedDevice> {
  const out = new Map<string, CreatedDevice>()
  if (!v || typeof v !== 'object') return out
  for (const [name, d] of Object.entries(v as Record<string, any>)) {
    if (Array.isArray(d?.addresses) && d.addresses.every((a: unknown) => typeof a === 'string') && typeof d?.up === 'boolean') out.set(name, {addresses: d.addresses, up: d.up})
  }
  return out
}

const TWIN_MODES = new Set(['ipip', 'gre', 'sit', 'isatap'])

/** a device's MTU (/sys/class/net/<dev>/mtu), undefined when there is none of that name */
function deviceMtu(dev: string): number | undefined {
  try {
    return parseInt(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8').trim(), 10)
  } catch {
    return undefined
  }
}

/** IFF_UP of a device (/sys/class/net/<dev>/flags), false when it is gone */
function isUp(dev: string): boolean {
  try {
    return (parseInt(readFileSync(`/sys/class/net/${dev}/flags`, 'utf8').trim(), 16) & 1) === 1
  } catch {
    return false
  }
}

// kernel twin (issue #6 item 3): the link-local addresses addrconf gives the kernel's device when it comes up, and
// the kernel's default MTU (src/userspace/kernel-twin.ts), for the tunnels a transaction added or changed
// (withMtu) or whose device came up: one batch for all of them
function kernelView(tunnels: TwinTunnel[]) {
  const list = tunnels.filter((t) => TWIN_MODES.has(t.params.mode))
  for (const e of applyKernelView(list)) log(`kernel twin: ${e}`)
}

/** What a commit answers for one tunnel. */
export interface CommitResult {
  ok: boolean
  error?: string
  /** the generation of its state-record entry the engine runs */
  generation?: number
  removed?: boolean
}

export interface CommitReply {
  ok: boolean
  pid: number
  results: Record<string, CommitResult>
  running: string[]
  error?: string
}

interface Running {
  state: EncapState
  key: string
  startedAt: string
  lastWrite: number
  lastCounters: string
  /** vti: outbound sequence numbers reserved (persisted) up to; ESP counters of the SA contexts before the current */
  seqLimit?: number
  /** vti: the outbound SA's identity (espOutSa) its reservations are made for */
  outSa?: string
  espBase?: {txPackets: number; txBytes: number; rxPackets: number; rxBytes: number}
  exhaustedLogged?: boolean
  /** IFF_UP at the last look (kernel twin: addrconf acts when the device comes up) */
  wasUp?: boolean
}

// ---- vti (ESP, native/vti.c) ----
// Outbound sequence numbers are handed out in blocks reserved on disk before use (`<name>.esp-seq`, fsynced):
// a restarted or changed engine, or one that crashed, resumes above every number it may have sent with the same
// outbound SA, so a kernel peer's replay window keeps accepting its packets (a static SA never resets its window).
// A new outbound SA (another spi-out, algorithm or outbound key: the peer's inbound SA for it is new too, its window
// empty) starts at 1 again: that is how an exhausted SA (2^32 - 1 sent, it never wraps) is replaced. A block is
// raised every second when half used; a burst beyond it is dropped as `seq_reserved` until then. The file survives
// stop (del + apply with the same SA resumes too), not a reboot of this host (/run): like the kernel driver's SAs.
const SEQ_BLOCK = 1 << 21
const SEQ_MAX = 0xffffffff

interface SeqFile {
  spiOut: number // of the SA that made the last reservation (for people reading the file)
  keyFingerprint: string
  /** the outbound SA's identity (espOutSa): the reservation counts for that SA only */
  outSa?: string
  reserved: number
}

/** The outbound SA's identity: a fingerprint (keys.ts) of its SPI, algorithm and outbound keys only (an inbound key
 * change keeps the outbound SA and its sequence numbers). */
function espOutSa(r: EspRecord, keys: KeyMaterial): string {
  const out = Object.fromEntries(Object.entries(keys).filter(([n]) => n === 'out' || n.startsWith('out-')))
  return keyFingerprint({...out, 'spi-out': Buffer.from(String(r.spiOut)), alg: Buffer.from(`${r.aead ?? ''}/${r.cipher ?? ''}/${r.auth ?? ''}`)})
}

// The last reservation of this outbound SA (a file without outSa, written before it existed: of the same spi-out).
function readSeq(path: string, r: EspRecord, outSa: string): number {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as SeqFile
    if (v.outSa !== undefined ? v.outSa !== outSa : v.spiOut !== r.spiOut) return 0 // a new outbound SA
    if (Number.isInteger(v.reserved) && v.reserved >= 0 && v.reserved <= SEQ_MAX) return v.reserved
  } catch {}
  return 0 // none yet: sequence numbers start at 1
}

function reserveSeq(path: string, r: EspRecord, outSa: string, upTo: number): number {
  const reserved = Math.min(SEQ_MAX, upTo)
  writeAtomic(path, {spiOut: r.spiOut, keyFingerprint: r.keyFingerprint, outSa, reserved} satisfies SeqFile)
  return reserved
}

function main() {
  const dir = process.argv[2]
  if (!dir) {
    process.stderr.write('usage: engine.js <run dir>\n')
    process.exit(64)
  }
  // One engine per namespace, before any socket or thread of the data plane exists: the CLI starts an engine only
  // when it finds none running, and if that judgement was wrong (another engine answers on the control socket),
  // this one leaves at once instead of taking over the socket and decapsulating every packet a second time. The
  // CLI then finds the running engine by its record.
  const probe = connect(engineFiles(dir).sock)
  probe.once('connect', () => {
    probe.destroy()
    log('another engine answers on the control socket: this one is not needed, exiting')
    process.exit(0)
  })
  probe.once('error', () => {
    probe.destroy()
    serve(dir)
  })
}

function serve(dir: string) {
  const files = engineFiles(dir)
  // TUNCTL_OFFLOAD=0: plain TUN devices without IFF_VNET_HDR (no TSO segmentation / coalescing); a tunnel's state
  // can ask the same (offload: false)
  const offload = process.env.TUNCTL_OFFLOAD !== '0'
  const addon = loadAddon()
  const startTicks = processStart(process.pid)
  const running = new Map<string, Running>()
  addon.engineStart()

  const statsOf = (name: string, r: Running): EncapStats | undefined => {
    const n = addon.engineStats(name)
    if (!n) return undefined
    return {
      name,
      pid: process.pid,
      ...(startTicks !== undefined ? {startTicks} : {}),
      params: r.state.params,
      generation: r.state.generation,
      startedAt: r.startedAt,
      updatedAt: new Date().toISOString(),
      counters: toCounters(n),
      ...(r.state.params.mode === 'vti' ? {esp: espStats(name, r, n)} : {}),
    }
  }
  const espStats = (name: string, r: Running, n: NativeCounters): EspStats | undefined => {
    const e = n.esp
    if (!e) return undefined
    const b = r.espBase ?? {txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0}
    const exhausted = e.txSeq >= SEQ_MAX
    if (exhausted && !r.exhaustedLogged) {
      r.exhaustedLogged = true
      log(`${name}: ESP SA spi-out ${r.state.ipsec?.spiOut}: 2^32 - 1 packets sent, the sequence number never wraps: the SA sends nothing more; put new keys in both ends' key files (or give both a new spi-out/spi-in) and apply: the new SA starts at 1`)
    }
    return {
      txPackets: b.txPackets + e.txPackets,
      txBytes: b.txBytes + e.txBytes,
      rxPackets: b.rxPackets + e.rxPackets,
      rxBytes: b.rxBytes + e.rxBytes,
      txSeq: e.txSeq,
      seqLimit: e.seqLimit,
      hasSa: e.hasSa === 1,
      ...(exhausted ? {exhausted} : {}),
    }
  }
  /** a vti's SA options for the addon (keys read from the key file here, wiped on every path by the caller via
   * the returned wipe) resuming above its reservation; {} for the other modes */
  const espOptions = (state: EncapState): {opts: {esp?: Record<string, unknown>}; limit: number; outSa?: string; done: () => void} => {
    if (state.params.mode !== 'vti' || !state.ipsec) return {opts: {}, limit: 0, done: () => {}}
    const r = state.ipsec
    const keys = loadEspKeys(state.name, r)
    try {
      const seqPath = espSeqPath(dir, state.name)
      const outSa = espOutSa(r, keys)
      const resume = readSeq(seqPath, r, outSa)
      const limit = reserveSeq(seqPath, r, outSa, resume + SEQ_BLOCK)
      return {opts: {esp: espStartOptions(r, keys, {resume, limit})}, limit, outSa, done: () => wipe(keys)}
    } catch (e) {
      wipe(keys)
      throw e
    }
  }
  // raises a vti's reservation once half of it is used (called every second)
  const extendSeq = (name: string, r: Running, n: NativeCounters) => {
    const e = n.esp
    if (!e || !r.state.ipsec || !r.outSa || !r.seqLimit || r.seqLimit >= SEQ_MAX || e.txSeq < r.seqLimit - SEQ_BLOCK / 2) return
    r.seqLimit = reserveSeq(espSeqPath(dir, name), r.state.ipsec, r.outSa, e.txSeq + SEQ_BLOCK)
    addon.engineVtiSeqLimit(name, r.seqLimit)
  }
  // the writes of one tick that only refresh unchanged counters (or write a large commit's first ones)
  let refreshes = 0
  const writeStats = (name: string, r: Running, force: boolean) => {
    const st = statsOf(name, r)
    if (!st) return
    const c = JSON.stringify(st.counters)
    // every second while traffic flows or when few tunnels run; otherwise at least every 10 s, but at most a tenth
    // of the tunnels per tick: 1000 files at once kept the engine (and a commit waiting for it) busy for seconds on
    // a disk-backed /run, every 10 s
    if (!force && running.size > 100 && (r.lastCounters === '' || c === r.lastCounters)) {
      if (r.lastCounters !== '' && Date.now() - r.lastWrite < 10_000) return
      if (refreshes >= Math.ceil(running.size / 10)) return
      refreshes++
    }
    r.lastCounters = c
    r.lastWrite = Date.now()
    // no fsync: counters are for display, rewritten at least every 10 s, and a crash of the engine cannot tear
    // them (rename); an fsync each costs 1000 tunnels seconds of the engine's one thread on a disk-backed /run
    writeAtomic(join(dir, `${name}.stats.json`), st, undefined, {sync: false})
  }

  // the state record: its netns field (kept as read) and the stamp (inode, mtime, size) of the version this engine
  // last read or wrote: a tick looks at it again only when it changed on disk
  let recordNetns: string | undefined
  let seen = ''
  const recordStamp = (): string => {
    try {
      const st = statSync(recordPath(dir))
      return `${st.ino}:${st.mtimeMs}:${st.size}`
    } catch {
      return ''
    }
  }
  /** writes the record naming this engine (no tunnel: no file) */
  const writeRecordHere = (tunnels: Map<string, EncapState>) => {
    writeRecord(dir, tunnels, {pid: process.pid, ...(startTicks !== undefined ? {startTicks} : {}), ...(recordNetns ? {netns: recordNetns} : {})})
    seen = recordStamp()
  }

  /** the record as it is now, with the `drop` entries taken out (those of the generation the engine ran: the CLI
   * may have written a new one meanwhile) and every running tunnel it lacks put back (written only if that changes
   * it, or it does not name this engine) */
  const updateRecord = (drop: Array<{name: string; generation: number}>, why: string) => {
    const rec = readRecord(dir)
    const tunnels = new Map(Object.entries(rec?.tunnels ?? {}))
    let changed = rec === null || !!rec?.damaged || (rec !== undefined && (rec.pid !== process.pid || rec.startTicks !== startTicks))
    for (const d of drop) {
      if (tunnels.get(d.name)?.generation !== d.generation) continue
      tunnels.delete(d.name)
      changed = true
    }
    const missing = [...running.keys()].filter((n) => !tunnels.has(n))
    for (const n of missing) tunnels.set(n, running.get(n)!.state)
    if (rec?.netns) recordNetns = rec.netns
    if (rec === null || rec?.damaged || missing.length) log(`state record ${rec === null ? 'unreadable' : rec?.damaged ? 'damaged' : rec === undefined ? 'missing' : `lacks ${missing.length} running tunnels`} ${why}: writing back what runs`)
    if (changed || missing.length) writeRecordHere(tunnels)
    else seen = recordStamp()
  }

  /** one transaction: converge to the state record; `stop`, `forget`: removed tunnels (`forget`: their device stays) */
  // `gone`: the files of the tunnels the commit removes; the caller unlinks them (in parallel) before it replies
  // `devices`: what to set on the devices of the tunnels this commit adds (a create's addresses and up state)
  const commit = (stop: Set<string>, forget: Set<string>, order: string[], gone: string[], devices: Map<string, CreatedDevice> = new Map()): CommitReply => {
    const t0 = Date.now()
    const results: Record<string, CommitResult> = {}
    const rec = readRecord(dir)
    // unreadable (damaged by hand: the CLI writes it whole before each commit): nothing in it is trusted, what runs
    // keeps running and is written back
    if (rec === null) log('state record unreadable at commit: keeping what runs')
    if (rec?.netns) recordNetns = rec.netns
    const desired = new Map(Object.entries(rec?.tunnels ?? {}))
    // the record is rewritten when it does not name this engine, or the commit changes what it should hold
    let rewrite = rec === null || !!rec?.damaged || (rec !== undefined && (rec.pid !== process.pid || rec.startTicks !== startTicks))
    // the commit's stops and forgets: not desired, whatever entry is still there
    for (const n of [...stop, ...forget]) rewrite = desired.delete(n) || rewrite
    const tRead = Date.now()
    let addMs = 0 // in the addon's add/change
    // a device deleted under the engine (ip link del: del, prune, a rollback) since the last look: that tunnel is
    // gone with its entry, unless the CLI wrote its entry anew (another generation) for this commit: then it is
    // added afresh below
    for (const [name, r] of [...running]) {
      if (existsSync(`/sys/class/net/${name}`) && !addon.engineStats(name)?.deviceGone) continue
      addon.engineRemove(name, false)
      running.delete(name)
      const want = desired.get(name)
      if (want && want.generation === r.state.generation) {
        desired.delete(name)
        rewrite = true
        gone.push(join(dir, `${name}.stats.json`))
      }
      log(`${name} was deleted`)
    }
    for (const [name, r] of [...running]) {
      if (desired.has(name)) continue
      if (!stop.has(name) && !forget.has(name)) {
        // running but not in the record (it was damaged or lost): only a commit's stop or forget removes a tunnel;
        // it keeps running and goes back into the record
        desired.set(name, r.state)
        rewrite = true
        log(`${name} runs but is not in the state record: kept, written back`)
        continue
      }
      const keep = forget.has(name)
      addon.engineRemove(name, !keep)
      running.delete(name)
      gone.push(join(dir, `${name}.stats.json`))
      results[name] = {ok: true, removed: true}
      if (running.size < 50) log(`removed ${name}${keep ? ' (device kept)' : ''}`)
    }
    const orderAt = new Map(order.map((n, i) => [n, i]))
    // an entry this commit does not start, not running and without its device: deleted under the engine (its drop
    // from the record may have waited for a tunctl command's lock, or an older record was written back over it):
    // it goes, rather than coming back as a bare device; an entry whose device exists is taken over (a new engine
    // after a crash: the devices are persistent)
    for (const name of [...desired.keys()]) {
      if (running.has(name) || orderAt.has(name) || existsSync(`/sys/class/net/${name}`)) continue
      desired.delete(name)
      rewrite = true
      log(`${name}: in the state record, but its device is gone and this commit does not start it: dropped`)
    }
    const rank = (n: string) => orderAt.get(n) ?? order.length
    const verbose = desired.size <= 50
    const names = [...desired.keys()].sort((a, b) => rank(a) - rank(b))
    const twins: TwinTunnel[] = []
    const added: string[] = []
    for (const name of names) {
      const state = desired.get(name)!
      const key = JSON.stringify([state.params, state.ipsec ?? null])
      const r = running.get(name)
      let limit = r?.seqLimit ?? 0
      let outSa = r?.outSa
      try {
        if (!r || r.key !== key) {
          const esp = espOptions(state)
          try {
            // a vti's counters of the SA context being replaced carry over
            const before = r && esp.opts.esp ? addon.engineStats(name) : null
            const ta = performance.now()
            if (!r) {
              addon.engineAdd(name, state.params, {offload: offload && state.offload !== false, ...esp.opts})
              if (devices.has(name)) added.push(name)
            } else addon.engineChange(name, state.params, esp.opts)
            addMs += performance.now() - ta
            if (r && before) {
              const prev = espStats(name, r, before)
              if (prev) r.espBase = {txPackets: prev.txPackets, txBytes: prev.txBytes, rxPackets: prev.rxPackets, rxBytes: prev.rxBytes}
              r.exhaustedLogged = false
            }
            limit = esp.limit
            outSa = esp.outSa
          } finally {
            esp.done()
          }
        }
      } catch (e: any) {
        results[name] = {ok: false, error: e.message, generation: state.generation}
        log(`${r ? 'changing' : 'adding'} ${name} failed: ${e.message}`)
        continue
      }
      const now = new Date().toISOString()
      const rr: Running = r ?? {state, key, startedAt: now, lastWrite: 0, lastCounters: ''}
      if (!r && verbose) log(`started ${state.params.mode} ${name} local ${state.params.local} remote ${state.params.remote}`)
      else if (r && r.key !== key) log(`changed ${name} in place (generation ${state.generation})`)
      rr.state = state
      rr.key = key
      rr.seqLimit = limit
      rr.outSa = outSa
      running.set(name, rr)
      // the kernel view of a device this commit made (or took over); a tunnel changed in place keeps its device's
      // link-local addresses (addrconf derives them at NETDEV_UP only, so the kernel's device keeps them across a
      // changelink) and its MTU (tunctl does not change an MTU the spec leaves out: tunctl.yaml(5) mtu)
      if (!r) twins.push({name, params: rr.state.params, withMtu: true})
      // counters at once for a small commit; a large one leaves them to the next tick (1 s)
      if (verbose) writeStats(name, rr, true)
      results[name] = {ok: true, generation: state.generation}
    }
    // the created devices' addresses and up state: one netlink batch (native/nlbatch.c); a tunnel whose device
    // refused one fails, and its device goes (as a failed add leaves none)
    // With them, the kernel view of those devices (kernel-twin.ts createdDeviceView: the link-local addresses and
    // default MTU of the kernel's device), except where it needs the namespace's addresses (kernelView does those)
    const viewed = new Set<string>()
    const tc = Date.now()
    if (added.length) {
      const underlay = new Map<string, number | undefined>()
      const underlayMtu = (p: TunnelParams): number | undefined => {
        const k = `${p.remote} ${p.local} ${p.dev ?? ''}`
        if (!underlay.has(k)) underlay.set(k, (p.remote !== 'any' ? addon.routeDeviceMtu(p.remote, p.local, p.dev) : null) ?? (p.dev ? deviceMtu(p.dev) : undefined))
        return underlay.get(k)
      }
      const errs = addon.engineConfigure(
        added.map((name) => {
          const d = devices.get(name)!
          const p = running.get(name)!.state.params
          const v = TWIN_MODES.has(p.mode) ? createdDeviceView(p, d.up, p.mtu === undefined ? underlayMtu(p) : undefined) : undefined
          if (v) viewed.add(name)
          // (the device was made with the addon's default MTU: set only a different one)
          const mtu = v?.mtu !== undefined && v.mtu !== addon.defaultMtu(p) ? {mtu: v.mtu} : {}
          return {name, addresses: d.addresses, up: d.up, ...(v ? {linkLocal: v.linkLocal, ...mtu} : {})}
        }),
      )
      added.forEach((name, i) => {
        const why = errs[i]
        if (why === null || why === undefined) return
        addon.engineRemove(name, true)
        const r = running.get(name)
        running.delete(name)
        gone.push(join(dir, `${name}.stats.json`)) // (a small commit wrote its first counters already)
        results[name] = {ok: false, error: `configuring its device: ${why}`, ...(r ? {generation: r.state.generation} : {})}
        log(`adding ${name} failed: configuring its device: ${why}`)
      })
    }
    // what runs is what the record holds (a failed start's entry: the CLI puts its previous one back or removes it)
    for (const [name, r] of running) if (desired.get(name) !== r.state) rewrite = true
    // an entry this commit did not start whose take-over failed (its underlay or key file missing now) stays in
    // the record with its device: its parameters are what the next apply compares and restarts
    const keptFailed = [...desired].filter(([n]) => !running.has(n) && !orderAt.has(n) && results[n] && !results[n]!.ok)
    if (rewrite) writeRecordHere(new Map([...[...running].map(([n, r]) => [n, r.state] as const), ...keptFailed]))
    else seen = recordStamp()
    const tk = Date.now()
    const configureMs = tk - tc
    for (let i = twins.length - 1; i >= 0; i--) if (!running.has(twins[i]!.name) || viewed.has(twins[i]!.name)) twins.splice(i, 1)
    kernelView(twins)
    const kernelViewMs = Date.now() - tk
    for (const t of twins) {
      const r = running.get(t.name)
      if (r) r.wasUp = isUp(t.name)
    }
    for (const name of viewed) {
      const r = running.get(name)
      if (r) r.wasUp = devices.get(name)!.up
    }
    // where a commit's time goes (bench/scale.sh reports it): state files read, the tunnels' loop (of which in the
    // addon's add/change: the TUN devices), the created devices configured, the kernel view (ip) of the others
    log(`commit: ${names.length} desired, ${running.size} running, ${Object.values(results).filter((r) => !r.ok).length} failed in ${Date.now() - t0} ms (state record read: ${tRead - t0} ms, tunnels: ${tc - tRead} ms of which adds/changes ${Math.round(addMs)} ms, ${added.length} devices configured: ${configureMs} ms, kernel view of ${twins.length}: ${kernelViewMs} ms)`)
    return {ok: true, pid: process.pid, results, running: [...running.keys()]}
  }

  let exiting = false
  const shutdown = (why: string, code = 0) => {
    if (exiting) return
    exiting = true
    clearInterval(timer)
    log(`${why}: stopping (${running.size} tunnels; their devices stay)`)
    try {
      addon.engineStop()
    } catch (e: any) {
      log(`stop failed: ${e.message}`)
    }
    server.close()
    // the socket and record are this engine's only while its record names it: an engine that started meanwhile
    // (after this one said it had no tunnel left) keeps its own
    let mine = false
    try {
      mine = JSON.parse(readFileSync(files.record, 'utf8'))?.pid === process.pid
    } catch {}
    if (mine) {
      removeQuiet(files.sock)
      removeQuiet(files.record)
    }
    process.exit(code)
  }

  // the record's drops of tunnels deleted under the engine, waiting for the namespace's lock to be free
  let pendingDrops: Array<{name: string; generation: number}> = []
  /** runs `f` unless a tunctl command holds the namespace's lock (flock, src/lib/lock.ts), holding it meanwhile */
  const unlessLocked = (f: () => void): boolean => {
    const flock = flockAddon()
    let fd: number
    try {
      fd = openSync(join(dir, 'lock'), constants.O_RDWR | constants.O_NOFOLLOW) // (close-on-exec, as every fd Node opens)
    } catch {
      f() // no lock file: no tunctl command ever locked this namespace
      return true
    }
    try {
      // (busy: a command holds it; any other error: as without the addon)
      if (flock && flock.flock(fd, flock.LOCK_EX | flock.LOCK_NB) === flock.EWOULDBLOCK) return false
      f()
      return true
    } finally {
      closeSync(fd)
    }
  }

  const timer = setInterval(() => {
    refreshes = 0
    const forgotten: Array<{name: string; generation: number}> = []
    const cameUp: TwinTunnel[] = []
    for (const [name, r] of [...running]) {
      try {
        const n = addon.engineStats(name)
        if (n?.deviceGone || !existsSync(`/sys/class/net/${name}`)) {
          // the device was deleted by someone else (ip link del): the tunnel is gone, so is its entry
          addon.engineRemove(name, false)
          running.delete(name)
          forgotten.push({name, generation: r.state.generation})
          log(`${name} was deleted; forgot it`)
          continue
        }
        // addrconf adds the link-local addresses on NETDEV_UP (and drops them on NETDEV_DOWN)
        const up = isUp(name)
        if (up && r.wasUp === false) cameUp.push({name, params: r.state.params, withMtu: false})
        r.wasUp = up
        if (n) extendSeq(name, r, n)
        writeStats(name, r, false)
      } catch (e: any) {
        log(`counters of ${name}: ${e.message}`)
      }
    }
    // the state record damaged, lost or edited by hand (never by the CLI, which commits after it writes it: a
    // tick between its write and its commit finds every running tunnel in it): what runs is written back, so the
    // CLI keeps recognising this engine and the tunnels' parameters; the forgotten tunnels go out of it
    // Not while a tunctl command holds the namespace's lock: it reads, writes and commits the record, and a write
    // of this check between its read and its write would be lost (or lose its write): the drops wait
    pendingDrops.push(...forgotten)
    if (!busy && (pendingDrops.length || (running.size && recordStamp() !== seen))) {
      try {
        if (unlessLocked(() => updateRecord(pendingDrops, 'at the check every second'))) pendingDrops = []
      } catch (e: any) {
        log(`state record: ${e.message}`)
      }
    }
    // their counters files in parallel, as a commit's; the next commit runs only once they are gone
    if (forgotten.length) {
      const removed = Promise.all(forgotten.map((f) => unlink(join(dir, `${f.name}.stats.json`)).catch(() => {})))
      commits = commits.then(() => removed)
    }
    kernelView(cameUp)
    // idle: no tunnel left after a commit, or none ever committed (the CLI that started it died)
    // (a connection whose request has not arrived yet is a commit on its way)
    const idle = () => !running.size && !busy && !connections && (committed || Date.now() - bornAt > 30_000)
    // (after this tick's removals, if any: an engine exits with no file of a forgotten tunnel left)
    if (idle()) {
      if (!forgotten.length) shutdown('no tunnel left')
      else void commits.then(() => idle() && shutdown('no tunnel left'))
    }
  }, 1000)

  let busy = false
  let connections = 0
  let committed = false
  const bornAt = Date.now()
  // commits one after another (the next reads the state record only once the previous one's removals are done)
  let commits: Promise<unknown> = Promise.resolve()
  const failed = (error: string): CommitReply => ({ok: false, pid: process.pid, results: {}, running: [...running.keys()], error})
  const answer = (line: string): Promise<CommitReply> => {
    let req: any
    try {
      req = JSON.parse(line)
    } catch (e: any) {
      return Promise.resolve(failed(e.message))
    }
    if (req?.op === 'ping') return Promise.resolve({ok: true, pid: process.pid, results: {}, running: [...running.keys()]})
    if (req?.op !== 'commit') return Promise.resolve(failed('unknown request'))
    const run = commits.then(async (): Promise<CommitReply> => {
      busy = true
      committed = true
      try {
        const names = (v: unknown) => new Set<string>(Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [])
        const gone: string[] = []
        const reply = commit(names(req.stop), names(req.forget), Array.isArray(req.order) ? req.order : [], gone, createdDevices(req.devices))
        // the removed tunnels' files, in parallel (libuv's pool) before the reply: one at a time, 1000 unlinks took
        // 1-5 s on a disk-backed /run that discards each freed block at once (this VM), in parallel ~20x less
        await Promise.all(gone.map((f) => unlink(f).catch(() => {})))
        return reply
      } catch (e: any) {
        return failed(e.message)
      } finally {
        busy = false
      }
    })
    commits = run
    return run
  }
  const server = createServer((sock: Socket) => {
    connections++
    sock.once('close', () => connections--)
    let buf = ''
    sock.setEncoding('utf8')
    sock.on('error', () => {})
    sock.on('data', (d: string) => {
      buf += d
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const line = buf.slice(0, nl)
      buf = ''
      void answer(line).then((reply) =>
        sock.end(JSON.stringify(reply) + '\n', () => {
          if (!running.size && committed) shutdown('no tunnel left')
        }),
      )
    })
  })
  server.on('error', (e: any) => {
    log(`control socket ${files.sock}: ${e.message}`)
    process.exit(1)
  })
  // a stale socket of a dead engine (the CLI starts an engine only when none answers)
  removeQuiet(files.sock)
  const umask = process.umask(0o177)
  server.listen(files.sock, () => {
    process.umask(umask)
    chmodSync(files.sock, 0o600)
    // stateRecord: this engine reads the state record (an older release's read per-tunnel files: control.ts replaces it)
    writeAtomic(files.record, {pid: process.pid, ...(startTicks !== undefined ? {startTicks} : {}), dir, stateRecord: 1})
    log(`engine listening on ${files.sock}`)
    // the CLI that launched this engine waits for this line (control.ts launchEngine)
    const readyFd = Number(process.env.TUNCTL_ENGINE_READY_FD)
    delete process.env.TUNCTL_ENGINE_READY_FD
    if (Number.isInteger(readyFd) && readyFd > 2) {
      try {
        // only the launcher's pipe (a socket pair from Node's spawn, or a FIFO): a wrapper that closed fd 3 leaves
        // that number to whatever this process opened next (libuv's epoll fd), which is not written or closed
        const st = fstatSync(readyFd)
        if (!st.isSocket() && !st.isFIFO()) throw new Error('not a pipe: left alone')
        writeSync(readyFd, `${process.pid}\n`)
        closeSync(readyFd)
      } catch (e: any) {
        log(`ready pipe (fd ${readyFd}): ${e.message}`)
      }
    }
  })
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

main()
