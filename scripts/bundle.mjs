#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli.js: oclif, every command and their dependencies) into ONE module,
// dist/bundle/tunctl.mjs, which bin/run loads and oclif's explicit command strategy points at.
// Why: without it a start resolves and reads ~700 files (~2,600 stat calls); inside user-mode-linux, where
// every system call is a ptrace round trip, that alone took ~1.9 s of a 2.4 s `tunctl --version`.
// The bundle sits two levels below the repo like dist/*/x.js, so paths relative to a module (schemas/,
// build/Release/, dist/userspace/engine.js) resolve the same. typescript stays out: oclif only loads it to run
// .ts commands through ts-node, which tunctl never does.
// The spec's JSON-Schema validator goes in compiled ahead of time (ajv standalone code, made with the CLI's own
// specAjv from the compiled dist/spec/schema.js) in place of src/spec/schema-precompiled.ts's `undefined`.
import {build} from 'esbuild'
import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import standalone from 'ajv/dist/standalone/index.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const {specAjv, SCHEMA_URL} = await import(pathToFileURL(join(repo, 'dist', 'spec', 'schema.js')).href)
const ajv = specAjv({code: {source: true, esm: true}})
const validatorCode = standalone.default(ajv, ajv.compile(JSON.parse(readFileSync(SCHEMA_URL, 'utf8')))) + '\nexport {validate as precompiled}\n'
const precompiledSchema = {
  name: 'precompiled-schema',
  setup(b) {
    b.onLoad({filter: /[\\/]dist[\\/]spec[\\/]schema-precompiled\.js$/}, () => ({contents: validatorCode, loader: 'js', resolveDir: repo}))
  },
}
await build({
  entryPoints: [join(repo, 'dist', 'cli.js')],
  outfile: join(repo, 'dist', 'bundle', 'tunctl.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['typescript', '*.node'],
  // CommonJS dependencies (oclif) call require(): give the ES module one
  banner: {js: "import {createRequire as __tunctlRequire} from 'node:module'; const require = __tunctlRequire(import.meta.url);"},
  logLevel: 'warning',
  plugins: [precompiledSchema],
})
// The namespace's userspace engine (src/userspace/engine.ts) the same way, as dist/bundle/engine.js (engineArgv in
// src/userspace/control.ts runs it; its name still ends in engine.js, which is how the CLI recognises an engine
// process): as ~40 separate modules it answered on its control socket ~190 ms after spawn, most of it resolving
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
