// The kernel's own choice among sibling tunnels, the reference for the userspace dispatch (native/dispatch.c,
// test/host/siblings.test.ts runs the same scenarios against the userspace engine and expects the same counts):
// sit + isatap on one local address — packets from the sit's remote go to sit, even those addressed to the isatap
// address; ipip with a fixed remote beside ipip remote any — the fixed one takes its remote's packets, the other
// the rest, and a fixed one set down leaves them to the other. No duplicate replies anywhere.
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml, ipn, nsExec} from './lib/sh.js'
import {yaml} from './lib/spec.js'
import {json, shownTunnels, specFile, tunctlOk} from './lib/tunctl.js'

interface State {
  p6?: Pair
  p4?: Pair
}
const s = suite<State>('kernel: sibling tunnels take each packet once', {})
s.after((st) => {
  removePair(st.p6)
  removePair(st.p4)
})

function apply(ns: string, tag: string, tunnels: Record<string, any>) {
  tunctlOk(['apply', '--netns', ns, specFile(tag, yaml({version: 1, tunnels}))])
}
function rx(ns: string, names: string[]): Record<string, number> {
  const t = shownTunnels(json(tunctlOk(['show', '--json', '--netns', ns])))
  return Object.fromEntries(names.map((n) => [n, t[n]?.counters?.rxPackets ?? NaN]))
}
const delta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - a[k]!]))
function ping3(ns: string, addr: string, extra: string[] = []) {
  const r = nsExec(ns, 'ping', [addr.includes(':') ? '-6' : '-4', '-c', '3', '-i', '0.2', '-W', '2', ...extra, addr])
  const text = r.stdout + r.stderr
  assert.not.match(text, /DUP!/, text)
  assert.match(text, /3 packets transmitted, 3 received/, text)
}

s('sit and isatap on one local address', (st) => {
  assertInUml()
  st.p6 = makePair('ksib6')
  const side = (me: string, peer: string, d: string, iid: string) => ({
    sit1: {mode: 'sit', local: me, remote: peer, ttl: 64, addresses: [`2001:db8:3::${d}/64`]},
    isa1: {mode: 'isatap', local: me, ttl: 64, routers: [{address: peer, default: true}], addresses: [`2001:db8:4::5efe:${iid}/64`]},
  })
  apply(st.p6.a, 'ks6a', side('198.51.100.1', '198.51.100.2', '1', 'c633:6401'))
  apply(st.p6.b, 'ks6b', side('198.51.100.2', '198.51.100.1', '2', 'c633:6402'))
  const names = ['sit1', 'isa1']
  let b0 = rx(st.p6.b, names)
  ping3(st.p6.a, '2001:db8:3::2')
  let db = delta(b0, rx(st.p6.b, names))
  assert.ok(db.sit1! >= 3, JSON.stringify(db))
  assert.is(db.isa1, 0, JSON.stringify(db))
  b0 = rx(st.p6.b, names)
  ping3(st.p6.a, '2001:db8:4::5efe:c633:6402')
  db = delta(b0, rx(st.p6.b, names))
  assert.ok(db.sit1! >= 3, `the isatap-addressed packets arrive on sit: ${JSON.stringify(db)}`)
  assert.is(db.isa1, 0, JSON.stringify(db))
  tunctlOk(['del', '--netns', st.p6.a, 'sit1'])
  tunctlOk(['del', '--netns', st.p6.b, 'sit1'])
  b0 = rx(st.p6.b, ['isa1'])
  ping3(st.p6.a, '2001:db8:4::5efe:c633:6402')
  db = delta(b0, rx(st.p6.b, ['isa1']))
  assert.ok(db.isa1! >= 3, JSON.stringify(db))
})

s('ipip with a fixed remote beside ipip remote any; a down tunnel is skipped', (st) => {
  st.p4 = makePair('ksib4')
  const {a, b} = st.p4
  ipn(b, 'addr', 'add', '198.51.100.3/24', 'dev', 'ul0')
  apply(a, 'ks4a', {
    ipip1: {mode: 'ipip', local: '198.51.100.1', remote: '198.51.100.2', ttl: 64, addresses: ['10.10.1.1/30']},
    ipip2: {mode: 'ipip', local: '198.51.100.1', remote: 'any', ttl: 64, addresses: ['10.10.9.1/24'], routes: [{to: '198.51.100.3/32', table: 100}]},
  })
  ipn(a, 'rule', 'add', 'from', '10.10.9.1', 'lookup', '100')
  apply(b, 'ks4b', {
    ipip1: {mode: 'ipip', local: '198.51.100.2', remote: '198.51.100.1', ttl: 64, addresses: ['10.10.1.2/30']},
    ipip3: {mode: 'ipip', local: '198.51.100.3', remote: '198.51.100.1', ttl: 64, addresses: ['10.10.9.2/24']},
  })
  const names = ['ipip1', 'ipip2']
  let a0 = rx(a, names)
  ping3(a, '10.10.1.2')
  let da = delta(a0, rx(a, names))
  assert.is(da.ipip1, 3, JSON.stringify(da))
  assert.is(da.ipip2, 0, JSON.stringify(da))
  a0 = rx(a, names)
  ping3(a, '198.51.100.3', ['-I', '10.10.9.1'])
  da = delta(a0, rx(a, names))
  assert.is(da.ipip2, 3, JSON.stringify(da))
  assert.is(da.ipip1, 0, JSON.stringify(da))
  ipn(a, 'link', 'set', 'ipip1', 'down')
  a0 = rx(a, names)
  nsExec(b, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', '10.10.1.1'])
  da = delta(a0, rx(a, names))
  assert.is(da.ipip2, 3, JSON.stringify(da))
  assert.is(da.ipip1, 0, JSON.stringify(da))
})

s.run()
