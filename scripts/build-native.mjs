#!/usr/bin/env node
// Builds the userspace encapsulator addon (build/Release/tunctl_native.node) with node-gyp against the
// headers of the running node (--nodedir = the prefix holding include/node); never downloads headers.
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function nodeDir() {
  if (process.env.TUNCTL_NODEDIR) return process.env.TUNCTL_NODEDIR
  // process.execPath = PREFIX/bin/node → PREFIX/include/node/node_api.h
  const prefix = dirname(dirname(process.execPath))
  for (const p of [prefix, '/usr', '/usr/local']) {
    if (existsSync(join(p, 'include', 'node', 'node_api.h'))) return p
  }
  return undefined
}

function nodeGyp() {
  const req = createRequire(import.meta.url)
  const candidates = []
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp)
  try {
    candidates.push(req.resolve('node-gyp/bin/node-gyp.js'))
  } catch {}
  const prefix = dirname(dirname(process.execPath))
  candidates.push(
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
  )
  return candidates.find((c) => c && existsSync(c))
}

const dir = nodeDir()
const gyp = nodeGyp()
if (!dir || !gyp) {
  const why = !dir ? 'node headers (include/node/node_api.h) not found' : 'node-gyp not found'
  // The kernel driver works without the addon; only the userspace fallback needs it.
  process.stderr.write(`tunctl: userspace encapsulator not built: ${why}\n`)
  process.exit(process.env.TUNCTL_REQUIRE_NATIVE ? 1 : 0)
}
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${dir}`], {cwd: root, stdio: 'inherit'})
if (r.status !== 0) {
  process.stderr.write('tunctl: building the userspace encapsulator failed\n')
  process.exit(process.env.TUNCTL_REQUIRE_NATIVE ? 1 : 0)
}
