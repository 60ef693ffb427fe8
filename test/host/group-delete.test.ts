// Many userspace tunnels deleted at once go as ONE group deletion (src/plan/lines.ts GroupDelete): each TUN device is
// moved to a group no link uses, then `ip link del group G`. On this host's kernel: only tunctl's devices of the
// plan go (a foreign TUN device, a link in tunctl's first group number stay, groups
// unchanged), and a batch stopping at the group deletion leaves every tunnel running with its group as before.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {yaml} from '../uml/lib/spec.js'
import {type Pair, A_ADDR, B_ADDR, ipn, makePair, removePair, whyNoUserspaceCli} from './lib/netns.js'
import {essence, leftovers, showJson, tunctl, tunctlOk as ok} from './lib/cli.js'

const scratch = mkdtempSync(join(tmpdir(), 'tunctl-grp-'))
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))

const FIRST = 0x74756e63 // freeGroup's first candidate (src/plan/lines.ts)
const NAMES = ['u1', 'u2', 'u3', 'u4']

function spec(file: string, names: string[]): string {
  const f = join(scratch, file)
  const tunnels: Record<string, any> = {}
  names.forEach((n, i) => (tunnels[n] = {mode: 'gre', driver: 'userspace', local: A_ADDR, remote: B_ADDR, key: i + 1, addresses: [`10.77.${i}.1/30`]}))
  writeFileSync(f, yaml({version: 1, tunnels}))
  return f
}

/** link name → group, as ip prints it */
function groups(ns: string): Record<string, string> {
  return Object.fromEntries((JSON.parse(ipn(ns, '-j', 'link', 'show')) as any[]).filter((l) => l.ifname).map((l) => [l.ifname, String(l.group)]))
}

const t = suite('userspace deletions as one group deletion (host kernel)')
const why = whyNoUserspaceCli()
let pair: Pair | undefined
if (why) t.skip(`group deletion: skipped: ${why}`, () => {})
else {
  t.before(() => {
    pair = makePair('grp')
    // links that are not the plan's: a foreign TUN device, a veth in tunctl's first group number (no dummy module here)
    ipn(pair.a, 'tuntap', 'add', 'dev', 'ftun', 'mode', 'tun')
    ipn(pair.a, 'link', 'add', 'fveth', 'type', 'veth', 'peer', 'name', 'fveth2')
    ipn(pair.a, 'link', 'set', 'dev', 'fveth', 'group', String(FIRST))
  })
  t.after(() => removePair(pair))

  t('a batch failing at the group deletion: every tunnel still runs, each device back in its own group', () => {
    ok(['apply', '--netns', pair!.a, spec('all.yaml', NAMES)])
    ipn(pair!.a, 'link', 'set', 'dev', 'u3', 'group', '7')
    const before = groups(pair!.a)
    const shown = showJson(pair!.a)
    // the lines: u2, u3, u4 moved to the group, then the group deletion (line 4)
    const r = tunctl(['apply', '--prune', '--verbose', '--netns', pair!.a, spec('one.yaml', ['u1'])], {TUNCTL_FAIL_AT_LINE: '4'})
    assert.is(r.code, 1, r.err)
    assert.match(r.err, new RegExp(`link set dev u4 group ${FIRST + 1}`))
    assert.match(r.err, /restored/)
    assert.equal(groups(pair!.a), before)
    const after = showJson(pair!.a)
    assert.equal(essence(after), essence(shown))
    assert.equal(leftovers(pair!.a, after), [])
  })

  t('apply --prune of three of them: only their devices go, in one `link del group` of a group no link used', () => {
    const before = groups(pair!.a)
    const g = String(FIRST + 1) // FIRST is fveth's
    // plan --show-commands prints the lines apply runs: the same group, text and --json
    const shownPlan = ok(['plan', '--prune', '--show-commands', '--netns', pair!.a, spec('one.yaml', ['u1'])])
    assert.ok(new RegExp(`ip link set dev u2 group ${g}\\b`).test(shownPlan.out), shownPlan.out)
    assert.match(shownPlan.out, new RegExp(`ip link del group ${g}\\b`))
    assert.not.match(shownPlan.out, /link del dev u[234]\b/)
    const planJson = JSON.parse(ok(['plan', '--prune', '--show-commands', '--json', '--netns', pair!.a, spec('one.yaml', ['u1'])]).out)
    assert.ok(planJson.commands.includes(`ip link del group ${g}`), planJson.commands.join('\n'))
    const r = ok(['apply', '--prune', '--verbose', '--netns', pair!.a, spec('one.yaml', ['u1'])])
    assert.match(r.err, new RegExp(`ip link set dev u2 group ${g}\\b`))
    assert.match(r.err, new RegExp(`ip link del group ${g}\\b`))
    assert.not.match(r.err, /link del dev u[234]\b/)
    const now = groups(pair!.a)
    const kept = ['ftun', 'fveth', 'fveth2', 'lo', 'u1', 'ul0']
    assert.equal(Object.keys(now).sort(), kept)
    for (const n of kept) assert.is(now[n], before[n], n)
    const after = showJson(pair!.a)
    assert.equal(after.map((x) => x.name), ['u1'])
    assert.equal(leftovers(pair!.a, after), [])
  })
}
t.run()
