// Checks that need more than the schema: interface names, CIDRs, address families per mode, routes and tables,
// uniqueness across the file; then per-mode driver checks and normalisation into DesiredTunnel.
import type ipaddr from 'ipaddr.js'
import {minMtu, tunnelIdentity} from '../drivers/common.js'
import {type Family, addrText, familyName as famName, hostPrefix, innerFamilies, isSitV4Compat, networkOf, parseAddress, parseCidr} from '../net/addr.js'
import {endpointOrText} from '../net/endpoint.js'
import {FALLBACK_DEVICES, fallbackOf, isFallbackDevice} from '../net/fallback.js'
import {greInputKey} from '../drivers/gre.js'
import {compareRoutes, defaultRouteFamily, effectiveMetric, routeKey} from '../net/route.js'
import type {ModeDriver, RawTunnelSpec} from '../drivers/contract.js'
import {MODES, type DesiredTunnel, type DriverChoice, type Mode, type RouteSpec} from '../model/types.js'
import {interfaceNameProblem} from '../lib/names.js'
import {visible} from '../lib/text.js'
import {BUILTIN_TABLES, hostRtTables, readRtTables} from '../lib/rttables.js'
import {joinPointer, splitPointer} from './pointer.js'
import type {RawDiagnostic} from './schema.js'
import {hex32, normalizeIpsec, saIdentities} from '../ipsec/spec.js'

export interface SemanticOptions {
  drivers: Record<Mode, ModeDriver>
  /** routing table names → numbers; default: main/local/default plus /etc/iproute2/rt_tables (+ rt_tables.d) */
  rtTables?: Map<string, number>
}

export {IFNAMSIZ_MAX, interfaceNameProblem} from '../lib/names.js'

// ---------- routing tables ----------

export {BUILTIN_TABLES, RT_TABLES_FILES, parseRtTables} from '../lib/rttables.js'
/** main/local/default plus the names in the host's rt_tables files (the same reading observe uses). */
export const defaultRtTables = (files?: string[]): Map<string, number> => (files ? readRtTables(files) : hostRtTables())

// ---------- the checks ----------

const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v)

interface RouteCheck {
  route: RouteSpec
  index: number
}

/**
 * Common semantic checks over the whole (parsed) document. A tunnel with schema errors is still checked
 * (by its driver too) without the keys the schema rejected, so all errors are reported at once; it is never
 * normalised.
 */
export function checkTunnels(
  data: unknown,
  schemaDiags: RawDiagnostic[],
  opts: SemanticOptions,
): {diagnostics: RawDiagnostic[]; tunnels: DesiredTunnel[]} {
  const diags: RawDiagnostic[] = []
  const tunnels: DesiredTunnel[] = []
  if (!isObject(data) || !isObject(data.tunnels)) return {diagnostics: diags, tunnels}
  const rtTables = new Map([...(opts.rtTables ?? defaultRtTables()), ...BUILTIN_TABLES])

  const identities = new Map<string, {name: string; mode: Mode}>() // identity → first tunnel
  const addressOwner = new Map<string, {tunnel: string; text: string}>() // address → first tunnel
  const routeOwner = new Map<string, string>() // table|to|metric → first tunnel
  const saOwner = new Map<string, string>() // dst|spi of an ipsec SA → first tunnel

  for (const name of Object.keys(data.tunnels)) {
    const ptr = joinPointer('tunnels', name)
    const entry = data.tunnels[name]
    const before = diags.length
    const push = (rel: string, message: string, target: RawDiagnostic['target'] = 'value') =>
      diags.push({pointer: ptr + rel, message: `tunnel "${visible(name)}": ${message}`, target})

    const nameProblem = interfaceNameProblem(name, 'tunnel name')
    if (nameProblem) diags.push({pointer: ptr, target: 'key', message: nameProblem})
    else if (isFallbackDevice(name)) {
      diags.push({pointer: ptr, target: 'key', message: `tunnel name "${name}" is reserved: the kernel's ${FALLBACK_DEVICES[name]!.module} module creates it as its fallback device`})
    }
    if (!isObject(entry)) continue
    // the entry's keys the schema rejected (the tunnel schema has no combinators: each error names a key or deeper)
    const badKeys = new Set(
      schemaDiags.length === 0 ? [] : schemaDiags.filter((d) => d.pointer === ptr || d.pointer.startsWith(ptr + '/')).map((d) => splitPointer(d.pointer)[2] ?? ''),
    )
    const schemaBad = badKeys.size > 0
    // what the driver and identity checks see: the entry without those keys, so every other error is still reported
    const valid: Record<string, any> = schemaBad ? Object.fromEntries(Object.entries(entry).filter(([k]) => !badKeys.has(k))) : entry
    const mode: Mode | undefined = (MODES as readonly string[]).includes(valid.mode) ? valid.mode : undefined
    const present = entry.state !== 'absent'

    if (typeof entry.dev === 'string' && entry.dev !== '') {
      const p = interfaceNameProblem(entry.dev, 'dev')
      if (p) push('/dev', p)
      else if (entry.dev === name) push('/dev', `dev "${entry.dev}" is the tunnel itself; dev names the underlay device`)
    }

    const fam = mode ? innerFamilies(mode, entry.encapsulated) : undefined

    // addresses
    const addresses: string[] = []
    const prefixRoutes = new Map<string, string>() // key of the route the kernel makes for an address → the address
    const seenHere = new Map<string, number>()
    if (Array.isArray(entry.addresses)) {
      entry.addresses.forEach((a: unknown, i: number) => {
        if (typeof a !== 'string') return // schema reported it
        const c = parseCidr(a, false)
        const rel = `/addresses/${i}`
        if (!c) {
          const bare = parseCidr(a, true)
          if (bare) return push(rel, `address "${a}" needs a prefix length (e.g. ${bare.text})`)
          return push(rel, `address "${a}" is not a valid IPv4 or IPv6 address with prefix length (CIDR)`)
        }
        if (fam && !fam.families.includes(c.family)) return push(rel, `${famName(c.family)} address ${c.text} cannot be used: ${fam.why}`)
        if ((mode === 'sit' || mode === 'isatap') && c.family === 6 && isSitV4Compat(c.addr as ipaddr.IPv6, c.prefix)) {
          return push(rel, `${c.text} is an IPv4-compatible address: the kernel adds those to sit devices itself (for remote any), so tunctl does not manage them`)
        }
        if (seenHere.has(c.address)) return push(rel, `address ${c.address} is listed twice`)
        seenHere.set(c.address, i)
        addresses.push(c.text)
        // the kernel adds a prefix route for it (not for a host address): main table, metric 0 (IPv4) / 256 (IPv6)
        if (c.prefix < hostPrefix(c.family)) prefixRoutes.set(routeKey({table: 254, to: networkOf(c), metric: c.family === 4 ? 0 : 256}), c.text)
        if (present) {
          const other = addressOwner.get(c.address)
          if (other) push(rel, `address ${c.address} is also assigned to tunnel "${other.tunnel}"`)
          else addressOwner.set(c.address, {tunnel: name, text: c.text})
        }
      })
    }

    // routes
    const routes: RouteCheck[] = []
    if (Array.isArray(entry.routes)) {
      entry.routes.forEach((r: unknown, i: number) => {
        if (!isObject(r)) return
        const rel = `/routes/${i}`
        let ok = true
        let family: Family | undefined
        let to: string | undefined
        const via = r.via === undefined ? undefined : parseAddress(r.via)
        if (r.via !== undefined && typeof r.via === 'string' && !via) {
          push(rel + '/via', `via "${r.via}" is not an IP address`)
          ok = false
        }
        if (r.to === 'default') {
          family = defaultRouteFamily(via?.family, fam?.families ?? [], addresses)
          if (!family) {
            push(rel + '/to', 'cannot tell whether "default" means 0.0.0.0/0 or ::/0; add "via" or write the prefix')
            ok = false
          } else to = family === 4 ? '0.0.0.0/0' : '::/0'
        } else if (typeof r.to === 'string') {
          const c = parseCidr(r.to, false)
          const bare = c ? undefined : parseCidr(r.to, true)
          if (bare) {
            push(rel + '/to', `route destination "${r.to}" needs a prefix length (e.g. ${bare.text})`)
            ok = false
          } else if (!c) {
            push(rel + '/to', `route destination "${r.to}" is not a CIDR prefix or "default"`)
            ok = false
          } else {
            family = c.family
            const net = networkOf(c)
            if (net !== c.text) {
              push(rel + '/to', `route destination ${c.text} has host bits set (did you mean ${net}?)`)
              ok = false
            }
            to = net
          }
        } else ok = false
        if (family && fam && !fam.families.includes(family)) {
          push(rel + '/to', `${famName(family)} route to ${to ?? r.to} cannot be used: ${fam.why}`)
          ok = false
        } else if (family && via && via.family !== family) {
          push(rel + '/via', `via ${addrText(via.addr)} is ${famName(via.family)} but the route to ${to} is ${famName(family)}`)
          ok = false
        }
        let table = 254
        if (typeof r.table === 'number') table = r.table
        else if (typeof r.table === 'string') {
          const t = /^\d+$/.test(r.table) ? Number(r.table) : rtTables.get(r.table)
          if (t === undefined) {
            const builtin = BUILTIN_TABLES.map(([k]) => k)
            const others = [...rtTables].filter(([k, v]) => v > 0 && !builtin.includes(k)).map(([k]) => k).sort()
            const known = [...builtin, ...others]
            push(rel + '/table', `unknown routing table "${r.table}" (known: ${known.join(', ')}; or use a number 1..4294967295)`)
            ok = false
          } else if (t < 1 || t > 0xffffffff) {
            push(rel + '/table', `table must be 1..4294967295`)
            ok = false
          } else table = t
        }
        if (!ok || !to) return
        const route: RouteSpec = {to, table}
        if (via) route.via = addrText(via.addr)
        // as the kernel stores it (IPv6 metric 0 is 1024), so the plan and the verification compare like with like
        if (typeof r.metric === 'number') route.metric = effectiveMetric({to, metric: r.metric})
        const metric = effectiveMetric(route)
        const rkey = routeKey(route)
        const dup = routes.find((x) => routeKey(x.route) === rkey)
        if (dup) return push(rel, `route to ${to} (table ${table}, metric ${metric}) is listed twice`)
        const connected = prefixRoutes.get(rkey)
        if (connected) {
          // `route add` would find the kernel's own route there (tunctl never replaces a route it did not make)
          return push(rel, `route to ${to} (table main, metric ${metric}) is the prefix route the kernel adds for address ${connected}; leave it out, or give it another metric`)
        }
        if (present) {
          const other = routeOwner.get(rkey)
          if (other) push(rel, `route to ${to} (table ${table}, metric ${metric}) is also defined in tunnel "${other}"; the kernel keeps one`)
          else routeOwner.set(rkey, name)
        }
        routes.push({route, index: i})
      })
    }

    if (present && entry.up === false && Array.isArray(entry.routes) && entry.routes.length > 0) {
      // measured: `ip route add` on a down device fails ("Nexthop device is not up", ENETDOWN; IPv4 and IPv6),
      // and a device going down loses its routes
      push('/routes', 'routes need the tunnel up: the kernel refuses a route on a down device and removes a device\'s routes when it goes down; drop "up: false" or the routes', 'key')
    }

    // IPv6 on the device needs mtu >= IPV6_MIN_MTU in every mode (a mode's own minimum is its driver's check, so a
    // sit mtu below it is one error, not two)
    if (mode && present && Number.isInteger(entry.mtu) && entry.mtu >= minMtu(mode) && entry.mtu < minMtu(mode, true)) {
      const v6addr = addresses.find((a) => a.includes(':'))
      const v6route = routes.find((r) => r.route.to.includes(':'))
      const what = v6addr ? `IPv6 address ${v6addr}` : v6route ? `an IPv6 route (to ${v6route.route.to})` : undefined
      if (what) {
        push('/mtu', `mtu ${entry.mtu} is below ${minMtu(mode, true)}, IPv6's minimum: the kernel refuses IPv6 addresses and routes on such a device, and this tunnel has ${what}; use mtu ${minMtu(mode, true)} or more, or no IPv6`)
      }
    }

    // per-mode rules: the driver, pointers relative to the entry (it checks what the checks above do not: each
    // rule is checked in one place, so one mistake is one error)
    if (mode) {
      const driver = opts.drivers[mode]
      for (const d of driver.validate(valid as RawTunnelSpec)) {
        const p = ptr + (d.pointer === '' || d.pointer.startsWith('/') ? d.pointer : '/' + d.pointer)
        diags.push({pointer: p, message: withTunnel(d.message, name), target: targetFor(d.pointer)})
      }
    }

    // identity: (kind, local, remote, dev, key) must be unique; any/any/no dev/no key is the fallback device's.
    // Measured in UML (6.1): `ip link add` answers "File exists" for ipip/gre/sit/vti with local and remote
    // any and no dev (gre: and no key), for isatap with local any (sit0), for a sit after an isatap with the
    // same local, and for two vti with the same endpoints whatever their keys; gre key 0 ≠ no key, and gre
    // matches on the input key only.
    const identityValid = !['local', 'remote', 'dev', 'key', 'input-key', 'driver', ''].some((k) => badKeys.has(k))
    if (mode && present && identityValid && !nameProblem && !isFallbackDevice(name)) {
      const kind = mode === 'isatap' ? 'sit' : mode
      const local = endpointOrText(entry.local ?? 'any')
      const remote = endpointOrText(entry.remote ?? 'any')
      const dev = entry.dev ?? ''
      const ikey = mode === 'gre' ? greInputKey(entry) : undefined
      const id = tunnelIdentity(mode, local, remote, dev, ikey)
      const first = identities.get(id)
      const other = first?.name
      if (first) {
        // say what the kernel compares: gre adds the input key; a vti key is a mark; isatap is a sit device
        const fields = mode === 'gre' ? 'local, remote, dev and input key' : 'local, remote and dev'
        const same = first.mode === mode ? `the same mode (${mode}), ${fields}` : `the same ${fields}`
        const note =
          mode === 'vti' ? ' (a vti key only marks packets; it does not tell tunnels apart)'
          : first.mode !== mode ? ` (${first.mode} and ${mode} are both sit devices)`
          : ''
        diags.push({
          pointer: ptr,
          target: 'key',
          message: `tunnel "${name}" has ${same} as tunnel "${other}"${note}; the kernel cannot tell them apart`,
        })
      } else identities.set(id, {name, mode})
      if (!other && entry.driver !== 'userspace' && local === 'any' && remote === 'any' && !dev && ikey === undefined) {
        const fb = fallbackOf(kind).name
        diags.push({
          pointer: ptr,
          target: 'key',
          message: `tunnel "${name}" has local any, remote any, no dev and no key: that is the kernel's fallback device ${fb}, so it cannot be created; set ${mode === 'gre' ? 'local, remote, key or dev' : mode === 'isatap' ? 'local or dev' : 'local, remote or dev'}`,
        })
      }
    }

    // ipsec SAs: the kernel keys an SA on (destination, SPI); the inbound SA's destination is local, the outbound's remote
    if (mode === 'vti' && present && !badKeys.has('ipsec')) {
      for (const sa of saIdentities(entry)) {
        const k = `${sa.dst}|${sa.spi}`
        const other = saOwner.get(k)
        if (other) push(sa.pointer, `SPI ${hex32(sa.spi)} towards ${sa.dst} is also used by an SA of tunnel "${visible(other)}"; the kernel keys SAs on (destination, SPI)`)
        else saOwner.set(k, name)
      }
    }

    if (mode && !schemaBad && diags.length === before) {
      const driver = opts.drivers[mode]
      const params = driver.normalize(entry as RawTunnelSpec)
      routes.sort((a, b) => compareRoutes(a.route, b.route))
      tunnels.push({
        name,
        state: present ? 'present' : 'absent',
        params,
        addresses: [...addresses].sort(),
        routes: routes.map((r) => r.route),
        routePointers: routes.map((r) => `${ptr}/routes/${r.index}`),
        driver: (entry.driver ?? 'auto') as DriverChoice,
        pointer: ptr,
        ...(mode === 'vti' && isObject(entry.ipsec) ? {ipsec: normalizeIpsec(entry.ipsec)} : {}),
      })
    }
  }
  return {diagnostics: diags, tunnels}
}

function withTunnel(message: string, name: string): string {
  return message.startsWith(`tunnel "${name}"`) ? message : `tunnel "${visible(name)}": ${message}`
}

/** A driver diagnostic on the entry itself names the tunnel's key; anything deeper names the value. */
function targetFor(rel: string): RawDiagnostic['target'] {
  // a problem of the whole ipsec block (or the block on a mode without one) is shown at its key, not at its first line
  return rel === '' || rel === '/ipsec' ? 'key' : 'value'
}
