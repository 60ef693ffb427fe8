#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli.js: oclif, every command and their dependencies) into ONE module,
// dist/bundle/tunctl.mjs, which bin/run loads and oclif's explicit command strategy points at.
// Why: without it a start resolves and reads ~700 files (~2,600 stat calls); inside user-mode-linux, where
// every system call is a ptrace round trip, that alone took ~1.9 s of a 2.4 s `tunctl --version`.
// The bundle sits two levels below the repo like dist/*/x.js, so paths relative to a module (schemas/,
// build/Release/, dist/userspace/engine.js) resolve the same. typescript stays out: oclif only loads it to run
// .ts commands through ts-node, which tunctl never does.
import {build} from 'esbuild'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
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
})
