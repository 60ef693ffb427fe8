// The namespace lock under contention: a lock file left by a dead pid, then 8 concurrent applies of different
// specs (each --prune, one userspace tunnel of its own) into one namespace, three rounds; half of them lock through
// the flock(1) fallback, which must exclude the native flock too. Every apply exits 0 or 75, and each round ends in
// exactly one spec's state with nothing else of tunctl left.
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {lockPath} from '../../src/lib/lock.js'
import {essence, exited, leftovers, REPO, showJson, tunctlChild} from './lib/cli.js'
import {type Pair, makePair, removePair, run, whyNoUserspaceCli} from './lib/netns.js'

const APPLIES = 8
const ROUNDS = 3
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-lockstress-'))
const specs = Array.from({length: APPLIES}, (_, i) => {
  const f = join(scratch, `s${i}.yaml`)
  writeFileSync(f, `version: 1\ntunnels:\n  st${i}:\n    mode: gre\n    driver: userspace\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    key: ${i + 1}\n    addresses: [10.79.${i}.1/30]\n`)
  return f
})

function whyNot(): string | undefined {
  const w = whyNoUserspaceCli()
  if (w) return w
  if (run('sh', ['-c', 'command -v flock']).code !== 0) return 'flock(1) missing'
  return undefined
}

const t = suite('lock: stale lock file + 8 concurrent applies, 3 rounds')
const why = whyNot()
let pair: Pair | undefined
if (why) t.skip(`lock stress: skipped: ${why}`, () => {})
else {
  t.before(() => {
    pair = makePair('lck')
  })
  t.after(() => removePair(pair))

  for (let round = 1; round <= ROUNDS; round++) {
    t(`round ${round}: every apply exits 0 or 75; the namespace holds exactly one spec's tunnel`, async () => {
      const ns = pair!.a
      // a lock file whose owner is long gone (the old O_EXCL lock refused or raced here)
      mkdirSync(join(lockPath(ns), '..'), {recursive: true})
      writeFileSync(lockPath(ns), '999999999\n')
      const children = specs.map((f, i) => tunctlChild(['apply', '--prune', '--json', '--lock-timeout', '120', '--netns', ns, f], i % 2 ? {TUNCTL_LOCK_FLOCK1: '1'} : {}))
      const results = await Promise.all(children.map((c, i) => exited(c, `apply ${i}`, 180_000)))
      const codes = results.map((r) => r.code)
      for (const [i, r] of results.entries()) assert.ok(r.code === 0 || r.code === 75, `apply ${i} exited ${r.code}\n${r.out}\n${r.err}`)
      assert.ok(codes.includes(0), `at least one apply succeeded: ${codes}`)
      const tunnels = showJson(ns)
      assert.is(tunnels.length, 1, `exactly one spec's tunnel: ${JSON.stringify(essence(tunnels))}`)
      const name = tunnels[0].name as string
      const i = Number(name.slice(2))
      assert.ok(/^st\d$/.test(name) && codes[i] === 0, `${name} is the tunnel of an apply that succeeded`)
      assert.equal(tunnels[0].addresses, [`10.79.${i}.1/30`])
      assert.is(tunnels[0].owned, true)
      assert.equal(leftovers(ns, tunnels), [])
      // each successful apply saw the previous winner's tunnel and replaced it: serialised, never interleaved
      for (const [k, r] of results.entries()) {
        if (r.code !== 0) continue
        const j = JSON.parse(r.out)
        assert.is(j.ok, true)
        assert.ok(j.plan.counts.delete <= 1 && j.plan.counts.create <= 1, `apply ${k} plan: ${JSON.stringify(j.plan.counts)}`)
      }
    })
  }
}

t.run()
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))
