// A kernel tunnel in A and tunctl's userspace encapsulator (--driver userspace) in B, from the same examples:
// the peers cannot tell the difference, so traffic flows both ways; show reports the userspace driver;
// del stops the encapsulator. (vti has no userspace driver.)
import {suite} from '#test/uvu'
import {waitForSync} from '../lib/wait.js'
import * as assert from 'uvu/assert'
import {linkExists, makePair, pingOk, removePair, type Pair} from './lib/ns.js'
import {assertInUml, nsExec} from './lib/sh.js'
import {example, exampleName, examplePath, mirror, yaml, type Mode} from './lib/spec.js'
import {json, param, show, shownTunnels, specFile, tunctlOk} from './lib/tunctl.js'

interface State {
  pair?: Pair
}

const s = suite<State>('kernel ↔ userspace peers', {})
s.after((st) => removePair(st.pair))

/** [mode, A's inner address, B's inner address] */
const CASES: Array<[Mode, string, string]> = [
  ['gre', '10.10.2.1', '10.10.2.2'],
  ['ipip', '10.10.1.1', '10.10.1.2'],
  ['sit', '2001:db8:3::1', '2001:db8:3::2'],
  ['isatap', '2001:db8:4::5efe:c633:6401', '2001:db8:4::5efe:c633:6402'],
]

s('namespaces joined by a veth', (st) => {
  assertInUml()
  st.pair = makePair('uspeer')
  // a kernel sender on veth leaves GRE checksums to the "NIC": have them computed in software
  for (const ns of [st.pair.a, st.pair.b]) {
    const r = nsExec(ns, 'ethtool', ['-K', 'ul0', 'tx', 'off'])
    assert.is(r.code, 0, `ethtool -K ul0 tx off in ${ns} (apt-get install ethtool): ${r.stderr}`)
  }
})

for (const [mode, innerA, innerB] of CASES) {
  s(`${mode}: kernel in A, userspace in B, ping both ways, del stops the encapsulator`, (st) => {
    const {a, b} = st.pair!
    const name = exampleName(mode)
    tunctlOk(['apply', '--netns', a, examplePath(mode)])
    const fb = specFile(`${mode}-us`, yaml(mirror(example(mode))))
    const ap = tunctlOk(['apply', '--driver', 'userspace', '--netns', b, fb])
    assert.match(ap.stdout, new RegExp(`^\\+ ${name} \\(${mode}, userspace\\)`, 'm'), show(ap))
    try {
      const r = tunctlOk(['show', '--json', '--netns', b])
      const t = shownTunnels(json(r))[name]
      assert.ok(t, show(r))
      assert.is(t.driver, 'userspace', show(r))
      assert.is(t.owned, true, show(r))
      assert.is(param(t, 'mode'), mode, show(r))
      assert.ok(pingOk(a, innerB), `ping A (kernel) → B (userspace) ${innerB}`)
      assert.ok(pingOk(b, innerA), `ping B (userspace) → A (kernel) ${innerA}`)
      // the encapsulator writes its counters every second: both directions must have been counted
      waitForSync(() => shownTunnels(json(tunctlOk(['show', '--json', '--netns', b])))[name]?.counters, (c) => c?.rxPackets > 0 && c?.txPackets > 0, {what: 'show --json counting packets both ways', timeoutMs: 6000, intervalMs: 300})
      const again = tunctlOk(['apply', '--verbose', '--driver', 'userspace', '--netns', b, fb])
      assert.not.match(again.stderr, /^\[#\] /m, 'a second apply changes nothing' + show(again))
      const pid: number | undefined = t.pid
      tunctlOk(['del', '--netns', b, name])
      assert.not.ok(linkExists(b, name), 'the TUN device is gone')
      assert.type(pid, 'number', 'show --json gives the encapsulator pid of a userspace tunnel')
      let alive = true
      try {
        process.kill(pid!, 0)
      } catch {
        alive = false
      }
      assert.not.ok(alive, `encapsulator pid ${pid} stopped by del`)
    } finally {
      tunctlOk(['del', '--ignore-missing', '--netns', b, name])
      tunctlOk(['del', '--ignore-missing', '--netns', a, name])
    }
  })
}

s.run()
