// ---- vti (ESP, native/vti.c) in the engine ----
// A userspace vti's SA: the engine reads the keys from the key file itself (src/ipsec/userspace.ts loadEspKeys:
// keyfile.ts's checks, the fingerprint recorded in the state must match), hands them to the addon (which wipes
// the Buffers once the SA holds them and makes the engine non-dumpable; they are wiped here too on every path).
//
// Outbound sequence numbers are handed out in blocks reserved on disk before use (`<name>.esp-seq` in the run dir,
// written atomically): a restarted, changed or crashed engine resumes above every number it may have sent, so a
// kernel peer's replay window keeps accepting its packets (a static SA never resets its window). A block is raised
// every second when half used; a burst beyond it is dropped as `seq_reserved` until then. The file survives stop
// (del + apply with the same SA resumes too), not a reboot of this host (/run): like the kernel driver's SAs, which
// restart at 1.
import {readFileSync} from 'node:fs'
import {writeAtomic} from '../lib/rundir.js'
import {espStartOptions, loadEspKeys, wipe, type EspRecord} from '../ipsec/userspace.js'
import type {NativeCounters} from './addon.js'
import {espSeqPath, type EncapState, type EspStats} from './paths.js'

export const SEQ_BLOCK = 1 << 21
export const SEQ_MAX = 0xffffffff

interface SeqFile {
  spiOut: number // of the SA that made the last reservation (for people reading the file)
  keyFingerprint: string
  reserved: number
}

// Whatever SA the reservation was made for: a new SA may resume above it too (the peer's window for the old keys
// may come back when the key file is changed back), so sequence numbers only ever go up on this host.
function readSeq(path: string): number {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as SeqFile
    if (Number.isInteger(v.reserved) && v.reserved >= 0 && v.reserved <= SEQ_MAX) return v.reserved
  } catch {}
  return 0 // none yet: sequence numbers start at 1
}

function reserveSeq(path: string, r: EspRecord, upTo: number): number {
  const reserved = Math.min(SEQ_MAX, upTo)
  writeAtomic(path, {spiOut: r.spiOut, keyFingerprint: r.keyFingerprint, reserved} satisfies SeqFile)
  return reserved
}

/** What the engine keeps of a running vti's SA (never keys). */
export interface EspRun {
  /** JSON of the state's ipsec record: another one (SPIs, algorithm, window, key file, fingerprint) = new SA */
  key: string
  seqPath: string
  seqLimit: number
  exhaustedLogged: boolean
}

/** the identity of a state's SA (what makes the engine load new keys) */
export function espKey(state: EncapState): string {
  return state.params.mode === 'vti' ? JSON.stringify(state.ipsec ?? null) : ''
}

/**
 * Calls `use` with the addon's `esp` option for the state's SA (keys read and checked here, resuming above the
 * reservation, a new block reserved first), or with undefined for a vti without an ipsec block (no SA: it carries
 * nothing, as a kernel vti without xfrm states). The keys are wiped whatever happens.
 */
export function withEsp(dir: string, state: EncapState, use: (esp: Record<string, unknown> | undefined) => void): EspRun {
  const seqPath = espSeqPath(dir, state.name)
  const run: EspRun = {key: espKey(state), seqPath, seqLimit: 0, exhaustedLogged: false}
  const r = state.ipsec
  if (!r) {
    use(undefined)
    return run
  }
  const keys = loadEspKeys(state.name, r)
  try {
    const resume = readSeq(seqPath)
    const limit = reserveSeq(seqPath, r, resume + SEQ_BLOCK)
    use(espStartOptions(r, keys, {resume, limit}))
    run.seqLimit = limit
    return run
  } finally {
    wipe(keys)
  }
}

/** Raises the reservation once half of it is used (called every second); the new limit, or undefined. */
export function extendSeq(run: EspRun, state: EncapState, n: NativeCounters | null): number | undefined {
  const e = n?.esp
  if (!e || !state.ipsec || !run.seqLimit || run.seqLimit >= SEQ_MAX || e.txSeq < run.seqLimit - SEQ_BLOCK / 2) return undefined
  run.seqLimit = reserveSeq(run.seqPath, state.ipsec, e.txSeq + SEQ_BLOCK)
  return run.seqLimit
}

/** The ESP part of a vti's stats file; `log` is told once when the SA is spent. */
export function espStats(run: EspRun, state: EncapState, n: NativeCounters, log: (msg: string) => void): EspStats | undefined {
  const e = n.esp
  if (!e) return undefined
  const exhausted = e.txSeq >= SEQ_MAX
  if (exhausted && !run.exhaustedLogged) {
    run.exhaustedLogged = true
    log(`${state.name}: ESP SA spi-out ${state.ipsec?.spiOut}: 2^32 - 1 packets sent, the sequence number never wraps: the SA sends nothing more; put new keys in the key file and apply`)
  }
  return {
    txPackets: e.txPackets,
    txBytes: e.txBytes,
    rxPackets: e.rxPackets,
    rxBytes: e.rxBytes,
    txSeq: e.txSeq,
    seqLimit: e.seqLimit,
    hasSa: e.hasSa === 1,
    ...(exhausted ? {exhausted} : {}),
  }
}
