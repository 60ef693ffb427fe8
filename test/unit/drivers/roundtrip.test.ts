// decode(real `ip -j -d` output of the link made by encodeCreate(normalize(spec))) == normalize(spec), for every
// captured fixture in test/fixtures/ip (UML, iproute2 6.1, Linux 6.1), and the recorded commands are what the
// drivers produce today.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {DRIVERS, decodeLink, driverFor} from '../../../src/drivers/index.js'
import {parsePrl} from '../../../src/observe/parse.js'
import {MODES} from '../../../src/model/types.js'

const FX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'ip')
const specs = readdirSync(FX).filter((f) => f.endsWith('.spec.json')).sort()
const read = (f: string) => JSON.parse(readFileSync(join(FX, f), 'utf8'))

test('fixtures cover every mode', () => {
  for (const m of MODES) assert.ok(specs.some((s) => s.startsWith(m + '-')), `no fixture for ${m}`)
  assert.ok(specs.length >= 25, `only ${specs.length} fixtures`)
})

for (const s of specs) {
  const base = s.replace(/\.spec\.json$/, '')
  if (base.endsWith('-no6rdkernel')) continue
  test(`round trip ${base}`, () => {
    const spec = read(s)
    const link = read(base + '.json')
    const drv = driverFor(spec.mode)
    assert.equal(drv.validate(spec), [], 'the fixture spec is valid')
    const want = drv.normalize(spec)
    const tunnelTxt = join(FX, base + '.tunnel.txt')
    const ctx = existsSync(tunnelTxt) ? {prl: parsePrl(readFileSync(tunnelTxt, 'utf8'))} : undefined
    const got = drv.decode(link, ctx)
    assert.ok(got, 'decoded')
    // decode always reports the actual mtu; normalize only when the spec sets one
    if (want.mtu === undefined) delete got!.mtu
    assert.equal(got, want)
    // no other driver claims the link
    for (const d of Object.values(DRIVERS)) if (d.mode !== spec.mode) assert.is(d.decode(link, ctx), undefined, `${d.mode} claims ${base}`)
    assert.is(decodeLink(link, ctx)?.mode, spec.mode)
    const cmd = join(FX, base + '.cmd')
    if (existsSync(cmd)) {
      const recorded = readFileSync(cmd, 'utf8').trim().split('\n').filter((l) => !/ alias tunctl$| up$/.test(l))
      assert.equal(drv.encodeCreate(link.ifname, want).map((l) => 'ip ' + l.join(' ')), recorded)
    }
  })
}

test('a kernel without CONFIG_IPV6_SIT_6RD reports no 6rd: decode shows it is missing (verify catches it)', () => {
  const spec = read('sit-6rd-no6rdkernel.spec.json')
  const got = DRIVERS.sit.decode(read('sit-6rd-no6rdkernel.json'))!
  assert.is(DRIVERS.sit.normalize(spec).sixrdPrefix, '2001:db8::/32')
  assert.is(got.sixrdPrefix, undefined)
})

test('isatap without PRL context decodes an empty router list', () => {
  assert.equal(DRIVERS.isatap.decode(read('isatap-prl.json'))!.routers, [])
})

test.run()
