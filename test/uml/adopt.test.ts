// --adopt end to end on real kernel tunnels: a foreign gre tunnel blocks apply (65, positioned) and is left
// untouched; apply --adopt takes it over in place (same ifindex, now owned, on the kernel driver), a second apply
// changes nothing, and del then needs no --force. A failed adopting apply hands the tunnel back.
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {A_ADDR, ifindex, makePair, removePair, type Pair} from './lib/ns.js'
import {assertInUml, ipn, ipnJson} from './lib/sh.js'
import {json, planCommands, show, shownTunnels, specFile, tunctl, tunctlOk} from './lib/tunctl.js'

const s = suite<{pair?: Pair; file?: string; index?: number}>('kernel --adopt', {})
s.after((st) => removePair(st.pair))

const alias = (ns: string, name: string) => ipnJson(ns, '-d', 'link', 'show', 'dev', name)[0]?.ifalias

s('a foreign tunnel blocks apply with its position and stays untouched', (st) => {
  assertInUml()
  st.pair = makePair('adopt')
  const a = st.pair.a
  ipn(a, 'link', 'add', 'gre9', 'type', 'gre', 'local', A_ADDR, 'remote', '198.51.100.9', 'key', '9', 'ttl', '64')
  st.index = ifindex(a, 'gre9')
  st.file = specFile('adopt', `version: 1\ntunnels:\n  gre9:\n    mode: gre\n    local: ${A_ADDR}\n    remote: 198.51.100.9\n    key: 9\n    ttl: 64\n    mtu: 1400\n`)
  const r = tunctl(['apply', '--netns', a, st.file])
  assert.is(r.code, 65, show(r))
  assert.match(r.stderr, /:3:3: tunnel "gre9": a gre tunnel of that name exists but is not managed by tunctl/, show(r))
  assert.is(alias(a, 'gre9'), undefined, 'still not ours')
})

s('a failed adopting apply hands it back unchanged', (st) => {
  const a = st.pair!.a
  // fail the last line of the batch, so the earlier ones (mtu, ownership alias) ran and must be undone
  const lines = planCommands(tunctlOk(['plan', '--show-commands', '--adopt', 'gre9', '--netns', a, st.file!]).stdout)
  assert.ok(lines.length >= 2, `the adopting plan changes the mtu and takes ownership: ${lines.join(' | ')}`)
  const r = tunctl(['apply', '--adopt', 'gre9', '--netns', a, st.file!], {env: {TUNCTL_FAIL_AT_LINE: String(lines.length)}})
  assert.is(r.code, 1, show(r))
  assert.is(ifindex(a, 'gre9'), st.index, 'same link')
  assert.is(alias(a, 'gre9'), undefined, 'ownership alias cleared again')
  assert.is.not(ipnJson(a, 'link', 'show', 'dev', 'gre9')[0].mtu, 1400, 'the mtu change was rolled back')
})

s('apply --adopt takes it over in place; a second apply changes nothing; del needs no --force', (st) => {
  const a = st.pair!.a
  tunctlOk(['apply', '--adopt', 'gre9', '--netns', a, st.file!])
  assert.is(ifindex(a, 'gre9'), st.index, 'adopted in place (same ifindex)')
  const t = shownTunnels(json(tunctlOk(['show', '--json', '--netns', a]))).gre9
  assert.ok(t, 'show lists the adopted tunnel as owned')
  assert.is(t.owned, true)
  assert.is(t.driver, 'kernel')
  assert.is(t.params.mtu, 1400)
  assert.match(tunctlOk(['apply', '--netns', a, st.file!]).stdout, /No changes/)
  tunctlOk(['del', '--netns', a, 'gre9'])
  assert.is(ifindex(a, 'gre9'), undefined)
})

s.run()
