// The userspace encapsulator against REAL kernel tunnels: boots user-mode-linux once and runs
// test/host/uml-interop.sh there (kernel gre/ipip/sit/isatap in one namespace, tunctl's daemon in the other).
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {addonAvailable} from '../../src/userspace/addon.js'

const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..')
const t = suite('userspace encapsulator ↔ kernel tunnels (user-mode-linux)')

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root'
  if (spawnSync('sh', ['-c', 'command -v linux.uml']).status !== 0) return 'linux.uml not installed (apt-get install user-mode-linux)'
  if (!addonAvailable()) return 'native addon not built'
  return undefined
}

const why = whyNot()
if (why) {
  t.skip(`kernel interop: skipped: ${why}`, () => {})
} else {
  let out = ''
  t.before(() => {
    const r = spawnSync('bash', [join(repo, 'test/uml/uml.sh'), join(repo, 'test/host/uml-interop.sh')], {
      encoding: 'utf8',
      env: {...process.env, MODULES: 'ipip ip_gre sit veth tun'},
      timeout: 300_000,
    })
    out = (r.stdout ?? '') + (r.stderr ?? '')
  })
  for (const mode of ['gre', 'ipip', 'sit', 'isatap']) {
    t(`${mode}: kernel and userspace ends ping each other both ways; packets counted, none dropped`, () => {
      assert.ok(out.includes(`INTEROP ${mode} ok`), out.slice(-3000))
      const line = out.split('\n').find((l) => l.startsWith(`COUNTERS ${mode} `))
      assert.ok(line, 'counters line')
      const obs = JSON.parse(line!.slice(`COUNTERS ${mode} `.length))
      const c = obs.u1.counters
      assert.ok(obs.u1.alive)
      assert.ok(c.rxPackets >= 2 && c.txPackets >= 2, JSON.stringify(c))
      assert.is(c.rxDropped, 0, JSON.stringify(c.drops))
    })
  }
}
t.run()
