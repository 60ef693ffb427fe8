#!/usr/bin/env node
// The userspace engine's boot as the CLI sees it (issue #6 item 6): spawn (`ip netns exec NS node engine.js DIR`, as
// control.ts launchEngine) → the CLI knows the engine answers. Two ways, alternating, N runs each:
//   ready pipe: the engine writes its pid on an inherited pipe once its control socket listens (this release);
//   30 ms poll: look for .engine.json and ping the socket every 30 ms (the release before).
// Usage (root): node bench/engine-boot.mjs [N=5] [ENGINE=dist/bundle/engine.js, what engineArgv runs]   Runs in a namespace it makes
// and removes; the run dirs are temporary directories under /dev/shm.
import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {connect} from 'node:net'
import {join, resolve} from 'node:path'

const n = Number(process.argv[2] ?? 5)
const engine = resolve(process.argv[3] ?? join(import.meta.dirname, '..', 'dist', 'bundle', 'engine.js'))
if (process.getuid?.() !== 0) {
  console.error('bench/engine-boot.mjs needs root')
  process.exit(77)
}
const ns = `tunctl-boot-${process.pid}`
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const ping = (sock) =>
  new Promise((res) => {
    const c = connect(sock)
    c.on('connect', () => c.write('{"op":"ping"}\n'))
    c.on('data', () => (c.destroy(), res(true)))
    c.on('error', () => res(false))
  })

async function boot(how) {
  const dir = mkdtempSync('/dev/shm/tunctl-boot-')
  const t0 = performance.now()
  const e = spawn('ip', ['netns', 'exec', ns, process.execPath, engine, dir], {stdio: ['ignore', 'ignore', 'inherit', 'pipe'], env: {...process.env, TUNCTL_ENGINE_READY_FD: '3'}})
  let ms
  try {
    if (how === 'pipe') {
      ms = await new Promise((res, rej) => {
        e.stdio[3].on('data', () => res(performance.now() - t0))
        e.stdio[3].on('close', () => rej(new Error('the ready pipe closed without a line')))
      })
    } else {
      while (ms === undefined) {
        if (existsSync(join(dir, '.engine.json')) && (await ping(join(dir, '.engine.sock')))) ms = performance.now() - t0
        else await sleep(30)
      }
    }
  } finally {
    e.kill('SIGTERM')
    await new Promise((r) => (e.exitCode !== null ? r() : e.on('exit', r)))
    rmSync(dir, {recursive: true, force: true})
  }
  return ms
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]
execFileSync('ip', ['netns', 'add', ns])
try {
  const r = {pipe: [], poll30: []}
  for (let i = 0; i < n; i++) for (const how of Object.keys(r)) r[how].push(await boot(how))
  const f = (a) => `${median(a).toFixed(0)} ms (min ${Math.min(...a).toFixed(0)}, max ${Math.max(...a).toFixed(0)})`
  console.log(`| engine boot, spawn → the CLI knows it answers (median of ${n}) | |`)
  console.log('|---|---:|')
  console.log(`| ready pipe (this release) | ${f(r.pipe)} |`)
  console.log(`| .engine.json + ping every 30 ms (the release before) | ${f(r.poll30)} |`)
  console.log(`| load average | ${execFileSync('cat', ['/proc/loadavg']).toString().split(' ').slice(0, 3).join(' ')} |`)
} finally {
  execFileSync('ip', ['netns', 'del', ns])
}
