// Contract behaviours end to end with the real CLI, in a fresh namespace pair, on this module-less host
// (userspace driver): every --json output is validated against its schema as printed (json() in
// test/uml/lib/tunctl.ts), --dry-run and --detailed-exitcode, exits 66/70/77, colour only on a TTY and never
// with NO_COLOR, --verbose echo, rollback when an encapsulator cannot start, prune and del of userspace tunnels
// (also with a dead encapsulator), and an export round trip of every variant the userspace driver carries.
import {spawnSync} from 'node:child_process'
import {chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {nsDir, readRecord} from '../../src/userspace/paths.js'
import {echoedIpLines, json, show, shownTunnels, tunctl, tunctlOk, REPO} from '../uml/lib/tunctl.js'
import {A_ADDR, ipn, makePair, removePair, run, type Pair} from './lib/netns.js'
import {exited, tunctlChild} from './lib/cli.js'
import {waitFor} from '../lib/wait.js'

const scratch = mkdtempSync(join(tmpdir(), 'tunctl-contract-'))
chmodSync(scratch, 0o755)
const file = (name: string, text: string) => {
  const p = join(scratch, name)
  writeFileSync(p, text, {mode: 0o644})
  return p
}
const linkExists = (ns: string, name: string) => run('ip', ['-n', ns, 'link', 'show', 'dev', name]).code === 0
const links = (ns: string) => JSON.parse(ipn(ns, '-j', 'link', 'show')).map((l: any) => l.ifname).sort()
const daemons = (ns: string) => run('pgrep', ['-f', `engine.js ${nsDir(ns)}$`]).out.trim().split('\n').filter(Boolean)
const ANSI = /\x1b\[[0-9;]*m/

const GRE = (name: string, key: number) => `  ${name}:\n    mode: gre\n    local: ${A_ADDR}\n    remote: 198.51.100.2\n    key: ${key}\n    addresses: [10.30.${key}.1/30]\n`
const spec = (...tunnels: string[]) => `version: 1\ntunnels:\n${tunnels.join('')}`

const t = suite<{pair?: Pair}>('contract behaviours (userspace driver, real CLI)', {})
t.before((st) => {
  st.pair = makePair('contract')
})
t.after((st) => {
  removePair(st.pair)
  rmSync(scratch, {recursive: true, force: true})
})

t('apply --dry-run changes nothing; with --detailed-exitcode it exits 2 while changes pend, 0 after', ({pair}) => {
  const f = file('dry.yaml', spec(GRE('gd1', 11)))
  const before = links(pair!.a)
  const r = tunctlOk(['apply', '--dry-run', '--netns', pair!.a, f])
  assert.match(r.stdout, /^\+ gd1\b/m, show(r))
  tunctlOk(['apply', '--dry-run', '--detailed-exitcode', '--netns', pair!.a, f], {code: 2})
  assert.equal(links(pair!.a), before, 'a dry run creates no link')
  assert.equal(daemons(pair!.a), [], 'a dry run starts no encapsulator')
  tunctlOk(['apply', '--netns', pair!.a, f])
  tunctlOk(['apply', '--dry-run', '--detailed-exitcode', '--netns', pair!.a, f], {code: 0})
  tunctlOk(['del', '--netns', pair!.a, 'gd1'])
})

t('every command --json prints one document that matches its schema', ({pair}) => {
  const ns = pair!.a
  const f = file('json.yaml', spec(GRE('gj1', 12)))
  const bad = file('bad.yaml', 'version: 1\ntunnels:\n  gj1:\n    mode: gre\n    ttl: 300\n')
  assert.is(json(tunctlOk(['validate', '--json', f])).ok, true)
  assert.is(json(tunctlOk(['validate', '--json', bad], {code: 65})).ok, false)
  assert.is(json(tunctlOk(['plan', '--json', '--netns', ns, f])).ok, true)
  const applied = json(tunctlOk(['apply', '--json', '--netns', ns, f]))
  assert.is(applied.applied, true)
  assert.is(applied.verified, true)
  const shown = shownTunnels(json(tunctlOk(['show', '--json', '--netns', ns])))
  assert.is(shown.gj1.driver, 'userspace', 'this host has no gre module: auto picks userspace')
  json(tunctlOk(['show', '--json', '--netns', ns, 'gj1']))
  const exported = json(tunctlOk(['export', '--json', '--netns', ns]))
  assert.ok(exported.tunnels.gj1)
  json(tunctlOk(['doctor', '--json']))
  json(tunctlOk(['apply', '--json', '--netns', ns, join(scratch, 'missing.yaml')], {code: 66}))
  json(tunctlOk(['del', '--json', '--netns', ns, 'nosuch'], {code: 1}))
  assert.is(json(tunctlOk(['del', '--json', '--netns', ns, 'gj1'])).ok, true)
})

t('--verbose echoes each ip line of a change as "[#] ip …" on stderr', ({pair}) => {
  // a create's device is configured by the engine (no ip line: "[#] (userspace) start …"); an in-place change of
  // its address runs ip lines, each echoed
  const created = tunctlOk(['apply', '--verbose', '--netns', pair!.a, file('verbose.yaml', spec(GRE('gv1', 13)))])
  assert.match(created.stderr, /^\[#\] \(userspace\) start gv1$/m, 'the engine start is echoed' + show(created))
  const f = file('verbose2.yaml', spec(GRE('gv1', 13).replace('10.30.13.1/30', '10.30.13.5/30')))
  const r = tunctlOk(['apply', '--verbose', '--netns', pair!.a, f])
  const lines = echoedIpLines(r.stderr)
  assert.ok(lines.some((l) => /addr (add|replace) 10\.30\.13\.5\/30 dev gv1/.test(l)), 'the address line is echoed' + show(r))
  tunctlOk(['del', '--netns', pair!.a, 'gv1'])
})

t('colour only on a TTY, never with NO_COLOR', ({pair}) => {
  const f = file('colour.yaml', spec(GRE('gc1', 14)))
  const cmd = `node ${join(REPO, 'bin', 'run')} plan --netns ${pair!.a} ${f}`
  const env = {...process.env}
  delete env.NO_COLOR
  delete env.FORCE_COLOR
  const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], {encoding: 'utf8', env: {...env, TERM: 'xterm'}})
  assert.match(tty.stdout, /gc1/, tty.stdout + tty.stderr)
  assert.match(tty.stdout, ANSI, 'a plan on a TTY is coloured')
  const noColor = spawnSync('script', ['-qec', cmd, '/dev/null'], {encoding: 'utf8', env: {...env, TERM: 'xterm', NO_COLOR: '1'}})
  assert.match(noColor.stdout, /gc1/)
  assert.not.match(noColor.stdout, ANSI, 'NO_COLOR: no escape codes')
  const pipe = spawnSync('sh', ['-c', cmd], {encoding: 'utf8', env})
  assert.match(pipe.stdout, /gc1/)
  assert.not.match(pipe.stdout, ANSI, 'not a TTY: no escape codes')
})

t('exit 77 without privilege, and nothing changed', ({pair}) => {
  const f = file('priv.yaml', spec(GRE('gp1', 15)))
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(REPO, 'bin', 'run'), 'apply', '--netns', pair!.a, f], {encoding: 'utf8'})
  assert.is(r.status, 77, r.stdout + r.stderr)
  assert.not.ok(linkExists(pair!.a, 'gp1'))
})

t('exit 70 (internal error) when the CLI is not built, with a message', () => {
  const copy = mkdtempSync(join(scratch, 'unbuilt-'))
  cpSync(join(REPO, 'bin'), join(copy, 'bin'), {recursive: true})
  const r = spawnSync(process.execPath, [join(copy, 'bin', 'run'), 'show'], {encoding: 'utf8'})
  assert.is(r.status, 70, r.stdout + r.stderr)
  assert.match(r.stderr, /not built/)
})

t('an encapsulator that cannot start: apply exits 1 and leaves no device, process or state', ({pair}) => {
  const ns = pair!.a
  const f = file('nostart.yaml', spec(GRE('gs1', 16), GRE('gs2', 17)))
  const before = links(ns)
  const r = tunctl(['apply', '--netns', ns, f], {env: {TUNCTL_DAEMON_NODE: '/bin/false'}})
  assert.is(r.code, 1, show(r))
  assert.equal(links(ns), before, 'no TUN device left')
  assert.equal(daemons(ns), [], 'no encapsulator left')
  const left = existsSync(nsDir(ns)) ? readdirSync(nsDir(ns)).filter((x) => /^gs[12]\b/.test(x) || x === '.tunnels.json') : []
  assert.equal(left, [], 'no state record or counters left')
})

t('prune and del of userspace tunnels stop their encapsulators; del works with a dead encapsulator', ({pair}) => {
  const ns = pair!.a
  tunctlOk(['apply', '--netns', ns, file('two.yaml', spec(GRE('gq1', 18), GRE('gq2', 19)))])
  assert.is(daemons(ns).length, 1, 'one engine for both')
  tunctlOk(['apply', '--prune', '--netns', ns, file('one.yaml', spec(GRE('gq1', 18)))])
  assert.not.ok(linkExists(ns, 'gq2'), 'pruned device gone')
  assert.is(daemons(ns).length, 1, 'the engine runs on for gq1')
  assert.equal(Object.keys(readRecord(nsDir(ns))?.tunnels ?? {}), ['gq1'], 'gq2 stopped: its entry in the state record is gone')
  const pid = shownTunnels(json(tunctlOk(['show', '--json', '--netns', ns]))).gq1.pid
  assert.type(pid, 'number')
  process.kill(pid, 'SIGKILL')
  const deadline = Date.now() + 5000
  while (daemons(ns).length && Date.now() < deadline) spawnSync('sleep', ['0.05'])
  assert.equal(daemons(ns), [], 'encapsulator killed')
  tunctlOk(['del', '--netns', ns, 'gq1'])
  assert.not.ok(linkExists(ns, 'gq1'), 'del removed the device of a dead encapsulator')
})

t('del is rolled back when it fails part-way: exit 1, both tunnels as before (devices, alias, encapsulators); --json says so', async ({pair}) => {
  const ns = pair!.a
  tunctlOk(['apply', '--netns', ns, file('del-rb.yaml', spec(GRE('gx1', 24), GRE('gx2', 25)))])
  const before = shownTunnels(json(tunctlOk(['show', '--json', '--netns', ns])))
  // the second line of del's batch (link del dev gx2) fails: gx1 is already gone and must come back
  const r = tunctl(['del', '--json', '--netns', ns, 'gx1', 'gx2'], {env: {TUNCTL_FAIL_AT_LINE: '2'}})
  assert.is(r.code, 1, show(r))
  const doc = json(r)
  assert.is(doc.ok, false, show(r))
  assert.match(doc.error.message, /batch line 2 .*gx2/, show(r))
  assert.match(doc.error.message, /restored to its state before the del/, show(r))
  const after = shownTunnels(json(tunctlOk(['show', '--json', '--netns', ns])))
  for (const n of ['gx1', 'gx2']) {
    assert.ok(after[n], `${n} is there again` + show(r))
    assert.is(after[n].owned, true, `${n} is tunctl's again`)
    assert.equal(after[n].params, before[n].params, `${n} has its parameters`)
    assert.is(after[n].alive, true, `${n}'s encapsulator runs`)
    assert.is(after[n].driver, 'userspace')
    assert.equal(after[n].addresses, before[n].addresses, `${n} has its address again`)
  }
  assert.is(daemons(ns).length, 1, 'one engine runs both')
  assert.not.ok(existsSync(join(nsDir(ns), 'journal.json')), 'the journal is gone after a complete rollback')
  tunctlOk(['del', '--netns', ns, 'gx1', 'gx2'])
  assert.not.ok(linkExists(ns, 'gx1') || linkExists(ns, 'gx2'), 'a del that succeeds leaves no device')
  await waitFor(() => daemons(ns), (d) => d.length === 0, {what: 'the engine exits with its last tunnel'})
  assert.equal(daemons(ns), [], 'and no encapsulator')
})

t('a del killed after its batch is journaled: show reports it, the next command rolls it back', async ({pair}) => {
  const ns = pair!.a
  tunctlOk(['apply', '--netns', ns, file('del-kill.yaml', spec(GRE('gy1', 26), GRE('gy2', 27)))])
  const pause = join(scratch, `pause-del-${Math.random().toString(16).slice(2)}`)
  const child = tunctlChild(['del', '--netns', ns, 'gy1', 'gy2'], {TUNCTL_PAUSE_AT: 'after-batch', TUNCTL_PAUSE_FILE: pause})
  await waitFor(() => existsSync(`${pause}.reached`), Boolean, {what: 'del paused after its batch', timeoutMs: 60_000})
  assert.not.ok(linkExists(ns, 'gy1') || linkExists(ns, 'gy2'), 'the batch deleted both devices')
  child.proc.kill('SIGKILL')
  await exited(child, 'killed del')
  const shown = tunctl(['show', '--netns', ns])
  assert.match(shown.stderr, /found a del .*whose process is gone/, show(shown))
  const r = tunctlOk(['del', '--ignore-missing', '--netns', ns, 'nosuch'])
  assert.match(r.stderr, /found a del .*rolling back/, show(r))
  assert.match(r.stderr, /rolled back the unfinished del/, show(r))
  const after = shownTunnels(json(tunctlOk(['show', '--json', '--netns', ns])))
  for (const n of ['gy1', 'gy2']) {
    assert.is(after[n]?.owned, true, `${n} is back and tunctl's` + show(r))
    assert.is(after[n].alive, true, `${n}'s encapsulator runs`)
  }
  tunctlOk(['del', '--netns', ns, 'gy1', 'gy2'])
  // the engine answers the last commit, then exits
  await waitFor(() => daemons(ns), (d) => d.length === 0, {what: 'the engine exits with its last tunnel'})
  assert.equal(daemons(ns), [], 'no encapsulator left')
})

/** Runs `apply FILE` paused at `phase`; `meanwhile` acts on the system there; then lets it go on. */
async function applyPausedAt(ns: string, f: string, phase: string, meanwhile: () => void, env: Record<string, string> = {}) {
  const pause = join(scratch, `pause-${phase}-${Math.random().toString(16).slice(2)}`)
  const child = tunctlChild(['apply', '--netns', ns, f], {TUNCTL_PAUSE_AT: phase, TUNCTL_PAUSE_FILE: pause, ...env})
  await waitFor(() => existsSync(`${pause}.reached`), Boolean, {what: `apply paused at ${phase}`, timeoutMs: 60_000})
  try {
    meanwhile()
  } finally {
    writeFileSync(pause, '') // always let it go on: a paused apply holds the namespace lock
  }
  return exited(child, `apply paused at ${phase}`)
}
const mtuOf = (ns: string, name: string) => JSON.parse(ipn(ns, '-j', 'link', 'show', 'dev', name))[0].mtu

t('a real verification mismatch (the mtu changed under the apply) rolls back: exit 1, the state before', async ({pair}) => {
  const ns = pair!.a
  const gre = (mtu: number) => spec(GRE('gm1', 21).replace('    key: 21\n', `    key: 21\n    mtu: ${mtu}\n`))
  tunctlOk(['apply', '--netns', ns, file('m-before.yaml', gre(1400))])
  const r = await applyPausedAt(ns, file('m-after.yaml', gre(1300)), 'verify', () => ipn(ns, 'link', 'set', 'dev', 'gm1', 'mtu', '1350'))
  assert.is(r.code, 1, r.out + r.err)
  assert.match(r.err, /verification failed/)
  assert.match(r.err, /restored/)
  assert.is(mtuOf(ns, 'gm1'), 1400, 'the mtu of the state before the apply')
  tunctlOk(['del', '--netns', ns, 'gm1'])
})

t('exit 3 when the rollback cannot finish (a foreign link took the name meanwhile), naming what is left', async ({pair}) => {
  const ns = pair!.a
  const two = spec(GRE('gr1', 22) + '    routes:\n      - to: 203.0.113.0/28\n', GRE('gr2', 23).replace('    key: 23\n', '    key: 23\n    mtu: 1300\n'))
  tunctlOk(['apply', '--netns', ns, file('r-before.yaml', spec(GRE('gr2', 23)))])
  const lines = [...tunctlOk(['plan', '--show-commands', '--netns', ns, file('r-after.yaml', two)]).stdout.matchAll(/^\s*\$ \[(\d+)\] ip /gm)].length
  assert.ok(lines >= 2, 'the plan has lines to fail at')
  const r = await applyPausedAt(ns, join(scratch, 'r-after.yaml'), 'rollback', () => {
    // gr2 (tunctl's, to be restored) is replaced by a foreign link of the same name (veth: no dummy driver here)
    ipn(ns, 'link', 'del', 'dev', 'gr2')
    ipn(ns, 'link', 'add', 'gr2', 'type', 'veth', 'peer', 'name', 'gr2peer')
  }, {TUNCTL_FAIL_AT_LINE: String(lines)})
  assert.is(r.code, 3, r.out + r.err)
  assert.match(r.err, /rollback is incomplete/)
  assert.match(r.err, /gr2/)
  assert.is(JSON.parse(ipn(ns, '-j', '-d', 'link', 'show', 'dev', 'gr2'))[0].linkinfo?.info_kind, 'veth', 'the foreign link is left alone')
  ipn(ns, 'link', 'del', 'dev', 'gr2')
  tunctl(['del', '--ignore-missing', '--netns', ns, 'gr1', 'gr2'])
  tunctl(['apply', '--prune', '--netns', ns, file('empty.yaml', 'version: 1\ntunnels: {}\n')])
})

const VARIANTS = `version: 1
tunnels:
  gk1:
    mode: gre
    local: ${A_ADDR}
    remote: 198.51.100.2
    input-key: 7
    output-key: 0.0.0.9
    csum: {input: true, output: false}
    seq: true
    ttl: 64
    mtu: 1300
    addresses: [10.40.1.1/30]
    routes:
      - {to: 10.41.0.0/16, via: 10.40.1.2, metric: 50, table: 100}
      - {to: 10.42.0.0/16}
      - {to: 2001:db8:43::/48, metric: 0}
      # its addresses make "default" IPv4: export writes ::/0 as the prefix
      - {to: 0.0.0.0/0, table: 101}
      - {to: ::/0, table: 101}
  ip1:
    mode: ipip
    local: ${A_ADDR}
    remote: 198.51.100.3
    tos: 16
    pmtudisc: true
    addresses: [10.40.2.1/30]
  rd1:
    mode: sit
    local: ${A_ADDR}
    6rd-prefix: 2001:db8::/32
    addresses: [2001:db8:c633:6401::1/64]
  isa1:
    mode: isatap
    local: 198.51.100.11
    routers: [198.51.100.9, {address: 198.51.100.10, default: true}]
`

t('export round trip of every variant: apply(export) changes nothing and export is stable', ({pair}) => {
  const ns = pair!.a
  ipn(ns, 'addr', 'add', '198.51.100.11/24', 'dev', 'ul0')
  const variants = file('variants.yaml', VARIANTS)
  tunctlOk(['apply', '--netns', ns, variants])
  // the kernel stores the IPv6 route's metric 0 as 1024: the spec means that, so the second apply changes nothing
  tunctlOk(['plan', '--detailed-exitcode', '--netns', ns, variants], {code: 0})
  const first = tunctlOk(['export', '--netns', ns]).stdout
  for (const k of ['input-key: 7', 'output-key: 9', 'seq: true', '6rd-prefix: 2001:db8::/32', 'table: 100', '198.51.100.10']) {
    assert.ok(first.includes(k), `export keeps ${k}:\n${first}`)
  }
  const again = tunctlOk(['apply', '--verbose', '--netns', ns, '-'], {input: first})
  assert.equal(echoedIpLines(again.stderr), [], 'applying the export runs no ip command' + show(again))
  assert.match(again.stdout, /No changes/)
  assert.is(tunctlOk(['export', '--netns', ns]).stdout, first, 'export is stable')
  tunctlOk(['del', '--netns', ns, 'gk1', 'ip1', 'rd1', 'isa1'])
  assert.equal(daemons(ns), [])
})

t.run()
