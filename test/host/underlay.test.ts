// `dev:` against the namespace: a device that does not exist, or that the same file creates, is refused by plan and
// apply (exit 65) at the dev value's file:line:col, before anything changes; an existing device plans as usual.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {runFiles, tunctl} from './lib/cli.js'
import {type Pair, ipn, makePair, removePair, whyNoUserspaceCli} from './lib/netns.js'

const scratch = mkdtempSync(join(tmpdir(), 'tunctl-underlay-'))
const tun = (name: string, dev?: string, mode = 'gre') =>
  `  ${name}:\n    mode: ${mode}\n    driver: userspace\n    local: 198.51.100.1\n    remote: 198.51.100.2\n${dev ? `    dev: ${dev}\n` : ''}`
const spec = (file: string, body: string) => {
  const f = join(scratch, file)
  writeFileSync(f, `version: 1\ntunnels:\n${body}`)
  return f
}
const MISSING = spec('missing.yaml', tun('ud0', 'nosuch0'))
const SAME = spec('same.yaml', tun('ud1', undefined, 'ipip') + tun('ud0', 'ud1'))
const EXISTING = spec('existing.yaml', tun('ud0', 'ul0'))

const t = suite('dev: the underlay device must exist in the namespace')
const why = whyNoUserspaceCli()
let pair: Pair | undefined
let ns = ''
/** the namespace's links and tunctl's files for it (but the lock file, which apply makes before it plans) */
const system = () => [links(), runFiles(ns).filter((f) => f !== 'lock')]
const links = () => (JSON.parse(ipn(ns, '-j', 'link', 'show')) as Array<{ifname: string}>).map((l) => l.ifname).sort()

if (why) t.skip(`underlay: skipped: ${why}`, () => {})
else {
  t.before(() => {
    pair = makePair('udev')
    ns = pair.a
  })
  t.after(() => {
    removePair(pair)
    rmSync(scratch, {recursive: true, force: true})
  })

  t('a device that does not exist: plan and apply exit 65 at the dev value, nothing changed', () => {
    const before = system()
    for (const cmd of ['plan', 'apply']) {
      const r = tunctl([cmd, '--netns', ns, MISSING])
      assert.is(r.code, 65, `${cmd}: ${r.out}${r.err}`)
      // file:line:col, the source line, a caret under the value
      assert.match(r.err, `tunctl: ${MISSING}:8:10: tunnel "ud0": device nosuch0 does not exist in network namespace ${ns}\n`)
      assert.match(r.err, /\n( *)dev: nosuch0\n\1     \^/)
      assert.equal(system(), before, `${cmd} changed nothing`)
    }
    const j = tunctl(['plan', '--json', '--netns', ns, MISSING])
    assert.is(j.code, 65)
    const c = JSON.parse(j.out).error.conflicts[0]
    assert.equal([c.name, c.pointer, c.line, c.column], ['ud0', '/tunnels/ud0/dev', 8, 10])
  })

  t('a device the same file creates: refused (the kernel looks it up when it creates the tunnel)', () => {
    const before = system()
    for (const cmd of ['plan', 'apply']) {
      const r = tunctl([cmd, '--netns', ns, SAME])
      assert.is(r.code, 65, `${cmd}: ${r.out}${r.err}`)
      assert.match(r.err, `${SAME}:13:10: tunnel "ud0": device ud1 does not exist yet: this file creates it`)
      assert.equal(system(), before, `${cmd} changed nothing`)
    }
  })

  t('a device that exists: planned as usual', () => {
    const r = tunctl(['plan', '--detailed-exitcode', '--netns', ns, EXISTING])
    assert.is(r.code, 2, r.err)
    assert.match(r.out, '+ ud0 (gre, userspace)')
  })
}
t.run()
