// A kernel vti whose outbound ESP SA is spent (oseq 2^32 - 1; tunctl's SAs have no ESN, the kernel never wraps,
// xfrm_replay_overflow): `show` says so next to the ESP counters (text and --json ipsec.counters.out.exhausted),
// read from `ip -s xfrm state`; plan has nothing to do (only new keys fix it); new keys replace the SA (oseq 0).
// The spent SA is tunctl's own, added again by hand with `replay-oseq` (no way to send 2^32 packets here).
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {chmodSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {A_ADDR, B_ADDR, makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml, ipn} from './lib/sh.js'
import {yaml} from './lib/spec.js'
import {json, SCRATCH, shownTunnels, specFile, tunctlOk} from './lib/tunctl.js'

const hex = (n: number, seed: number) => Array.from({length: n}, (_, i) => ((i * 29 + seed * 83 + 5) & 0xff).toString(16).padStart(2, '0')).join('')
const s = suite<{pair?: Pair}>('kernel vti: an exhausted outbound SA is reported by show', {})
s.after((st) => removePair(st.pair))

s('oseq 0xffffffff: show --json exhausted, the text says SA exhausted, plan no changes; new keys: exhausted false again', (st) => {
  assertInUml()
  st.pair = makePair('vtiexh')
  const {a} = st.pair
  const dir = join(SCRATCH, `exh-${process.pid}`)
  mkdirSync(dir, {recursive: true})
  const keys = (seed: number) => {
    const p = join(dir, 'a.keys')
    writeFileSync(p, `out: 0x${hex(20, seed)}\nin: 0x${hex(20, seed + 1)}\n`)
    chmodSync(p, 0o600)
    return p
  }
  const spec = (k: string) => specFile('exh-a', yaml({version: 1, tunnels: {vti1: {mode: 'vti', local: A_ADDR, remote: B_ADDR, key: 7, ipsec: {'spi-out': '0x1001', 'spi-in': '0x1002', aead: 'aes-gcm-128', 'key-file': k}}}}))
  const fa = spec(keys(1))
  tunctlOk(['apply', '--netns', a, fa])
  const out = () => shownTunnels(json(tunctlOk(['show', '--json', '--netns', a]))).vti1.ipsec.counters.out
  assert.is(out().exhausted, false, 'a fresh SA')
  // the same SA, spent: tunctl's out SA added again with its last sequence number at 2^32 - 1
  const list = ipn(a, '-s', 'xfrm', 'state', 'list')
  assert.match(list, /oseq 0x0/, list)
  ipn(a, 'xfrm', 'state', 'delete', 'src', A_ADDR, 'dst', B_ADDR, 'proto', 'esp', 'spi', '0x1001', 'mark', '7', 'mask', '0xffffffff')
  const reqid = /proto esp spi 0x00001001\(\d+\) reqid (\d+)/.exec(list)![1]!
  ipn(a, 'xfrm', 'state', 'add', 'src', A_ADDR, 'dst', B_ADDR, 'proto', 'esp', 'spi', '0x1001', 'reqid', reqid, 'mode', 'tunnel',
    'mark', '7', 'mask', '0xffffffff', 'replay-window', '128', 'replay-oseq', '0xffffffff', 'aead', 'rfc4106(gcm(aes))', `0x${hex(20, 1)}`, '128')
  assert.match(ipn(a, '-s', 'xfrm', 'state', 'list'), /oseq 0xffffffff/)
  assert.is(out().exhausted, true, 'spent')
  const text = tunctlOk(['show', '--netns', a, 'vti1']).stdout
  assert.match(text, /esp out: +\d+ packets, \d+ bytes, SA exhausted \(2\^32 - 1 sent, sends nothing more: new spi-out or keys needed\)/, text)
  assert.match(tunctlOk(['plan', '--netns', a, fa]).stdout, /No changes/, 'not a plan problem')
  // the remedy: new keys → the SA is replaced, its sequence number starts again
  spec(keys(5))
  tunctlOk(['apply', '--netns', a, fa])
  assert.is(out().exhausted, false, 'new keys')
  tunctlOk(['del', '--netns', a, 'vti1'])
})

s.run()
