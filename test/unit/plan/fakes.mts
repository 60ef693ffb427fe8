// Hand-made mode drivers and state builders for plan/execute unit tests (independent of src/drivers).
import type {ModeDriver} from '../../../src/drivers/contract.js'
import type {DesiredTunnel, Mode, ObservedState, ObservedTunnel, TunnelParams} from '../../../src/model/types.js'
import type {Drivers, ModeSupport} from '../../../src/plan/diff.js'

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
