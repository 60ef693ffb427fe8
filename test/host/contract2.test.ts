// More of PRODUCT.md driven through the real CLI in a namespace of its own (userspace driver on this module-less
// host), the promises contract.test.ts does not cover: FILE as "-" for validate, plan and apply; the plan summary
// line for each kind of change; `show NAME` of a missing tunnel or of a link that is no tunnel; del with several
// names (all checked before anything is deleted, --ignore-missing); the lock (--lock-timeout → 75, plan and show
// do not wait for it); confirm with nothing pending; what a user without privilege can still do (validate, and
// plan/show/export/doctor of the host namespace) and what exits 77 (apply, del, confirm) with nothing changed.
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {chmodSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {lockPath} from '../../src/lib/lock.js'
import {json, show, shownTunnels, tunctl, tunctlOk, REPO} from '../uml/lib/tunctl.js'
import {A_ADDR, ipn, makePair, removePair, run, whyNoUserspaceCli, type Pair} from './lib/netns.js'
import {waitFor} from '../lib/wait.js'
import {exited, tunctlChild} from './lib/cli.js'

/** the files a process has open (its /proc/PID/fd links) */
const openFiles = (pid: number): string[] => {
  try {
    return readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        return '' // closed meanwhile
      }
    })
  } catch {
    return [] // not started yet or gone: waitFor's timeout reports it
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'tunctl-contract2-'))
chmodSync(scratch, 0o755) // readable by nobody (the unprivileged runs below)
const file = (name: string, text: string) => {
  const p = join(scratch, name)
  writeFileSync(p, text, {mode: 0o644})
  return p
}
const linkExists = (ns: string, name: string) => run('ip', ['-n', ns, 'link', 'show', 'dev', name]).code === 0
const GRE = (name: string, key: number, extra = '') => `  ${name}:\n    mode: gre\n    local: ${A_ADDR}\n    remote: 198.51.100.2\n    key: ${key}\n${extra}`
const spec = (...tunnels: string[]) => `version: 1\ntunnels:\n${tunnels.join('')}`
const SUMMARY = /^Plan: (\d+) to create, (\d+) to update, (\d+) to replace, (\d+) to delete\.$/m
const counts = (stdout: string) => SUMMARY.exec(stdout)?.slice(1).map(Number)

/** tunctl as uid/gid 65534 with no groups (setpriv), HOME somewhere it may read */
function unprivileged(args: string[]) {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(REPO, 'bin', 'run'), ...args], {
    encoding: 'utf8',
    env: {...process.env, NO_COLOR: '1', HOME: scratch},
    timeout: 60_000,
  })
  return {code: r.status, stdout: r.stdout, stderr: r.stderr, argv: ['node', 'tunctl', ...args]}
}

const why = whyNoUserspaceCli() ?? (spawnSync('sh', ['-c', 'command -v setpriv && command -v flock']).status !== 0 ? 'setpriv or flock missing' : undefined)
const t = suite<{pair?: Pair}>('contract behaviours, part 2 (userspace driver, real CLI)', {})
if (why) t.skip(`contract2: skipped: ${why}`, () => {})
else {
  t.before((st) => {
    st.pair = makePair('contract2')
  })
  t.after((st) => {
    removePair(st.pair)
    rmSync(scratch, {recursive: true, force: true})
  })

  t('FILE "-" reads standard input for validate, plan and apply; the plan summary line counts each kind of change', ({pair}) => {
    const ns = pair!.a
    const one = spec(GRE('gi1', 31), GRE('gi2', 32))
    assert.match(tunctlOk(['validate', '-'], {input: one}).stdout, /<stdin>: valid \(2 tunnels\)/)
    assert.is(json(tunctlOk(['validate', '--json', '-'], {input: one})).file, '<stdin>')
    const bad = json(tunctlOk(['validate', '--json', '-'], {input: 'version: 1\ntunnels:\n  gi1:\n    mode: gre\n    local: 192.0.2.1\n    ttl: 0\n', code: 65}))
    assert.equal(bad.diagnostics.map((d: any) => [d.file, d.line, d.column]), [['<stdin>', 6, 10]])
    assert.match(bad.diagnostics[0].excerpt, /ttl: 0\n\s*\^$/)
    const planned = tunctlOk(['plan', '--detailed-exitcode', '--netns', ns, '-'], {input: one, code: 2})
    assert.equal(counts(planned.stdout), [2, 0, 0, 0], show(planned))
    assert.not.ok(linkExists(ns, 'gi1'), 'plan changes nothing')
    tunctlOk(['apply', '--netns', ns, '-'], {input: one})
    assert.ok(linkExists(ns, 'gi1') && linkExists(ns, 'gi2'), 'apply - created both')
    // an update (mtu), a create, and with --prune a delete; the summary line is the last line, exactly
    const next = spec(GRE('gi1', 31, '    mtu: 1300\n'), GRE('gi3', 33))
    const p = tunctlOk(['plan', '--prune', '--netns', ns, '-'], {input: next})
    assert.equal(counts(p.stdout), [1, 1, 0, 1], show(p))
    assert.match(p.stdout, /^~ gi1\b/m)
    assert.match(p.stdout, /^\+ gi3\b/m)
    assert.match(p.stdout, /^- gi2\b/m)
    assert.is(p.stdout.trimEnd().split('\n').at(-1), 'Plan: 1 to create, 1 to update, 0 to replace, 1 to delete.')
    const j = json(tunctlOk(['plan', '--json', '--prune', '--netns', ns, '-'], {input: next}))
    assert.equal(j.plan.counts, {create: 1, update: 1, replace: 0, delete: 1})
    tunctlOk(['del', '--netns', ns, 'gi1', 'gi2'])
  })

  t('show NAME: exit 1 for a missing tunnel and for a link that is no tunnel, one JSON document with --json', ({pair}) => {
    const ns = pair!.a
    for (const name of ['nosuch', 'ul0', 'lo']) {
      const r = tunctl(['show', '--netns', ns, name])
      assert.is(r.code, 1, show(r))
      assert.match(r.stderr, `no tunnel named ${name}`)
      assert.is(r.stdout, '', 'nothing on stdout')
      const j = json(tunctlOk(['show', '--json', '--netns', ns, name], {code: 1}))
      assert.equal([j.ok, j.error.exitCode], [false, 1])
      assert.is(tunctl(['show', '--all', '--netns', ns, name]).code, 1, '--all too')
    }
  })

  t('del NAME...: every name is checked before anything is deleted; --ignore-missing; a link that is no tunnel is refused, even with --force', ({pair}) => {
    const ns = pair!.a
    tunctlOk(['apply', '--netns', ns, file('del.yaml', spec(GRE('gd1', 41), GRE('gd2', 42)))])
    const r = tunctl(['del', '--netns', ns, 'gd1', 'nosuch', 'gd2'])
    assert.is(r.code, 1, show(r))
    assert.match(r.stderr, /no tunnel named nosuch/)
    assert.ok(linkExists(ns, 'gd1') && linkExists(ns, 'gd2'), 'nothing deleted when one name is missing')
    for (const force of [[], ['--force']]) {
      const v = tunctl(['del', ...force, '--netns', ns, 'gd1', 'ul0'])
      assert.is(v.code, 1, show(v))
      assert.match(v.stderr, /ul0 is not a tunnel/)
      assert.ok(linkExists(ns, 'gd1') && linkExists(ns, 'ul0'), 'nothing deleted')
    }
    const d = json(tunctlOk(['del', '--json', '--ignore-missing', '--netns', ns, 'gd1', 'nosuch', 'gd2']))
    assert.equal([d.ok, [...d.deleted].sort(), d.missing], [true, ['gd1', 'gd2'], ['nosuch']])
    assert.not.ok(linkExists(ns, 'gd1') || linkExists(ns, 'gd2'), 'both deleted')
    assert.is(tunctl(['del', '--ignore-missing', '--netns', ns, 'gd1']).code, 0, 'again: nothing to do, no error')
  })

  t('the namespace lock: apply and del give up after --lock-timeout with 75 (and --json), plan and show do not wait', async ({pair}) => {
    const ns = pair!.a
    const f = file('lock.yaml', spec(GRE('gl1', 51)))
    tunctlOk(['apply', '--netns', ns, f]) // makes the lock file
    // one process holds the flock (sh exec's into sleep: killing it drops the lock)
    const holder: ChildProcess = spawn('sh', ['-c', 'exec 9>>"$1" && flock -x 9 && echo locked && exec sleep 60', 'sh', lockPath(ns)], {stdio: ['ignore', 'pipe', 'inherit']})
    try {
      let out = ''
      holder.stdout!.on('data', (d) => (out += d))
      await waitFor(() => out, (o) => o.includes('locked'), {what: 'flock holds the namespace lock'})
      const started = Date.now()
      const a = tunctl(['apply', '--lock-timeout', '1', '--netns', ns, file('lock2.yaml', spec(GRE('gl1', 51), GRE('gl2', 52)))])
      assert.is(a.code, 75, show(a))
      assert.ok(Date.now() - started >= 1000, 'waited the second it was given')
      assert.match(a.stderr, /--lock-timeout/)
      assert.not.ok(linkExists(ns, 'gl2'), 'nothing changed')
      const j = json(tunctlOk(['del', '--json', '--lock-timeout', '0', '--netns', ns, 'gl1'], {code: 75}))
      assert.equal([j.ok, j.error.exitCode, j.error.code], [false, 75, 'locked'])
      assert.ok(linkExists(ns, 'gl1'), 'del changed nothing')
      // SIGINT while waiting for the lock: exit 1, nothing changed, and with --json still one error document
      const waiting = tunctlChild(['apply', '--json', '--lock-timeout', '60', '--netns', ns, file('lock3.yaml', spec(GRE('gl1', 51), GRE('gl3', 53)))])
      await waitFor(() => openFiles(waiting.proc.pid!), (fds) => fds.includes(lockPath(ns)), {what: 'the apply waits on the lock file', timeoutMs: 30_000})
      waiting.proc.kill('SIGINT')
      const w = await exited(waiting, 'interrupted apply')
      assert.is(w.code, 1, w.out + w.err)
      assert.match(w.err, /SIGINT: stopped before any change/)
      const doc = JSON.parse(w.out)
      assert.equal([doc.ok, doc.error.exitCode, doc.error.code], [false, 1, 'interrupted'], w.out)
      assert.not.ok(linkExists(ns, 'gl3'), 'nothing changed')
      assert.equal(counts(tunctlOk(['plan', '--netns', ns, f]).stdout), [0, 0, 0, 0], 'plan reads without the lock')
      assert.ok(shownTunnels(json(tunctlOk(['show', '--json', '--netns', ns]))).gl1, 'show reads without the lock')
    } finally {
      holder.kill('SIGKILL')
    }
    await waitFor(() => holder.exitCode ?? holder.signalCode, (x) => x !== null, {what: 'the lock holder exits'})
    tunctlOk(['del', '--netns', ns, 'gl1'])
  })

  t('confirm with nothing pending: exit 1 saying so, in the host namespace and in a namespace', ({pair}) => {
    for (const where of [[], ['--netns', pair!.a]]) {
      const r = tunctl(['confirm', ...where])
      assert.is(r.code, 1, show(r))
      assert.match(r.stderr, /nothing awaits confirmation/)
      const j = json(tunctlOk(['confirm', '--json', ...where], {code: 1}))
      assert.is(j.ok, false)
    }
  })

  t('without privilege: validate and the host namespace read-only commands work; apply, del and confirm exit 77 and change nothing', ({pair}) => {
    const ns = pair!.a
    const f = file('nopriv.yaml', spec(GRE('gn1', 61)))
    tunctlOk(['apply', '--netns', ns, f])
    const ok = (args: string[]) => {
      const r = unprivileged(args)
      assert.is(r.code, 0, show(r as any))
      assert.is(r.stderr, '', `${args.join(' ')}: nothing on stderr (no warning either)`)
      return r
    }
    assert.match(ok(['validate', f]).stdout, /valid \(1 tunnel\)/)
    assert.match(ok(['plan', f]).stdout, SUMMARY) // the host namespace: observing needs no privilege
    ok(['show'])
    ok(['show', '--all'])
    ok(['export'])
    assert.match(ok(['doctor']).stdout, /CAP_NET_ADMIN NO/)
    assert.is(JSON.parse(ok(['doctor', '--json']).stdout).privileges.capNetAdmin, false)
    for (const args of [['apply', '--netns', ns, f], ['apply', f], ['del', '--netns', ns, 'gn1'], ['del', '--ignore-missing', 'x'], ['confirm', '--netns', ns], ['confirm'], ['plan', '--netns', ns, f]]) {
      const r = unprivileged(args)
      assert.is(r.code, 77, `${args.join(' ')}` + show(r as any))
      assert.match(r.stderr, /needs root/)
      const j = unprivileged([...args, '--json'])
      assert.equal([j.code, JSON.parse(j.stdout).error.exitCode], [77, 77], j.stdout)
    }
    assert.ok(linkExists(ns, 'gn1'), 'gn1 is still there')
    assert.is(shownTunnels(json(tunctlOk(['show', '--json', '--netns', ns]))).gn1.alive, true, 'its encapsulator runs')
    tunctlOk(['del', '--netns', ns, 'gn1'])
    assert.not.ok(existsSync(join(scratch, '.local')), 'no oclif data written to HOME')
  })
}

t.run()
