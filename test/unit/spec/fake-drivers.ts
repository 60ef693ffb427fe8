// Minimal mode drivers for spec tests that must not depend on the real drivers' rules.
import type {ModeDriver, RawTunnelSpec} from '../../../src/drivers/contract.js'
import {MODES, type Mode, type TunnelParams} from '../../../src/model/types.js'

export function fakeDriver(mode: Mode, validate: (s: RawTunnelSpec) => {pointer: string; message: string}[] = () => []): ModeDriver {
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
  return Object.fromEntries(MODES.map((m) => [m, fakeDriver(m, validate)])) as Record<Mode, ModeDriver>
}
