// One rule for the inner families a tunnel carries: native/inner.h (what the userspace encapsulator lets through)
// is generated from innerFamilies() (src/net/addr.ts, what the spec accepts addresses and routes for).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {innerHeader} from '../../../src/net/inner-header.js'
import {innerFamilies} from '../../../src/net/addr.js'
import {addonAvailable, loadAddon, type NativeParams} from '../../../src/userspace/addon.js'
import type {InnerProto, Mode} from '../../../src/model/types.js'
import {icmp4, icmp6} from '../userspace/packets.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

test('native/inner.h is the header innerFamilies generates (regenerate: node --import tsx scripts/gen-inner-header.mts)', () => {
  assert.fixture(readFileSync(join(repo, 'native', 'inner.h'), 'utf8'), innerHeader())
})

const CASES: Array<[Mode, InnerProto | undefined]> = [
  ['ipip', undefined], ['ipip', 'ipip'], ['ipip', 'any'],
  ['gre', undefined],
  ['sit', undefined], ['sit', 'ip6ip'], ['sit', 'ipip'], ['sit', 'any'],
  ['isatap', 'ip6ip'],
]

const skip = addonAvailable() ? undefined : 'native addon not built (node scripts/build-native.mjs)'
;(skip ? test.skip : test)(`the encapsulator carries exactly the families the spec allows, per mode and inner protocol${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const a = loadAddon()
  for (const [mode, proto] of CASES) {
    const c: NativeParams = {mode, local: '198.51.100.1', remote: mode === 'isatap' ? 'any' : '198.51.100.2', ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, up: true, ...(proto ? {proto} : {})}
    const fams = innerFamilies(mode, proto).families
    const r4 = a.encapForTest(c, icmp4('10.0.0.1', '10.0.0.2')).reason
    const r6 = a.encapForTest(c, icmp6('2001:db8::1', '2001:db8::2')).reason
    assert.is(r4 === 'tx_inner_proto', !fams.includes(4), `${mode}/${proto ?? '-'} IPv4: ${r4}`)
    assert.is(r6 === 'tx_inner_proto', !fams.includes(6), `${mode}/${proto ?? '-'} IPv6: ${r6}`)
  }
})

test.run()
