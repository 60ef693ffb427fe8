// Hostile surroundings, end to end in fresh namespaces: foreign links named with escape sequences / control
// characters / invalid UTF-8 and aliases with such bytes never break show, plan, apply or del and are never
// printed raw; a tunnel route never replaces another device's route (apply refuses with 65, the namespace's
// default route unchanged; del leaves foreign routes intact); names ip -batch cannot carry are refused.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {type Pair, makePair, removePair, run, whyNoUserspaceCli} from './lib/netns.js'
import {tunctl} from './lib/cli.js'

const scratch = mkdtempSync(join(tmpdir(), 'tunctl-hostile-'))


/** No terminal control character (C0 but newline/tab, DEL, C1) and no U+FFFD made from raw bytes reaches the user. */
function assertClean(r: {out: string; err: string}, what: string) {
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/
  assert.not.ok(bad.test(r.out), `${what}: raw control character on stdout: ${JSON.stringify(r.out)}`)
  assert.not.ok(bad.test(r.err), `${what}: raw control character on stderr: ${JSON.stringify(r.err)}`)
}

function spec(file: string, body: string): string {
  const f = join(scratch, file)
  writeFileSync(f, `version: 1\ntunnels:\n${body}`)
  return f
}

const GRE = (routes: string) => `  gre1:
    mode: gre
    local: 198.51.100.1
    remote: 198.51.100.2
    key: 7
    addresses: [10.0.0.1/30]
    routes:
${routes}`

const routesJson = (ns: string) => JSON.parse(run('ip', ['-n', ns, '-j', 'route', 'show', 'table', 'all']).out) as any[]
const defaultRoutes = (ns: string) => routesJson(ns).filter((r) => r.dst === 'default' && (r.table === undefined || r.table === 'main'))

const whyNot = whyNoUserspaceCli
const why = whyNot()

const t = suite('hostile surroundings')
let pair: Pair | undefined
t.before(() => {
  if (why) return
  pair = makePair('hx')
  const ns = pair.a
  // foreign links: a name with an escape sequence whose peer has an invalid-UTF-8 name, one with a control
  // character, and an alias with `'`, invalid UTF-8 and a clear-screen sequence (ip -j prints all raw)
  const sh = (cmd: string) => {
    const r = run('sh', ['-c', cmd])
    if (r.code !== 0) throw new Error(`${cmd}: ${r.err}`)
  }
  sh(`ip -n ${ns} link add "$(printf 'ev\\033[31mil')" type veth peer name "$(printf 'x\\377y')"`)
  sh(`ip -n ${ns} link add "$(printf 'a\\001b')" type veth peer name "$(printf 'c\\177d')"`)
  sh(`ip -n ${ns} link set dev "$(printf 'a\\001b')" alias "$(printf "it's \\377\\376 \\033[2J tunctl")"`)
  // the alias tunctl on a foreign link whose name tunctl cannot manage: never taken as tunctl's
  sh(`ip -n ${ns} link set dev "$(printf 'c\\177d')" alias tunctl`)
  // the namespace's own default route, on another device
  sh(`ip -n ${ns} route add default via 198.51.100.2 dev ul0`)
  sh(`ip -n ${ns} route add 10.77.0.0/16 via 198.51.100.2 dev ul0 metric 100`)
})
t.after(() => {
  removePair(pair)
  rmSync(scratch, {recursive: true, force: true})
})

if (why) {
  t.skip(`hostile: skipped: ${why}`, () => {})
} else {
  t('show, show --all, show --json survive foreign names and aliases; nothing raw is printed', () => {
    const ns = pair!.a
    assert.throws(() => JSON.parse(run('ip', ['-n', ns, '-j', '-d', 'link', 'show']).out)) // the hazard is real
    for (const args of [['show'], ['show', '--all'], ['show', '--all', '--json'], ['export', '--all']]) {
      const r = tunctl([...args, '--netns', ns])
      assert.is(r.code, 0, `${args.join(' ')}: ${r.code}\n${r.err}`)
      assertClean(r, args.join(' '))
    }
    const j = JSON.parse(tunctl(['show', '--all', '--json', '--netns', ns]).out)
    assert.equal(j.tunnels, [])
  })

  t('a default route on another device: apply refuses with 65 at the route, the default route unchanged', () => {
    const ns = pair!.a
    const before = defaultRoutes(ns)
    assert.is(before.length, 1)
    const f = spec('default.yaml', GRE('      - to: default\n        via: 10.0.0.2\n'))
    for (const cmd of ['plan', 'apply']) {
      const r = tunctl([cmd, f, '--netns', ns])
      assert.is(r.code, 65, `${cmd}: ${r.code}\n${r.out}\n${r.err}`)
      assert.match(r.err, new RegExp(`${f.replace(/[.]/g, '\\.')}:10:9: tunnel "gre1": route to 0\\.0\\.0\\.0/0 \\(table main, metric 0\\) is already held by a route on "ul0"`))
      assertClean(r, cmd)
    }
    assert.equal(defaultRoutes(ns), before)
    assert.not.ok(run('ip', ['-n', ns, 'link', 'show', 'dev', 'gre1']).code === 0, 'no tunnel was created')
  })

  t('apply with routes beside foreign ones (another metric), plan/show clean; del leaves foreign routes intact', () => {
    const ns = pair!.a
    // the routes someone made (not the kernel's own, which IPv6 link-local setup adds asynchronously under load)
    const foreign = () => routesJson(ns).filter((r) => r.dev !== 'gre1' && r.protocol !== 'kernel')
    const before = foreign()
    assert.ok(before.some((r) => r.dst === 'default') && before.some((r) => r.dst === '10.77.0.0/16'), JSON.stringify(before))
    const f = spec('ok.yaml', GRE('      - to: 10.77.0.0/16\n      - to: default\n        via: 10.0.0.2\n        metric: 500\n'))
    const plan = tunctl(['plan', f, '--netns', ns, '--show-commands'])
    assert.is(plan.code, 0, plan.err)
    assert.match(plan.out, /ip route add 10\.77\.0\.0\/16 dev gre1 table 254/)
    assert.not.match(plan.out, /route replace/)
    assertClean(plan, 'plan')
    const a = tunctl(['apply', f, '--netns', ns, '--verbose'])
    assert.is(a.code, 0, `${a.out}\n${a.err}`)
    assertClean(a, 'apply')
    const mine = routesJson(ns).filter((r) => r.dev === 'gre1' && r.protocol !== 'kernel')
    assert.is(mine.length, 2, JSON.stringify(mine))
    const show = tunctl(['show', '--all', '--netns', ns])
    assert.is(show.code, 0, show.err)
    assert.match(show.out, /^gre1 /m)
    assertClean(show, 'show')
    assert.is(tunctl(['apply', f, '--netns', ns]).code, 0) // second apply: no change, no failure
    const d = tunctl(['del', 'gre1', '--netns', ns])
    assert.is(d.code, 0, d.err)
    assertClean(d, 'del')
    assert.equal(foreign(), before)
    assert.is(defaultRoutes(ns).length, 1)
  })

  t('names ip -batch cannot carry are refused by validate and apply (65), nothing created', () => {
    const ns = pair!.a
    const f = spec('hash.yaml', '  "gre#1":\n    mode: gre\n    local: 198.51.100.1\n    remote: 198.51.100.2\n')
    for (const cmd of [['validate', f], ['apply', f, '--netns', ns]]) {
      const r = tunctl(cmd)
      assert.is(r.code, 65, `${cmd[0]}: ${r.err}`)
      assert.match(r.err, /:3:3: tunnel name "gre#1" must not contain '#'/)
      assert.match(r.err, /\n {4}"gre#1":\n {4}\^/)
    }
    assert.is(run('ip', ['-n', ns, 'link', 'show', 'dev', 'gre']).code === 0, false)
  })
}

t.run()
