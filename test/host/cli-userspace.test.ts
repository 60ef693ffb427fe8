// The CLI end to end on this host, where the kernel has no tunnel modules: `tunctl apply` of each example (and its
// mirror in the peer namespace) picks the userspace driver by itself, traffic flows, `show` reports the running
// encapsulator with counters, a second apply changes nothing, a killed encapsulator is restarted by apply, and
// `del` stops it and removes its device and state.
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import {shownTunnels} from '../lib/schemas.js'
import * as assert from 'uvu/assert'
import {addonAvailable} from '../../src/userspace/addon.js'
import {isDaemonAlive} from '../../src/userspace/control.js'
import {nsDir, readRecord, recordPath} from '../../src/userspace/paths.js'
import {example, exampleName, examplePath, mirror, yaml, type Mode} from '../uml/lib/spec.js'
import {type Pair, makePair, ping, removePair, run, whyNoHost} from './lib/netns.js'
import {waitFor} from '../lib/wait.js'
import {tunctl, tunctlOk as ok} from './lib/cli.js'

const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-cli-'))

function showJson(ns: string): any[] {
  return Object.values(shownTunnels(JSON.parse(ok(['show', '--json', '--netns', ns]).out)))
}

const kernelHas = (mod: string) => existsSync(`/sys/module/${mod}`)
function whyNot(): string | undefined {
  const h = whyNoHost()
  if (h) return h
  if (!addonAvailable()) return 'native addon not built'
  if (!existsSync(join(repo, 'dist', 'commands'))) return 'CLI not built (npx tsc -p .)'
  if (kernelHas('ip_gre') || kernelHas('ipip') || kernelHas('sit')) return 'this kernel has tunnel modules: auto would not pick the userspace driver'
  return undefined
}

const CASES: Array<[Mode, string, string]> = [
  ['gre', '10.10.2.2', '10.10.2.1'],
  ['ipip', '10.10.1.2', '10.10.1.1'],
  ['sit', '2001:db8:3::2', '2001:db8:3::1'],
  ['isatap', '2001:db8:4::5efe:c633:6402', '2001:db8:4::5efe:c633:6401'],
]

const why = whyNot()
for (const [mode, innerB, innerA] of CASES) {
  const t = suite(`tunctl CLI with the userspace driver: ${mode}`)
  if (why) {
    t.skip(`cli userspace ${mode}: skipped: ${why}`, () => {})
    t.run()
    continue
  }
  let pair: Pair | undefined
  const name = exampleName(mode)
  const mirrorFile = join(scratch, `${mode}-mirror.yaml`)
  t.before(() => {
    pair = makePair(`c${mode.slice(0, 3)}`)
    writeFileSync(mirrorFile, yaml(mirror(example(mode))))
  })
  t.after(() => removePair(pair))

  t('apply (auto driver) in both namespaces picks userspace; traffic flows both ways', () => {
    const p = ok(['plan', '--netns', pair!.a, examplePath(mode)])
    assert.match(p.out, new RegExp(`\\+ ${name} \\(${mode}, userspace\\)`))
    // the engine sets the created device's mark, MTU, addresses and up state (no ip lines for them), and says so
    const spec = example(mode).tunnels[name] as {addresses: string[]; mtu?: number}
    const shown = ok(['plan', '--show-commands', '--netns', pair!.a, examplePath(mode)]).out
    const start = shown.split('\n').find((l) => l.includes(`$ (userspace) start encapsulator for ${name}, its new device: `))
    assert.ok(start, shown)
    const what = start!.split('its new device: ')[1]!.split(', ')
    assert.equal(what.sort(), ['alias tunctl', ...(spec.mtu ? [`mtu ${spec.mtu}`] : []), ...spec.addresses.map((a) => `addr ${a}`), 'up'].sort())
    assert.not.match(shown, new RegExp(`\\] ip (link set|addr add) .*dev ${name}\\b`), shown)
    ok(['apply', '--netns', pair!.a, examplePath(mode)])
    const dev = JSON.parse(run('ip', ['-n', pair!.a, '-j', '-d', 'addr', 'show', 'dev', name]).out)[0]
    assert.equal([dev.ifalias, dev.flags.includes('UP'), dev.linkinfo?.info_data?.persist], ['tunctl', true, true])
    if (spec.mtu) assert.is(dev.mtu, spec.mtu)
    const global = dev.addr_info.filter((a: any) => a.scope === 'global').map((a: any) => `${a.local}/${a.prefixlen}`)
    assert.equal(global.sort(), [...spec.addresses].sort())
    ok(['apply', '--netns', pair!.b, mirrorFile])
    const ab = ping(pair!.a, innerB)
    assert.ok(ab.ok, ab.out)
    const ba = ping(pair!.b, innerA)
    assert.ok(ba.ok, ba.out)
  })

  t('show reports the userspace driver, a live encapsulator and counters; a second apply changes nothing', async () => {
    // counters are rewritten by the encapsulator every second
    const tun = await waitFor(() => showJson(pair!.a).find((x) => x.name === name), (t) => t?.counters?.txPackets > 0 && t?.counters?.rxPackets > 0, {what: `${name} counters in show --json`, timeoutMs: 4000})
    assert.is(tun.driver, 'userspace')
    assert.is(tun.alive, true)
    assert.ok(tun.pid > 0)
    assert.ok(tun.counters?.txPackets > 0 && tun.counters?.rxPackets > 0, JSON.stringify(tun.counters))
    const again = ok(['apply', '--netns', pair!.a, examplePath(mode)])
    assert.match(again.out, /No changes/)
  })

  t('export --json is a spec apply reads back: no changes', () => {
    const exported = JSON.parse(ok(['export', '--json', '--netns', pair!.a]).out)
    assert.is(exported.version, 1)
    assert.is(exported.tunnels[name]?.mode, mode, JSON.stringify(exported))
    const f = join(scratch, `${mode}-export.json`)
    writeFileSync(f, JSON.stringify(exported))
    assert.is(tunctl(['plan', '--detailed-exitcode', '--netns', pair!.a, f]).code, 0, 'plan of the export: no changes')
    assert.match(ok(['apply', '--netns', pair!.a, f]).out, /No changes/)
  })

  t('a second userspace tunnel with the same identity is refused at its file:line:col (exit 65)', () => {
    const spec = example(mode)
    const twin = {...spec.tunnels[name], addresses: []} as any
    const f = join(scratch, `${mode}-twin.yaml`)
    writeFileSync(f, yaml({version: 1, tunnels: {[`${name}b`]: twin}}))
    const r = tunctl(['plan', '--netns', pair!.a, f])
    assert.is(r.code, 65, r.out + r.err)
    assert.match(r.err, new RegExp(`${f.replace(/[.]/g, '\\.')}:3:3: tunnel "${name}b": same kind, local, remote, dev`), r.err)
    assert.match(r.err, new RegExp(`existing tunctl-managed tunnel ${name}; both would receive the same packets`), r.err)
  })

  t('a killed encapsulator shows as dead and the next apply restarts it', async () => {
    const pid = showJson(pair!.a).find((x) => x.name === name).pid
    process.kill(pid, 'SIGKILL')
    await waitFor(() => showJson(pair!.a).find((x) => x.name === name).alive, (alive) => alive === false, {what: 'the killed encapsulator shown as dead'})
    ok(['apply', '--netns', pair!.a, examplePath(mode)])
    const tun = showJson(pair!.a).find((x) => x.name === name)
    assert.is(tun.alive, true)
    assert.is.not(tun.pid, pid)
    const ab = ping(pair!.a, innerB)
    assert.ok(ab.ok, ab.out)
  })

  t('del stops the encapsulator and removes its device and state', () => {
    const pid = showJson(pair!.a).find((x) => x.name === name).pid
    ok(['del', '--netns', pair!.a, name])
    assert.is.not(run('ip', ['-n', pair!.a, 'link', 'show', 'dev', name]).code, 0, 'device')
    assert.is(readRecord(nsDir(pair!.a))?.tunnels[name], undefined, 'its entry in the state record')
    assert.is(existsSync(recordPath(nsDir(pair!.a))), false, 'the state record (no userspace tunnel left)')
    assert.is(isDaemonAlive(pid), false, 'daemon process')
  })

  t.run()
}

process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))
