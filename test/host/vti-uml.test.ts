// tunctl's userspace vti against REAL kernel vti + esp4 (issue #7 item 4): boots user-mode-linux once and runs
// test/uml/vti-userspace.sh there: kernel SAs written by hand with ip xfrm (aes-gcm-128, aes-cbc-256 +
// hmac-sha256) and by tunctl's own kernel driver; ping and iperf3 both ways, only ESP on the veth, no drops,
// and the kernel stays silent about the ESP it has no SA for (XfrmInNoStates counts it, no ICMP is sent).
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {addonAvailable} from '../../src/userspace/addon.js'

const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..')
const t = suite('userspace vti ↔ kernel vti + esp4 (user-mode-linux)')
const MODULES = 'ip_vti veth tun esp4 xfrm_user aes_ti ctr ghash-generic gcm hmac sha512_generic jitterentropy_rng drbg seqiv echainiv cbc authenc sha256_generic'

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root'
  if (spawnSync('sh', ['-c', 'command -v linux.uml']).status !== 0) return 'linux.uml not installed (apt-get install user-mode-linux)'
  if (!addonAvailable()) return 'native addon not built'
  if (!existsSync(join(repo, 'dist', 'bundle', 'tunctl.cjs'))) return 'CLI not built (npm run build)'
  return undefined
}

const why = whyNot()
if (why) {
  t.skip(`skipped: ${why}`, () => {})
} else {
  let out = ''
  t.before(() => {
    const r = spawnSync('bash', [join(repo, 'test/uml/uml.sh'), join(repo, 'test/uml/vti-userspace.sh')], {encoding: 'utf8', env: {...process.env, MODULES}, timeout: 900_000})
    out = (r.stdout ?? '') + (r.stderr ?? '')
    if (process.env.TUNCTL_VTI_UML_LOG) process.stderr.write(out)
  })
  const line = (c: string, what: string) => {
    const l = out.split('\n').find((x) => x.startsWith(`VTIUML ${c} ${what}`))
    assert.ok(l, `no "VTIUML ${c} ${what}" line:\n${out.slice(-3000)}`)
    return l!.slice(`VTIUML ${c} ${what} `.length)
  }
  const CASES: Array<[string, string]> = [
    ['gcm', 'kernel SAs by hand (ip xfrm), aes-gcm-128'],
    ['cbc', 'kernel SAs by hand (ip xfrm), aes-cbc-256 + hmac-sha256'],
    ['tunctl', "tunctl's kernel driver, aes-gcm-128"],
  ]
  for (const [c, what] of CASES) {
    t(`${what}: userspace driver picked, ping and iperf3 both ways, only ESP on the veth, no drops`, () => {
      line(c, 'driver userspace')
      assert.ok(out.includes(`VTIUML ${c} ping ok`), out.slice(-3000))
      const ip = JSON.parse(line(c, 'iperf'))
      assert.ok(ip.k2u > 1e6 && ip.u2k > 1e6, JSON.stringify(ip))
      const cap = JSON.parse(line(c, 'capture'))
      assert.ok((cap['ipv4/50'] ?? 0) >= 10, JSON.stringify(cap))
      assert.equal(Object.keys(cap).filter((k) => k.startsWith('ipv4/') && k !== 'ipv4/50'), [], JSON.stringify(cap))
      const st = JSON.parse(line(c, 'stats'))
      assert.ok(st.esp.rxPackets > 100 && st.esp.txPackets > 100, JSON.stringify(st))
      const bad = Object.entries(st.drops as Record<string, number>).filter(([k, v]) => v > 0 && !['seq_reserved'].includes(k))
      assert.equal(bad, [], JSON.stringify(st.drops))
    })
    t(`${what}: the kernel (esp4 + ip_vti loaded) drops the userspace vti's ESP silently: XfrmInNoStates, no ICMP`, () => {
      const s = JSON.parse(line(c, 'kernel-silent'))
      assert.ok(s.noStatesAfter - s.noStatesBefore >= 6, JSON.stringify(s))
      assert.is(s.icmpOutAfter - s.icmpOutBefore, 0, JSON.stringify(s))
    })
  }
  t('kernel ESP ↔ kernel ESP in the same UML (benchmark figures)', () => {
    for (const alg of ['gcm', 'cbc']) {
      const l = out.split('\n').find((x) => x.startsWith(`BENCH kernel-${alg} {`))
      assert.ok(l, out.slice(-2000))
      const v = JSON.parse(l!.slice(`BENCH kernel-${alg} `.length))
      assert.ok(v.k2u > 1e6, l)
    }
  })
}
t.run()
