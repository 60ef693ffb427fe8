// The ipsec block of a vti run by the userspace driver (native/vti.c in the namespace's engine). The keys never
// reach the engine's argv, environment, state or stats files or log: the state file records the key file's
// absolute path and a key fingerprint (keys.ts keyFingerprint); the engine (root, like the CLI) reads the key file
// itself with keyfile.ts's checks and parser, refuses keys whose fingerprint is not the recorded one, hands them
// to the native SA (which wipes the Buffers) and is not dumpable from then on. `plan` compares fingerprints.
import {SpecError} from '../lib/errors.js'
import type {DesiredState, DesiredTunnel} from '../model/types.js'
import {loadKeyFiles} from './keyfile.js'
import {getFingerprint, getKeyPath, getKeys, keyFingerprint, setFingerprint, setKeyPath, type KeyMaterial} from './keys.js'
import {AEADS, AUTHS, CIPHERS, REPLAY_MAX, SPI_MAX, SPI_MIN, type IpsecParams} from './spec.js'

/** What a userspace vti's state file holds of its ipsec block: the key-free block, where its keys are, their fingerprint. */
export interface EspRecord {
  spiOut: number
  spiIn: number
  aead?: IpsecParams['aead']
  cipher?: IpsecParams['cipher']
  auth?: IpsecParams['auth']
  replayWindow: number
  /** the key file as written in the spec (export writes it back) */
  keyFile?: string
  /** absolute path the engine reads the keys from */
  keyPath: string
  keyFingerprint: string
}

/** The record of a desired block whose key file was read (loadKeyFiles), or of an observed one (a rollback
 * restarting the SA it replaced: same key file, same fingerprint); throws if neither. */
export function espRecord(p: IpsecParams): EspRecord {
  const keys = getKeys(p)
  const keyPath = getKeyPath(p)
  const fingerprint = keys ? keyFingerprint(keys) : getFingerprint(p)
  if (!fingerprint || !keyPath) throw new Error('internal: the ipsec block\'s key file was not read')
  return {
    spiOut: p.spiOut,
    spiIn: p.spiIn,
    ...(p.aead ? {aead: p.aead} : {cipher: p.cipher, auth: p.auth}),
    replayWindow: p.replayWindow,
    ...(p.keyFile !== undefined ? {keyFile: p.keyFile} : {}),
    keyPath,
    keyFingerprint: fingerprint,
  }
}

const spi = (v: unknown) => Number.isInteger(v) && (v as number) >= SPI_MIN && (v as number) <= SPI_MAX

/** A state file's ipsec record as startEncap writes it. */
export function isEspRecord(v: any): v is EspRecord {
  if (!v || typeof v !== 'object' || !spi(v.spiOut) || !spi(v.spiIn)) return false
  if (!Number.isInteger(v.replayWindow) || v.replayWindow < 0 || v.replayWindow > REPLAY_MAX) return false
  const alg = v.aead !== undefined ? (AEADS as readonly string[]).includes(v.aead) && v.cipher === undefined : (CIPHERS as readonly string[]).includes(v.cipher) && (AUTHS as readonly string[]).includes(v.auth)
  return alg && typeof v.keyPath === 'string' && v.keyPath.startsWith('/') && typeof v.keyFingerprint === 'string' && /^sha256:[0-9a-f]{32}$/.test(v.keyFingerprint)
}

/** The observed block of a running userspace vti (key-free; its keys compare by fingerprint, keys.ts sameKeys). */
export function observedIpsec(r: EspRecord): IpsecParams {
  const p: IpsecParams = {spiOut: r.spiOut, spiIn: r.spiIn, replayWindow: r.replayWindow}
  if (r.aead) p.aead = r.aead
  else {
    p.cipher = r.cipher
    p.auth = r.auth
  }
  if (r.keyFile !== undefined) p.keyFile = r.keyFile
  setFingerprint(p, r.keyFingerprint)
  setKeyPath(p, r.keyPath)
  return p
}

/**
 * Engine side (src/userspace/esp.ts): reads the record's key file with the CLI's checks (root-owned, not group/world accessible,
 * well-formed) and returns its keys, which must have the recorded fingerprint (the file changed since `apply`
 * planned with it: refuse, rather than run keys nobody planned). Errors never contain key material.
 */
export function loadEspKeys(name: string, r: EspRecord): KeyMaterial {
  const ipsec: IpsecParams = {...observedIpsec(r), keyFile: r.keyPath}
  const t = {name, state: 'present', ipsec, pointer: '', params: {mode: 'vti'}} as unknown as DesiredTunnel
  const state = {file: r.keyPath, tunnels: [t]} as unknown as DesiredState
  try {
    loadKeyFiles(state)
  } catch (e: any) {
    if (e instanceof SpecError) throw new Error(e.diagnostics.map((d) => `${d.file}:${d.line}:${d.column}: ${d.message}`).join('; '))
    throw e
  }
  const keys = getKeys(ipsec)
  if (!keys) throw new Error(`no keys read from ${r.keyPath}`)
  if (keyFingerprint(keys) !== r.keyFingerprint) {
    wipe(keys)
    throw new Error(`the keys in ${r.keyPath} changed since they were planned (fingerprint mismatch); run tunctl apply again`)
  }
  return keys
}

export function wipe(k: KeyMaterial): void {
  for (const b of Object.values(k)) b.fill(0)
}

/** The addon's `esp` start option (native/addon.c vti_setup): algorithm, SPIs, window, key Buffers (wiped by the addon). */
export function espStartOptions(r: EspRecord, k: KeyMaterial, seq: {resume: number; limit: number}): Record<string, unknown> {
  const copy = (n: string) => k[n]! // handed over, not copied: the addon wipes it once the SA holds the key
  return {
    alg: r.aead ?? r.cipher,
    spiOut: r.spiOut,
    spiIn: r.spiIn,
    replayWindow: r.replayWindow,
    ...(r.aead ? {keyOut: copy('out'), keyIn: copy('in')} : {keyOut: copy('out-enc'), keyIn: copy('in-enc'), authOut: copy('out-auth'), authIn: copy('in-auth')}),
    resumeSeq: seq.resume,
    seqLimit: seq.limit,
  }
}
