// The test fakes, in one place: hand-made mode drivers and state builders for plan/execute unit tests (independent
// of src/drivers), minimal drivers for spec tests, and FakeSystem, an in-memory "kernel" for the executor.
import type {ModeDriver, RawTunnelSpec} from '../../src/drivers/contract.js'
import {MODES, type DesiredTunnel, type Mode, type ObservedState, type ObservedTunnel, type TunnelParams} from '../../src/model/types.js'
import type {Drivers, ModeSupport} from '../../src/plan/diff.js'

import {CommandError} from '../../src/lib/errors.js'
import type {System} from '../../src/execute/run.js'
const KIND: Record<Mode, string> = {ipip: 'ipip', gre: 'gre', sit: 'sit', isatap: 'sit', vti: 'vti'}

function fakeDriver(mode: Mode): ModeDriver {
  return {
    mode,
    kind: KIND[mode],
    modules: [],
    fallbackDevice: '',
    keys: [],
    validate: () => [],
    normalize: (s) => s as TunnelParams,
    replaceReason(from, to) {
      if ((from.remote === 'any') !== (to.remote === 'any')) return 'remote any ↔ address cannot change in place'
      if (from.proto !== to.proto) return 'inner protocol cannot change in place'
      return undefined
    },
    encodeCreate(name, p) {
      const l = ['link', 'add', name, 'type', KIND[mode], 'local', p.local, 'remote', p.remote]
      if (p.ttl !== undefined) l.push('ttl', String(p.ttl))
      if (p.ikey !== undefined) l.push('ikey', String(p.ikey), 'okey', String(p.okey))
      if (p.mtu !== undefined) return [l, ['link', 'set', 'dev', name, 'mtu', String(p.mtu)]]
      return [l]
    },
    encodeUpdate(name, from, to) {
      const l = ['link', 'set', 'dev', name, 'type', KIND[mode]]
      for (const k of ['local', 'remote', 'ttl', 'ikey', 'okey'] as const) if (from[k] !== to[k]) l.push(k, String(to[k]))
      const out = l.length > 6 ? [l] : []
      if (from.mtu !== to.mtu && to.mtu !== undefined) out.push(['link', 'set', 'dev', name, 'mtu', String(to.mtu)])
      return out
    },
    decode: () => undefined,
  }
}

export const FAKE_DRIVERS: Drivers = {
  ipip: fakeDriver('ipip'),
  gre: fakeDriver('gre'),
  sit: fakeDriver('sit'),
  isatap: fakeDriver('isatap'),
  vti: fakeDriver('vti'),
}

export const ALL_KERNEL: Record<Mode, ModeSupport> = {
  ipip: {kernel: true, userspace: true, reason: 'module ipip loaded'},
  gre: {kernel: true, userspace: true, reason: 'module ip_gre loaded'},
  sit: {kernel: true, userspace: true, reason: 'module sit loaded'},
  isatap: {kernel: true, userspace: false, reason: 'module sit loaded'},
  vti: {kernel: true, userspace: false, reason: 'module ip_vti loaded'},
}

export function params(mode: Mode, extra: Partial<TunnelParams> = {}): TunnelParams {
  const base: TunnelParams = {mode, local: '192.0.2.1', remote: '198.51.100.7', fwmark: 0, up: true}
  if (mode !== 'vti') Object.assign(base, {ttl: 0, tos: 1, pmtudisc: true})
  if (mode === 'gre') Object.assign(base, {ignoreDf: false, icsum: false, ocsum: false, iseq: false, oseq: false})
  if (mode === 'ipip') base.proto = 'ipip'
  if (mode === 'sit') base.proto = 'ip6ip'
  return {...base, ...extra}
}

export function desired(name: string, mode: Mode, extra: Partial<DesiredTunnel> & {p?: Partial<TunnelParams>} = {}): DesiredTunnel {
  const {p, ...rest} = extra
  return {name, state: 'present', params: params(mode, p), addresses: [], routes: [], driver: 'auto', pointer: `/tunnels/${name}`, ...rest}
}

export function observed(name: string, mode: Mode, extra: Partial<ObservedTunnel> & {p?: Partial<TunnelParams>} = {}): ObservedTunnel {
  const {p, ...rest} = extra
  return {
    name,
    ifindex: 10,
    driver: 'kernel',
    params: params(mode, {mtu: 1476, ...p}),
    addresses: [],
    routes: [],
    owned: true,
    operstate: 'UNKNOWN',
    ...rest,
  }
}

export function state(tunnels: ObservedTunnel[], others: Record<string, string> = {}): ObservedState {
  const kinds: Record<string, string> = {lo: 'loopback', ...others}
  for (const t of tunnels) kinds[t.name] = t.driver === 'userspace' ? 'tun' : KIND[t.params.mode]
  return {tunnels, links: Object.keys(kinds), kinds}
}

// ---------- minimal drivers for spec tests (no rules of the real drivers) ----------

export function fakeSpecDriver(mode: Mode, validate: (s: RawTunnelSpec) => {pointer: string; message: string}[] = () => []): ModeDriver {
  return {
    mode,
    kind: mode === 'isatap' ? 'sit' : mode,
    modules: [],
    fallbackDevice: '',
    keys: [],
    validate,
    normalize(s: RawTunnelSpec): TunnelParams {
      return {mode, local: s.local ?? 'any', remote: s.remote ?? 'any', fwmark: s.fwmark ?? 0, up: s.up ?? true}
    },
    replaceReason: () => undefined,
    encodeCreate: () => [],
    encodeUpdate: () => [],
    decode: () => undefined,
  }
}

export function fakeDrivers(validate?: (s: RawTunnelSpec) => {pointer: string; message: string}[]): Record<Mode, ModeDriver> {
  return Object.fromEntries(MODES.map((m) => [m, fakeSpecDriver(m, validate)])) as Record<Mode, ModeDriver>
}

// ---------- FakeSystem: an in-memory "kernel" interpreting the fake drivers' ip lines, failing like ip -batch ----------

const MODE_OF: Record<string, Mode> = {ipip: 'ipip', gre: 'gre', sit: 'sit', vti: 'vti'}

export class FakeSystem implements System {
  tunnels = new Map<string, ObservedTunnel>()
  others: Record<string, string> = {lo: 'loopback'}
  batches: string[][][] = []
  log: string[] = []
  /** make the kernel silently ignore changes of this field (to provoke a verify error) */
  ignoreField?: keyof TunnelParams
  /** fail any line matching this regexp (e.g. during rollback) */
  failLine?: RegExp
  /** accept lines matching this regexp without doing anything (a kernel that ignores a change: verify fails) */
  ignoreLine?: RegExp
  startFails = false
  /** like the real observe: a userspace TUN device without the ownership alias is no tunnel (only a 'tun' link) */
  hideUnownedTun = false
  nextIndex = 100
  /** links' groups set by `link set dev X group G` (absent: ip's "default") */
  groups = new Map<string, string>()
  /** present after withGroups(): the real system's link groups (many userspace deletions become one group deletion) */
  linkGroups?: () => Promise<Map<string, string>>

  withGroups(groups: Record<string, string> = {}): this {
    for (const [n, g] of Object.entries(groups)) this.groups.set(n, g)
    this.linkGroups = async () => new Map([...Object.keys(this.others), ...this.tunnels.keys()].map((n) => [n, this.groups.get(n) ?? 'default']))
    return this
  }

  constructor(initial: ObservedTunnel[] = []) {
    for (const t of initial) this.tunnels.set(t.name, structuredClone(t))
  }

  /** the routes option of every observe call, in order */
  observeRoutes: Array<boolean | undefined> = []

  async observe(opts: {routes?: boolean} = {}): Promise<ObservedState> {
    this.observeRoutes.push(opts.routes)
    const all = [...this.tunnels.values()].map((t) => structuredClone(t)).sort((a, b) => a.name.localeCompare(b.name))
    if (opts.routes === false) for (const t of all) t.routes = [] // like observe() skipping the route dump
    const kinds: Record<string, string> = {...this.others}
    for (const t of all) kinds[t.name] = t.driver === 'userspace' ? 'tun' : t.params.mode
    const tunnels = this.hideUnownedTun ? all.filter((t) => t.driver !== 'userspace' || t.owned) : all
    return {tunnels, links: Object.keys(kinds), kinds}
  }

  async ip(args: string[]): Promise<void> {
    this.log.push('ip ' + args.join(' '))
    this.apply(args)
  }

  async ipBatch(lines: string[][]): Promise<void> {
    this.batches.push(lines)
    lines.forEach((l, i) => {
      try {
        if (this.failLine?.test(l.join(' '))) throw new Error('RTNETLINK answers: Invalid argument')
        if (!this.ignoreLine?.test(l.join(' '))) this.apply(l)
      } catch (e: any) {
        throw new CommandError(`ip ${l.join(' ')}: ${e.message}`, ['ip', ...l], `${e.message}\nCommand failed -:${i + 1}`, i + 1)
      }
    })
  }

  async startEncap(name: string, p: TunnelParams, _ipsec?: unknown, device?: {addresses: string[]; up: boolean}): Promise<void> {
    this.log.push(`start ${name}`)
    if (this.startFails) throw new Error('encapsulator did not start')
    const t = this.tunnels.get(name)
    if (t && t.driver !== 'userspace') throw new Error(`${name} exists`)
    if (t) {
      t.alive = true
      t.params = {...p, mtu: t.params.mtu, up: t.params.up}
    } else {
      // like the engine: the device it makes has the mark and the MTU, and a create's addresses and up state
      const up = device?.up ?? false
      this.tunnels.set(name, {name, ifindex: this.nextIndex++, driver: 'userspace', params: {...p, mtu: p.mtu ?? 1500, up}, addresses: [...(device?.addresses ?? [])].sort(), routes: [], owned: true, operstate: up ? 'UNKNOWN' : 'DOWN', pid: 4242, alive: true})
    }
  }

  async stopEncap(name: string): Promise<void> {
    this.log.push(`stop ${name}`)
    // like control.ts: the TUN device goes with its encapsulator (whatever link has the name, if state exists)
    this.tunnels.delete(name)
    this.groups.delete(name)
  }

  async forgetEncap(name: string): Promise<void> {
    this.log.push(`forget ${name}`)
  }

  private get(name: string): ObservedTunnel {
    const t = this.tunnels.get(name)
    if (!t) throw new Error(`Cannot find device "${name}"`)
    return t
  }

  private apply(l: string[]) {
    const [obj, verb] = l
    if (obj === 'link' && verb === 'add') {
      const name = l[2]!
      if (this.tunnels.has(name) || name in this.others) throw new Error('File exists')
      const kv = (k: string) => {
        const i = l.indexOf(k)
        return i > 0 ? l[i + 1] : undefined
      }
      const mode = MODE_OF[kv('type')!]!
      const p = params(mode, {local: kv('local')!, remote: kv('remote')!, mtu: mode === 'gre' ? 1476 : 1480, up: false})
      if (kv('ttl')) p.ttl = Number(kv('ttl'))
      if (kv('ikey')) Object.assign(p, {ikey: Number(kv('ikey')), okey: Number(kv('okey'))})
      this.tunnels.set(name, {name, ifindex: this.nextIndex++, driver: 'kernel', params: p, addresses: [], routes: [], owned: false, operstate: 'DOWN'})
      return
    }
    if (obj === 'link' && verb === 'del' && l[2] === 'group') {
      // like the kernel (rtnl_group_dellink): every link of the group at once; none in it → ENODEV
      const names = [...this.groups].filter(([, g]) => g === l[3]).map(([n]) => n)
      if (!names.length) throw new Error('No such device')
      for (const n of names) {
        this.tunnels.delete(n)
        delete this.others[n]
        this.groups.delete(n)
      }
      return
    }
    if (obj === 'link' && verb === 'del') {
      this.get(l[3]!)
      this.tunnels.delete(l[3]!)
      this.groups.delete(l[3]!)
      return
    }
    if (obj === 'link' && verb === 'set') {
      const t = this.get(l[3]!)
      const rest = l.slice(4)
      if (rest[0] === 'alias') t.owned = rest[1] === 'tunctl'
      else if (rest[0] === 'up') t.params.up = true
      else if (rest[0] === 'down') {
        t.params.up = false
        t.routes = []
      } else if (rest[0] === 'mtu') t.params.mtu = Number(rest[1])
      else if (rest[0] === 'group') this.groups.set(l[3]!, rest[1]!)
      else if (rest[0] === 'type') {
        for (let i = 2; i < rest.length; i += 2) {
          const k = rest[i] as keyof TunnelParams
          if (k === this.ignoreField) continue
          ;(t.params as any)[k] = /^\d+$/.test(rest[i + 1]!) ? Number(rest[i + 1]) : rest[i + 1]
        }
      } else throw new Error('unknown link set ' + rest.join(' '))
      return
    }
    if (obj === 'addr') {
      const t = this.get(l[4]!)
      if (verb === 'add') {
        if (t.addresses.includes(l[2]!)) throw new Error('Address already assigned')
        t.addresses = [...t.addresses, l[2]!].sort()
      } else {
        if (!t.addresses.includes(l[2]!)) throw new Error('Cannot assign requested address')
        t.addresses = t.addresses.filter((a) => a !== l[2])
      }
      return
    }
    if (obj === 'route') {
      const t = this.get(l[4]!)
      const kv = (k: string) => {
        const i = l.indexOf(k)
        return i > 0 ? l[i + 1] : undefined
      }
      const r = {to: l[2]!, via: kv('via'), metric: kv('metric') ? Number(kv('metric')) : undefined, table: Number(kv('table'))}
      if (!r.via) delete r.via
      if (r.metric === undefined) delete r.metric
      if (verb === 'add') {
        // like the kernel: a route with the same (table, prefix, metric) on any device → EEXIST
        if (!t.params.up) throw new Error('Network is down')
        const key = (x: {to: string; table: number; metric?: number}) => `${x.table}|${x.to}|${x.metric ?? 0}`
        for (const o of this.tunnels.values()) if (o.routes.some((x) => key(x) === key(r))) throw new Error('File exists')
        t.routes = [...t.routes, r]
      } else if (verb === 'replace') {
        throw new Error('tunctl must not use route replace')
      } else {
        const n = t.routes.length
        t.routes = t.routes.filter((x) => !(x.to === r.to && x.table === r.table && x.via === r.via && x.metric === r.metric))
        if (t.routes.length === n) throw new Error('No such process')
      }
      return
    }
    throw new Error('unknown line ' + l.join(' '))
  }
}
