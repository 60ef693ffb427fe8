// The vti `ipsec:` block: manually keyed ESP SAs (RFC 4303 tunnel mode). Pure checks and normalisation; the key
// file itself is read by keyfile.ts (after the spec parsed), and the kernel's SAs/policies are xfrm.ts's.
import type {DriverDiagnostic, RawTunnelSpec} from '../drivers/contract.js'
import {keysOf} from '../drivers/common.js'

export const AEADS = ['aes-gcm-128', 'aes-gcm-256'] as const
export const CIPHERS = ['aes-cbc-128', 'aes-cbc-256'] as const
export const AUTHS = ['hmac-sha256'] as const
export type Aead = (typeof AEADS)[number]
export type Cipher = (typeof CIPHERS)[number]
export type Auth = (typeof AUTHS)[number]

export const SPI_MIN = 0x100
export const SPI_MAX = 0xffffffff
export const REPLAY_MAX = 4096
export const REPLAY_DEFAULT = 128

/**
 * An ipsec block without key material: what the plan, show, --json and export may carry. The keys of a desired
 * block (read from its key file) and of an observed one (read from the kernel) live in keys.ts's side table,
 * never in this object, so serialising it can never print them.
 */
export interface IpsecParams {
  spiOut: number
  spiIn: number
  aead?: Aead
  cipher?: Cipher
  auth?: Auth
  replayWindow: number
  /** desired only: the key file as written in the spec */
  keyFile?: string
  /** observed only: what the kernel lacks for this block (an SA or policy missing, disable_policy unset) */
  problems?: string[]
}

/** Key bytes each key-file name must hold, by algorithm. */
export const KEY_BYTES: Record<Aead | Cipher | Auth, number> = {
  'aes-gcm-128': 20, // 16-byte key + 4-byte salt (RFC 4106)
  'aes-gcm-256': 36,
  'aes-cbc-128': 16,
  'aes-cbc-256': 32,
  'hmac-sha256': 32, // RFC 4868: the key is as long as the hash
}

/** The names a key file must define for this block's algorithm. */
export function keyNames(p: {aead?: unknown}): string[] {
  return p.aead !== undefined ? ['out', 'in'] : ['out-enc', 'out-auth', 'in-enc', 'in-auth']
}

/** An SPI as written: an integer, or a string of decimal digits or 0x-hex. */
export function parseSpi(v: unknown): number | undefined {
  let n: number | undefined
  if (typeof v === 'number' && Number.isInteger(v)) n = v
  else if (typeof v === 'string' && /^0x[0-9a-fA-F]{1,8}$/.test(v)) n = parseInt(v.slice(2), 16)
  else if (typeof v === 'string' && /^[0-9]{1,10}$/.test(v)) n = Number(v)
  return n !== undefined && n >= SPI_MIN && n <= SPI_MAX ? n : undefined
}

export const hex32 = (n: number): string => '0x' + n.toString(16).padStart(8, '0')

const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v)
const fixed = (v: unknown): boolean => typeof v === 'string' && v !== 'any' && v !== '0.0.0.0'

/** Semantic checks of a vti entry's ipsec block (the schema already checked types and names). */
export function validateIpsec(spec: RawTunnelSpec): DriverDiagnostic[] {
  const out: DriverDiagnostic[] = []
  const b = spec.ipsec
  if (!isObject(b)) return out
  const d = (pointer: string, message: string) => out.push({pointer: '/ipsec' + pointer, message})
  for (const k of ['spi-out', 'spi-in'] as const) {
    if (b[k] !== undefined && parseSpi(b[k]) === undefined) d('/' + k, `${k} must be an SPI 0x100..0xffffffff (hex like 0x1001 or decimal); 0..0xff are reserved (RFC 4303)`)
  }
  if (b['spi-out'] !== undefined && b['spi-out'] === b['spi-in'] && spec.local === spec.remote) {
    d('/spi-in', 'spi-in equals spi-out on a tunnel whose local and remote are the same address')
  }
  if (b.aead !== undefined && (b.cipher !== undefined || b.auth !== undefined)) {
    d(b.cipher !== undefined ? '/cipher' : '/auth', 'use either aead or cipher + auth, not both')
  } else if (b.aead === undefined) {
    if (b.cipher === undefined && b.auth === undefined) d('', 'ipsec needs an algorithm: aead (aes-gcm-128, aes-gcm-256) or cipher (aes-cbc-128, aes-cbc-256) with auth (hmac-sha256)')
    else if (b.cipher === undefined) d('/auth', 'auth needs cipher (aes-cbc-128 or aes-cbc-256); for AES-GCM use aead alone')
    else if (b.auth === undefined) d('/cipher', 'cipher needs auth (hmac-sha256): ESP without integrity protection is not offered')
  }
  if (spec.state !== 'absent') {
    for (const k of ['local', 'remote'] as const) {
      if (!fixed(spec[k])) d('', `ipsec needs a fixed ${k} address (the SAs are keyed on local and remote; ${k} is ${spec[k] === undefined ? 'not set' : String(spec[k])})`)
    }
    const k = keysOf(spec)
    if (!k.ikey || !k.okey) {
      d('', 'ipsec needs a nonzero key (or input-key and output-key): the vti key is the mark that ties the SAs and policies to this tunnel; without one they would catch every packet of the host')
    }
  }
  return out
}

/** The spec's ipsec block (already valid) → IpsecParams with defaults. */
export function normalizeIpsec(b: Record<string, any>): IpsecParams {
  const p: IpsecParams = {spiOut: parseSpi(b['spi-out'])!, spiIn: parseSpi(b['spi-in'])!, replayWindow: b['replay-window'] ?? REPLAY_DEFAULT}
  if (b.aead !== undefined) p.aead = b.aead
  else {
    p.cipher = b.cipher
    p.auth = b.auth
  }
  p.keyFile = b['key-file']
  return p
}

/** `aes-gcm-128` / `aes-cbc-256+hmac-sha256` */
export function algorithmText(p: IpsecParams): string {
  return p.aead ?? `${p.cipher}+${p.auth}`
}

/** The SAs a tunnel's ipsec block asks for, by what the kernel keys SAs on: (destination, SPI). */
export function saIdentities(spec: RawTunnelSpec): Array<{dst: string; spi: number; pointer: string; dir: 'out' | 'in'}> {
  const b = spec.ipsec
  if (!isObject(b)) return []
  const out: Array<{dst: string; spi: number; pointer: string; dir: 'out' | 'in'}> = []
  const so = parseSpi(b['spi-out'])
  const si = parseSpi(b['spi-in'])
  if (so !== undefined && fixed(spec.remote)) out.push({dst: spec.remote, spi: so, pointer: '/ipsec/spi-out', dir: 'out'})
  if (si !== undefined && fixed(spec.local)) out.push({dst: spec.local, spi: si, pointer: '/ipsec/spi-in', dir: 'in'})
  return out
}
