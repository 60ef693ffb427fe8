// Sibling userspace tunnels in one namespace take each packet exactly once, on the tunnel the kernel's lookup would
// pick (native/dispatch.c): sit + isatap on one local address, and ipip with a fixed remote beside ipip remote any.
// Before the receive dispatch, both daemons decapsulated the same packet and every ping got duplicate replies.
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {addonAvailable} from '../../src/userspace/addon.js'
import {statsPath} from '../../src/userspace/paths.js'
import {yaml} from '../uml/lib/spec.js'
import {type Pair, ipn, makePair, rawSendFrom, removePair, sleep, whyNoHost, nsExec} from './lib/netns.js'
import {tunctlOk as ok} from './lib/cli.js'

const repo = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..')
const scratch = mkdtempSync(join(tmpdir(), 'tunctl-sib-'))
process.on('exit', () => rmSync(scratch, {recursive: true, force: true}))

function applySpec(ns: string, file: string, tunnels: Record<string, any>) {
  const f = join(scratch, file)
  writeFileSync(f, yaml({version: 1, tunnels}))
  ok(['apply', '--netns', ns, f])
}

/** rx packets per tunnel from `show --json`, read after every daemon of ns wrote its counters once more */
async function rx(ns: string, names: string[]): Promise<Record<string, number>> {
  const since = Date.now()
  const deadline = since + 10_000
  for (;;) {
    const fresh = names.every((n) => {
      try {
        return Date.parse(JSON.parse(readFileSync(statsPath(n, ns), 'utf8')).updatedAt) > since
      } catch {
        return false
      }
    })
    if (fresh) break
    if (Date.now() > deadline) throw new Error(`counters of ${names} in ${ns} not updated`)
    await sleep(100)
  }
  const j = JSON.parse(ok(['show', '--json', '--netns', ns]).out)
  const list: any[] = Array.isArray(j) ? j : j.tunnels
  const out: Record<string, number> = {}
  for (const n of names) {
    const t = list.find((x) => x.name === n)
    assert.ok(t?.counters, `${n} in show --json: ${JSON.stringify(list)}`)
    out[n] = t.counters.rxPackets
  }
  return out
}

function pingOnce(ns: string, addr: string, extra: string[] = []): string {
  const r = nsExec(ns, 'ping', [addr.includes(':') ? '-6' : '-4', '-c', '3', '-i', '0.2', '-W', '2', ...extra, addr])
  const text = r.out + r.err
  assert.is(r.code, 0, text)
  assert.not.match(text, /DUP!/, `duplicate replies:\n${text}`)
  assert.match(text, /3 packets transmitted, 3 received/, text)
  return text
}

const delta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]))

const kernelHas = (mod: string) => existsSync(`/sys/module/${mod}`)
function whyNot(): string | undefined {
  return (
    whyNoHost() ??
    (!addonAvailable() ? 'native addon not built' : undefined) ??
    (!existsSync(join(repo, 'dist', 'commands')) ? 'CLI not built' : undefined) ??
    (kernelHas('ipip') || kernelHas('sit') ? 'this kernel has ipip/sit: auto would not pick userspace' : undefined)
  )
}
const why = whyNot()

// ---- sit + isatap on one local address (both sides) ----
{
  const t = suite('sibling tunnels: sit and isatap on one local address')
  let pair: Pair | undefined
  const side = (me: string, peer: string, d: string) => ({
    sit1: {mode: 'sit', local: me, remote: peer, ttl: 64, addresses: [`2001:db8:3::${d}/64`]},
    isa1: {mode: 'isatap', local: me, ttl: 64, routers: [{address: peer, default: true}], addresses: [`2001:db8:4::5efe:${me === '198.51.100.1' ? 'c633:6401' : 'c633:6402'}/64`]},
  })
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('sib6')
      applySpec(pair.a, 'sa.yaml', side('198.51.100.1', '198.51.100.2', '1'))
      applySpec(pair.b, 'sb.yaml', side('198.51.100.2', '198.51.100.1', '2'))
    })
    t.after(() => removePair(pair))

    t('ping through sit: no duplicates; only the sit tunnels count it (exact local+remote beats local only)', async () => {
      const a0 = await rx(pair!.a, ['sit1', 'isa1'])
      const b0 = await rx(pair!.b, ['sit1', 'isa1'])
      pingOnce(pair!.a, '2001:db8:3::2')
      const da = delta(a0, await rx(pair!.a, ['sit1', 'isa1']))
      const db = delta(b0, await rx(pair!.b, ['sit1', 'isa1']))
      assert.ok(db.sit1! >= 3 && da.sit1! >= 3, JSON.stringify({da, db}))
      assert.is(db.isa1, 0, JSON.stringify(db))
      assert.is(da.isa1, 0, JSON.stringify(da))
    })

    t('ping to the isatap address: no duplicates; the kernel still gives .1→.2 packets to sit (tunnels_r_l first)', async () => {
      const b0 = await rx(pair!.b, ['sit1', 'isa1'])
      pingOnce(pair!.a, '2001:db8:4::5efe:c633:6402')
      const db = delta(b0, await rx(pair!.b, ['sit1', 'isa1']))
      assert.ok(db.sit1! >= 3, JSON.stringify(db))
      assert.is(db.isa1, 0, JSON.stringify(db))
    })

    t('without the sit tunnels the isatap tunnels take those packets', async () => {
      ok(['del', '--netns', pair!.a, 'sit1'])
      ok(['del', '--netns', pair!.b, 'sit1'])
      const b0 = await rx(pair!.b, ['isa1'])
      pingOnce(pair!.a, '2001:db8:4::5efe:c633:6402')
      const db = delta(b0, await rx(pair!.b, ['isa1']))
      assert.ok(db.isa1! >= 3, JSON.stringify(db))
    })
  }
  t.run()
}

// ---- ipip with a fixed remote beside ipip remote any ----
{
  const t = suite('sibling tunnels: ipip fixed remote beside ipip remote any')
  let pair: Pair | undefined
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    t.before(() => {
      pair = makePair('sib4')
      // b has a second underlay address: its ipip3 (local .3) reaches a's remote-any ipip2
      ipn(pair.b, 'addr', 'add', '198.51.100.3/24', 'dev', 'ul0')
      applySpec(pair.a, 'ia.yaml', {
        ipip1: {mode: 'ipip', local: '198.51.100.1', remote: '198.51.100.2', ttl: 64, addresses: ['10.10.1.1/30']},
        // remote any: the userspace encapsulator sends to the inner destination (no neighbour table), so the inner
        // packets for 198.51.100.3 go through ipip2 by a policy route (table 100 for the inner source) while the
        // outer ones take the main table
        ipip2: {mode: 'ipip', local: '198.51.100.1', remote: 'any', ttl: 64, addresses: ['10.10.9.1/24'], routes: [{to: '198.51.100.3/32', table: 100}]},
      })
      ipn(pair.a, 'rule', 'add', 'from', '10.10.9.1', 'lookup', '100')
      applySpec(pair.b, 'ib.yaml', {
        ipip1: {mode: 'ipip', local: '198.51.100.2', remote: '198.51.100.1', ttl: 64, addresses: ['10.10.1.2/30']},
        ipip3: {mode: 'ipip', local: '198.51.100.3', remote: '198.51.100.1', ttl: 64, addresses: ['10.10.9.2/24']},
      })
    })
    t.after(() => removePair(pair))

    t('ping through the fixed-remote tunnel: no duplicates; counted on ipip1 only (pass 1 beats pass 3)', async () => {
      const a0 = await rx(pair!.a, ['ipip1', 'ipip2'])
      pingOnce(pair!.a, '10.10.1.2')
      const da = delta(a0, await rx(pair!.a, ['ipip1', 'ipip2']))
      assert.is(da.ipip1, 3, JSON.stringify(da))
      assert.is(da.ipip2, 0, JSON.stringify(da))
    })

    t('ping through the remote-any tunnel from another source: no duplicates; counted on ipip2 only', async () => {
      const a0 = await rx(pair!.a, ['ipip1', 'ipip2'])
      const b0 = await rx(pair!.b, ['ipip1', 'ipip3'])
      pingOnce(pair!.a, '198.51.100.3', ['-I', '10.10.9.1'])
      const da = delta(a0, await rx(pair!.a, ['ipip1', 'ipip2']))
      const db = delta(b0, await rx(pair!.b, ['ipip1', 'ipip3']))
      assert.is(da.ipip2, 3, JSON.stringify(da))
      assert.is(da.ipip1, 0, JSON.stringify(da))
      assert.is(db.ipip3, 3, JSON.stringify(db))
      assert.is(db.ipip1, 0, JSON.stringify(db))
    })

    t('ipip1 set down (IFF_UP): its remote\'s packets go to ipip2, as ip_tunnel_lookup skips a down tunnel', async () => {
      ipn(pair!.a, 'link', 'set', 'ipip1', 'down')
      try {
        const a0 = await rx(pair!.a, ['ipip1', 'ipip2'])
        nsExec(pair!.b, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '10.10.1.1']) // unanswered: a's address is on a down link
        const da = delta(a0, await rx(pair!.a, ['ipip1', 'ipip2']))
        assert.is(da.ipip2, 3, JSON.stringify(da))
        assert.is(da.ipip1, 0, JSON.stringify(da))
      } finally {
        ipn(pair!.a, 'link', 'set', 'ipip1', 'up')
      }
    })

  }
  t.run()
}

// ---- gre keys: a packet no tunnel takes is counted once ----
{
  const t = suite('sibling tunnels: gre keys; a packet no tunnel takes')
  let pair: Pair | undefined
  if (why) t.skip(`skipped: ${why}`, () => {})
  else {
    const noTunnel = (n: string) => JSON.parse(readFileSync(statsPath(n, pair!.a), 'utf8')).counters.drops?.no_tunnel ?? 0
    t.before(() => {
      pair = makePair('sibk')
      applySpec(pair.a, 'ga.yaml', {
        gre5: {mode: 'gre', local: '198.51.100.1', remote: '198.51.100.2', key: 5, ttl: 64, addresses: ['10.10.5.1/30']},
        gre6: {mode: 'gre', local: '198.51.100.1', remote: '198.51.100.2', key: 6, ttl: 64, addresses: ['10.10.6.1/30']},
      })
    })
    t.after(() => removePair(pair))

    t('key 7: no tunnel takes it; the oldest gre tunnel counts it once as no_tunnel', async () => {
      await rx(pair!.a, ['gre5', 'gre6'])
      const n5 = noTunnel('gre5'), n6 = noTunnel('gre6')
      const send = (key: number) => {
        const inner = Buffer.from('450000140000400040010000c0000201c0000202', 'hex')
        const gre = Buffer.from(`20000800${key.toString(16).padStart(8, '0')}`, 'hex')
        const outer = Buffer.from('4500003000004000402f0000c6336402c6336401', 'hex')
        rawSendFrom(pair!.b, Buffer.concat([outer, gre, inner]))
      }
      send(7)
      const deadline = Date.now() + 5000
      while (noTunnel('gre5') === n5 && Date.now() < deadline) await sleep(100)
      await rx(pair!.a, ['gre5', 'gre6'])
      assert.is(noTunnel('gre5') - n5, 1, 'gre5 (the oldest) counts it')
      assert.is(noTunnel('gre6') - n6, 0, 'gre6 does not')
    })

    t('key 6 goes to gre6 only (its inner packet is malformed: counted as gre6\'s drop, not gre5\'s)', async () => {
      const drops = (n: string) => JSON.parse(readFileSync(statsPath(n, pair!.a), 'utf8')).counters
      await rx(pair!.a, ['gre5', 'gre6'])
      const c5 = drops('gre5'), c6 = drops('gre6')
      // inner: an IPv4 header claiming 1000 bytes (inner_malformed in the selected tunnel)
      const inner = Buffer.from('450003e80000400040010000c0000201c0000202', 'hex')
      rawSendFrom(pair!.b, Buffer.concat([Buffer.from('4500003000004000402f0000c6336402c6336401', 'hex'), Buffer.from('2000080000000006', 'hex'), inner]))
      const deadline = Date.now() + 5000
      while ((drops('gre6').drops?.inner_malformed ?? 0) === (c6.drops?.inner_malformed ?? 0) && Date.now() < deadline) await sleep(100)
      await rx(pair!.a, ['gre5', 'gre6'])
      assert.is((drops('gre6').drops?.inner_malformed ?? 0) - (c6.drops?.inner_malformed ?? 0), 1)
      assert.is(drops('gre5').rxDropped - c5.rxDropped, 0, 'gre5 counts nothing')
    })
  }
  t.run()
}
