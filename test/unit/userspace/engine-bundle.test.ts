// The engine runs as one bundled module (dist/bundle/engine.js, scripts/bundle.mjs): as the ~25 modules of
// dist/userspace/ it answered ~190 ms after spawn, bundled ~80 ms (an apply waits for it before its commit).
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {spawnSync} from 'node:child_process'
import {ENGINE_BUNDLE, ensureBuilt} from '../../lib/build.js'
import {engineArgv, isDaemonAlive} from '../../../src/userspace/control.js'

test.before(() => ensureBuilt())

test('engineArgv runs the bundled engine, named so that the CLI recognises it as an engine', () => {
  const argv = engineArgv('/run/tunctl/ns/x')
  assert.equal(argv.slice(-2), [ENGINE_BUNDLE, '/run/tunctl/ns/x'])
  assert.is(argv[0], process.execPath)
  // isDaemonAlive's command-line check accepts it (this process is not an engine: the check must say no)
  assert.match(argv.at(-2)!, /(^|\/)engine\.js$/)
  assert.is(isDaemonAlive(process.pid), false)
})

test('the bundled engine loads and runs its main (usage without a run dir: exit 64)', () => {
  const r = spawnSync(process.execPath, [ENGINE_BUNDLE], {encoding: 'utf8'})
  assert.is(r.stderr, 'usage: engine.js <run dir>\n')
  assert.is(r.status, 64)
})

test.run()
