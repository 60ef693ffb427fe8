// Pure: observed tunnels → a version-1 spec (YAML) that apply turns back into the same state, defaults left out.
import type {KeyFileRecord} from '../ipsec/record.js'
import {REPLAY_DEFAULT} from '../ipsec/spec.js'
import YAML from 'yaml'
import {DRIVERS} from '../drivers/index.js'
import type {ObservedTunnel, RouteSpec, TunnelParams} from '../model/types.js'
import {deepEqual} from './diff.js'
import {paramsToSpec} from '../model/fields.js'
import {innerFamilies} from '../net/addr.js'
import {defaultRouteFamily, effectiveMetric} from '../net/route.js'

/** Default mtu of a tunnel without an underlay device (1500 minus the outer headers; the userspace TUN device mimics it). */
export function defaultMtu(p: TunnelParams, _driver: string): number | undefined {
  if (p.dev) return undefined
  if (p.mode === 'gre') return 1500 - 20 - 4 - 4 * Number(Boolean(p.ocsum)) - 4 * Number(p.okey !== undefined) - 4 * Number(Boolean(p.oseq))
  return 1480
}

/** A route as a spec entry; `default` only where the spec reads it back as this route's family (else the prefix). */
function routeEntry(r: RouteSpec, t: ObservedTunnel): Record<string, unknown> {
  const family = r.to === '0.0.0.0/0' ? 4 : r.to === '::/0' ? 6 : undefined
  const via = r.via === undefined ? undefined : r.via.includes(':') ? 6 : 4
  const reads = family && defaultRouteFamily(via, innerFamilies(t.params.mode, t.params.proto).families, t.addresses)
  const e: Record<string, unknown> = {to: family && reads === family ? 'default' : r.to}
  if (r.via) e.via = r.via
  if (r.metric !== undefined && r.metric !== effectiveMetric({to: r.to})) e.metric = r.metric
  if (r.table !== 254) e.table = r.table
  return e
}

/** A spec entry for one observed tunnel with only the keys that differ from the defaults. */
/** A vti's ipsec block as spec keys: SPIs in hex, the algorithm, the replay window when not the default, and the
 * key file recorded at apply (else NAME.keys, to be provided: the keys themselves never leave the kernel). */
export function ipsecEntry(t: ObservedTunnel, keyFiles?: Map<string, KeyFileRecord>): Record<string, unknown> | undefined {
  const p = t.ipsec
  if (!p || !p.spiOut || !p.spiIn) return undefined
  const rec = keyFiles?.get(t.name)
  const e: Record<string, unknown> = {'spi-out': hex(p.spiOut), 'spi-in': hex(p.spiIn)}
  if (p.aead) e.aead = p.aead
  else Object.assign(e, {cipher: p.cipher, auth: p.auth})
  e['key-file'] = rec && rec.spiOut === p.spiOut && rec.spiIn === p.spiIn ? rec.keyFile : `${t.name}.keys`
  if (p.replayWindow !== REPLAY_DEFAULT) e['replay-window'] = p.replayWindow
  return e
}

const hex = (n: number) => '0x' + n.toString(16)

export function exportEntry(t: ObservedTunnel, keyFiles?: Map<string, KeyFileRecord>): Record<string, unknown> {
  const d = DRIVERS[t.params.mode]
  const allowed = new Set(['mode', 'state', 'local', 'remote', 'dev', 'fwmark', 'mtu', 'up', 'addresses', 'routes', 'driver', ...d.keys])
  const entry = Object.fromEntries(Object.entries(paramsToSpec(t.params)).filter(([k]) => allowed.has(k)))
  const norm = (e: Record<string, unknown>) => {
    try {
      return d.normalize(e)
    } catch {
      return undefined
    }
  }
  const target = norm(entry)
  if (target) {
    for (const k of Object.keys(entry)) {
      if (k === 'mode') continue
      const {[k]: _drop, ...rest} = entry
      if (deepEqual(norm(rest), target)) delete entry[k]
    }
  }
  if (t.params.mtu !== undefined && t.params.mtu !== defaultMtu(t.params, t.driver)) entry.mtu = t.params.mtu
  if (t.addresses.length) entry.addresses = t.addresses
  if (t.routes.length) entry.routes = t.routes.map((r) => routeEntry(r, t))
  if (t.driver === 'userspace') entry.driver = 'userspace'
  const ipsec = ipsecEntry(t, keyFiles)
  if (ipsec) entry.ipsec = ipsec
  return entry
}

/** The spec document itself (what --json prints; JSON is YAML, so apply reads it back too). */
export function exportDoc(tunnels: ObservedTunnel[], keyFiles?: Map<string, KeyFileRecord>): {version: 1; tunnels: Record<string, Record<string, unknown>>} {
  // a userspace tunnel whose record is lost (mode 'unknown') has nothing to export
  const known = tunnels.filter((t) => t.params.mode in DRIVERS)
  return {version: 1, tunnels: Object.fromEntries(known.map((t) => [t.name, exportEntry(t, keyFiles)]))}
}

export function exportSpec(tunnels: ObservedTunnel[], keyFiles?: Map<string, KeyFileRecord>): string {
  return YAML.stringify(exportDoc(tunnels, keyFiles))
}
