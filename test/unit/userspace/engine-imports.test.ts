// The engine's start is on an apply's critical path (the CLI waits for it before its commit): its module graph
// must not pull in what only the CLI needs. The yaml library (the spec parser) took 60-250 ms of each engine start
// when src/ipsec/keyfile.ts reached it through src/spec/positions.ts; esbuild's metafile lists the whole graph.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {join} from 'node:path'
import {build} from 'esbuild'

const repo = join(import.meta.dirname, '..', '..', '..')

test('the engine (src/userspace/engine.ts) does not load the yaml library', async () => {
  const r = await build({entryPoints: [join(repo, 'src/userspace/engine.ts')], bundle: true, write: false, metafile: true, platform: 'node', format: 'esm', external: ['*.node'], logLevel: 'silent'})
  const inputs = Object.keys(r.metafile.inputs)
  assert.ok(inputs.some((f) => f.endsWith('src/userspace/engine.ts')), inputs.join('\n'))
  assert.ok(inputs.some((f) => f.endsWith('src/ipsec/keyfile.ts')), 'the engine reads key files (the graph is the real one)')
  assert.equal(inputs.filter((f) => /node_modules\/yaml\//.test(f)), [])
})

test.run()
