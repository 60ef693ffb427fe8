// `show` of a userspace vti: the ESP counters next to the ipsec block, and an exhausted outbound SA (2^32 - 1 sent,
// the engine's stats say `exhausted`) said there, in text and --json (ipsec.counters.out.exhausted), never as a plan
// problem (new keys or a new spi-out fix it, not a plan).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {buildObserved} from '../../../src/observe/parse.js'
import {detail, tunnelJSON} from '../../../src/commands/show.js'

const FX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'ip')
const read = (f: string) => JSON.parse(readFileSync(join(FX, f), 'utf8'))
const links = read('link-all.json')
const addrs = read('addr.json')
const routes = read('route.json')

function vti(exhausted?: boolean) {
  const esp = {txPackets: 10, txBytes: 1480, rxPackets: 4, rxBytes: 600, txSeq: exhausted ? 0xffffffff : 10, seqLimit: 0xffffffff, hasSa: true, ...(exhausted === undefined ? {} : {exhausted})}
  const encap = {
    params: {mode: 'vti' as const, local: '192.0.2.1', remote: '198.51.100.9', ikey: 7, okey: 7, fwmark: 0, up: true},
    pid: 1234,
    alive: true,
    ipsec: {spiOut: 0x1001, spiIn: 0x1002, aead: 'aes-gcm-128' as const, replayWindow: 128},
    esp,
    counters: {rxPackets: 4, txPackets: 10, rxBytes: 0, txBytes: 0, rxErrors: 0, txErrors: 0, rxDropped: 3, txDropped: 2, drops: {replay: 1, too_old: 1, bad_icv: 1, seq_exhausted: 2}},
  }
  return buildObserved({links, addrs, routes, encaps: new Map([['tun9', encap as any]])}).tunnels.find((t) => t.name === 'tun9')!
}

test('an exhausted outbound SA: show --json says ipsec.counters.out.exhausted, the text says it next to the ESP counters with what to do', () => {
  const t = vti(true)
  const j = tunnelJSON(t) as any
  assert.equal(j.ipsec.counters.out, {packets: 10, bytes: 1480, exhausted: true})
  assert.equal(j.ipsec.counters.in, {packets: 4, bytes: 600, replay: 2, failed: 1})
  assert.not.ok(j.ipsec.problems, 'not a plan problem')
  const text = detail(t)
  assert.match(text, /esp out: +10 packets, 1480 bytes, SA exhausted \(2\^32 - 1 sent, sends nothing more: new spi-out or keys needed\)/, text)
  assert.match(text, /drops: .*seq_exhausted 2/, text)
})

test('a working SA: exhausted false in --json, nothing about it in the text; a stats file without the field (older engine) reads as false', () => {
  for (const e of [false, undefined]) {
    const t = vti(e)
    assert.is((tunnelJSON(t) as any).ipsec.counters.out.exhausted, false)
    assert.not.match(detail(t), /SA exhausted/)
  }
})

test.run()
