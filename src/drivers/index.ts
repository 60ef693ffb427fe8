// The five kernel mode drivers by mode, and the spec keys every mode shares.
//
// Conventions shared with plan/ and execute/:
// - decode() always sets params.mtu to the link's actual mtu; normalize() sets it only when the spec does.
//   The planner compares mtu only when the desired params have it.
// - Fields a mode does not have are absent (not undefined-valued) on both sides, so params compare field by field.
// - ttl 0 = inherit, tos 1 = inherit (kernel convention); vti has neither.
// - decode(link, ctx) takes an optional DecodeContext: byIndex (ifindex → name) and prl (isatap routers by
//   tunnel name, read by observe from `ip tunnel show`, which is the only place the kernel reports them).
// - encodeUpdate emits the FULL parameter set of `to` (`ip link set … type KIND …`, never `ip tunnel change`);
//   iproute2 re-reads the existing link first, so flags it cannot clear (gre key/csum/seq, dev) are replace reasons.
import type {Mode, TunnelParams} from '../model/types.js'
import type {DecodeContext, IpLink, ModeDriver} from './contract.js'
import {COMMON_KEYS} from './common.js'
import {gre} from './gre.js'
import {ipip} from './ipip.js'
import {isatap} from './isatap.js'
import {sit} from './sit.js'
import {vti} from './vti.js'

export {COMMON_KEYS}
export type {DecodeContext}

export const DRIVERS: Record<Mode, ModeDriver> = {ipip, gre, sit, isatap, vti}

export function driverFor(mode: Mode): ModeDriver {
  const d = DRIVERS[mode]
  if (!d) throw new Error(`no driver for mode ${String(mode)}`)
  return d
}

/** Every key some mode accepts (for the schema / unknown-key checks). */
export const ALL_KEYS: readonly string[] = [...new Set([...COMMON_KEYS, ...Object.values(DRIVERS).flatMap((d) => d.keys)])]

/** Decode one `ip -j -d link show` element with whichever driver recognises it. */
export function decodeLink(link: IpLink, ctx?: DecodeContext): TunnelParams | undefined {
  for (const d of Object.values(DRIVERS)) {
    const p = d.decode(link, ctx)
    if (p) return p
  }
  return undefined
}
