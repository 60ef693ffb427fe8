// Tunnel endpoints (local, remote): 'any' or an IPv4 dotted quad; 0.0.0.0 is 'any' (the kernel cannot tell them apart).
import ipaddr from 'ipaddr.js'
import {isIPv4} from './addr.js'

export function isEndpoint(v: unknown): boolean {
  return v === undefined || v === 'any' || isIPv4(v)
}

/** The canonical endpoint ('any' or a dotted quad); throws on anything else (validate reports it first). */
export function endpoint(v: unknown): string {
  if (v === undefined || v === null || v === 'any' || v === '0.0.0.0') return 'any'
  // a strict dotted quad (no leading zeros) is its own canonical text: no parse (a spec's tunnels ask 4 times each)
  if (isIPv4(v)) return v
  return ipaddr.IPv4.parse(String(v)).toString()
}

/** The canonical endpoint, or the text as written when it is not one (for comparisons next to a reported error). */
export function endpointOrText(v: unknown): string {
  return isEndpoint(v) || v === null ? endpoint(v) : String(v)
}
