#!/usr/bin/env node
// The spec front end's cold cost at scale (issue #6 item 6: the "spec parsed" phase of an apply of 1000 tunnels).
// Makes the spec bench/scale.sh applies (N userspace gre tunnels, each with a key and an address) and one of a
// single tunnel, then in fresh processes, ROUNDS times, interleaved:
//   validate: `node bin/run validate FILE` (the CLI bundle with its code cache, as an apply parses): wall time of
//     the N-tunnel file minus that of the 1-tunnel file = what the N tunnels cost the CLI; the same in CPU time
//     (/usr/bin/time: less sensitive to a loaded machine, but it counts V8's GC and compiler threads too);
//   parseSpec: one call of dist/spec/load.js's parseSpec on the N-tunnel text in a fresh `node` (no bundle, no
//     code cache: the library and checks cold), timed inside the process.
// With --base DIR (another checkout, built), the same runs of DIR interleave with this one's: a before/after in
// one loop, which a loaded machine still compares fairly. Prints medians (min-max) and the load average.
// Usage: node bench/spec-parse.mjs [--tunnels N=1000] [--rounds R=9] [--base DIR]   No root needed; changes nothing.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'
import {pathToFileURL} from 'node:url'
import {parseArgs} from 'node:util'

const {values: opt} = parseArgs({options: {tunnels: {type: 'string', default: '1000'}, rounds: {type: 'string', default: '9'}, base: {type: 'string'}}})
const n = Number(opt.tunnels)
const rounds = Number(opt.rounds)
const here = resolve(import.meta.dirname, '..')
const repos = [...(opt.base ? [['base', resolve(opt.base)]] : []), ['this', here]]

// tunnel i: gre key i, inner address 4i + 1 in 10.100.0.0/14, /30 (bench/scale.sh's `spec`)
const addr = (i) => {
  const v = 4 * i
  return `10.${100 + Math.floor(v / 65536)}.${Math.floor(v / 256) % 256}.${(v % 256) + 1}`
}
const spec = (count) => {
  let s = 'version: 1\ntunnels:\n'
  for (let i = 1; i <= count; i++) {
    s += `  s${i}:\n    mode: gre\n    driver: userspace\n    local: 198.51.100.1\n    remote: 198.51.100.2\n    key: ${i}\n    addresses: [${addr(i)}/30]\n`
  }
  return s
}
const dir = mkdtempSync(join(tmpdir(), 'tunctl-spec-bench-'))
const big = join(dir, 'big.yaml')
const one = join(dir, 'one.yaml')
writeFileSync(big, spec(n))
writeFileSync(one, spec(1))

/** wall and CPU (user + system, all threads: /usr/bin/time) milliseconds of `tunctl validate FILE` */
function validateMs(repo, file) {
  const t0 = performance.now()
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', process.execPath, join(repo, 'bin', 'run'), 'validate', file], {encoding: 'utf8'})
  const wall = performance.now() - t0
  const cpu = /^cpu ([\d.]+) ([\d.]+)$/m.exec(r.stderr)
  if (r.status !== 0 || !cpu) throw new Error(`validate ${file} in ${repo} exited ${r.status}: ${r.stderr}`)
  return {wall, cpu: (Number(cpu[1]) + Number(cpu[2])) * 1000}
}

const PARSE = `
const [load, file] = process.argv.slice(1)
const {parseSpec} = await import(load)
const text = (await import('node:fs')).readFileSync(file, 'utf8')
const t0 = performance.now()
const s = parseSpec(file, text)
console.log(performance.now() - t0, s.tunnels.length)
`
function parseMs(repo) {
  const load = pathToFileURL(join(repo, 'dist', 'spec', 'load.js')).href
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PARSE, load, big], {encoding: 'utf8'})
  const [ms, count] = r.stdout.trim().split(' ').map(Number)
  if (r.status !== 0 || count !== n) throw new Error(`parseSpec in ${repo}: exit ${r.status}, ${r.stdout}${r.stderr}`)
  return ms
}

const got = Object.fromEntries(repos.map(([name]) => [name, {validateN: [], validate1: [], cpuN: [], cpu1: [], parse: []}]))
const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
try {
  for (let r = 0; r < rounds; r++) {
    for (const [name, repo] of repos) {
      const vn = validateMs(repo, big)
      const v1 = validateMs(repo, one)
      got[name].validateN.push(vn.wall)
      got[name].validate1.push(v1.wall)
      got[name].cpuN.push(vn.cpu)
      got[name].cpu1.push(v1.cpu)
      got[name].parse.push(parseMs(repo))
    }
  }
} finally {
  rmSync(dir, {recursive: true, force: true})
}

const median = (a) => [...a].sort((x, y) => x - y)[(a.length - 1) >> 1]
const fmt = (a) => `${median(a).toFixed(0)} ms (${Math.min(...a).toFixed(0)}-${Math.max(...a).toFixed(0)})`
console.log(`| spec front end, ${n} gre tunnels, ${rounds} fresh processes each${opt.base ? ', interleaved' : ''} | ${repos.map(([name, repo]) => `${name} (${repo})`).join(' | ')} |`)
console.log(`|---|${repos.map(() => '---:').join('|')}|`)
const row = (label, f) => console.log(`| ${label} | ${repos.map(([name]) => f(got[name])).join(' | ')} |`)
row(`\`tunctl validate\` of ${n} tunnels (wall)`, (g) => fmt(g.validateN))
row('`tunctl validate` of 1 tunnel (wall)', (g) => fmt(g.validate1))
row(`what the ${n} tunnels cost the CLI (per-round difference)`, (g) => fmt(g.validateN.map((v, i) => v - g.validate1[i])))
row(`the same in CPU time (user + system, all threads; 10 ms ticks)`, (g) => fmt(g.cpuN.map((v, i) => v - g.cpu1[i])))
row(`parseSpec of ${n} tunnels in a fresh node (no code cache)`, (g) => fmt(g.parse))
console.log(`load average (1, 5, 15 min) at the start / end: ${load0} / ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`)
