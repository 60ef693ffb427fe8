#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli.js: oclif, every command and their dependencies) into ONE CommonJS file,
// dist/bundle/tunctl.cjs, which bin/run loads and oclif's explicit command strategy points at, and makes its V8
// code cache (dist/bundle/tunctl.cjs.v8cache, see bin/run).
// Why one file: without it a start resolves and reads ~700 files (~2,600 stat calls); inside user-mode-linux, where
// every system call is a ptrace round trip, that alone took ~1.9 s of a 2.4 s `tunctl --version`.
// Why CommonJS: Node 20 has no code cache for ES modules; bin/run compiles a CommonJS file with vm.Script and its
// cachedData. import.meta.url is the bundle's own file URL (a banner defines it).
// The bundle sits two levels below the repo like dist/*/x.js, so paths relative to a module (schemas/,
// build/Release/, dist/bundle/engine.js) resolve the same. typescript stays out: oclif only loads it to run
// .ts commands through ts-node, which tunctl never does.
// The spec's JSON-Schema validator goes in compiled ahead of time (ajv standalone code, made with the CLI's own
// specAjv from the compiled dist/spec/schema.js) in place of src/spec/schema-precompiled.ts's `undefined`.
import {build} from 'esbuild'
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, rmSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import standalone from 'ajv/dist/standalone/index.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const {specAjv, SCHEMA_URL} = await import(pathToFileURL(join(repo, 'dist', 'spec', 'schema.js')).href)
const ajv = specAjv({code: {source: true, esm: true}})
const validatorCode = standalone.default(ajv, ajv.compile(JSON.parse(readFileSync(SCHEMA_URL, 'utf8')))) + '\nexport {validate as precompiled}\n'
const WARM_UP_SPEC = `version: 1
tunnels:
  w-gre:
    mode: gre
    local: 192.0.2.1
    remote: 198.51.100.7
    key: 42
    ttl: 64
    mtu: 1400
    addresses: [10.0.0.1/30, 2001:db8:1::1/64]
    routes: [{to: 10.1.0.0/16, via: 10.0.0.2, metric: 100}]
    driver: userspace
  w-ipip: {mode: ipip, local: 192.0.2.1, remote: 198.51.100.8}
  w-sit: {mode: sit, local: 192.0.2.1, remote: 198.51.100.9, addresses: [2001:db8:2::1/64]}
  w-isatap: {mode: isatap, local: 192.0.2.2, routers: [192.0.2.254]}
`
const precompiledSchema = {
  name: 'precompiled-schema',
  setup(b) {
    b.onLoad({filter: /[\\/]dist[\\/]spec[\\/]schema-precompiled\.js$/}, () => ({contents: validatorCode, loader: 'js', resolveDir: repo}))
  },
}
const bundle = join(repo, 'dist', 'bundle', 'tunctl.cjs')
const cache = `${bundle}.v8cache`
rmSync(cache, {force: true})
rmSync(join(repo, 'dist', 'bundle', 'tunctl.mjs'), {force: true}) // the ES-module bundle of earlier builds
await build({
  entryPoints: [join(repo, 'dist', 'cli.js')],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['typescript', '*.node'],
  define: {'import.meta.url': '__tunctlModuleUrl'},
  banner: {js: "const __tunctlModuleUrl = require('node:url').pathToFileURL(__filename).href;"},
  logLevel: 'warning',
  plugins: [precompiledSchema],
})
// the code cache: made by bin/run after one warm-up command (validating a spec with one tunnel of each mode), so
// that the functions of a start, of oclif's command dispatch and of the spec front end are compiled in it. No
// cache (a failed warm-up) only makes the start slower: say so, do not fail the build.
const warm = spawnSync(process.execPath, [join(repo, 'bin', 'run'), 'validate', '-'], {
  input: WARM_UP_SPEC,
  env: {...process.env, TUNCTL_WRITE_CODE_CACHE: cache},
  encoding: 'utf8',
})
if (warm.status !== 0 || !existsSync(cache)) process.stderr.write(`bundle: no code cache (the warm-up exited ${warm.status}): ${warm.stderr}\n`)

// The namespace's userspace engine (src/userspace/engine.ts) the same way, as dist/bundle/engine.js (engineArgv in
// src/userspace/control.ts runs it; its name still ends in engine.js, which is how the CLI recognises an engine
// process): as ~25 separate modules it answered on its control socket ~190 ms after spawn, most of it resolving
// and compiling them.
await build({
  entryPoints: [join(repo, 'dist', 'userspace', 'engine.js')],
  outfile: join(repo, 'dist', 'bundle', 'engine.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['*.node'],
  banner: {js: "import {createRequire as __tunctlRequire} from 'node:module'; const require = __tunctlRequire(import.meta.url);"},
  logLevel: 'warning',
})
