// Helpers for host tests of the CLI's apply/interrupt/lock behaviour: run tunctl (sync or as a child), poll for a
// condition with a timeout and a message, and describe what tunctl left in a namespace (tunnels, daemons, files).
import {spawn, type ChildProcess} from 'node:child_process'
import * as assert from 'uvu/assert'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {nsDir, readRecord} from '../../../src/userspace/paths.js'
import {shownTunnels} from '../../lib/schemas.js'
import {cliEnv, runCli} from '../../lib/cli.js'
import {waitFor} from '../../lib/wait.js'

export const REPO = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..', '..')
export const BIN = join(REPO, 'bin', 'run')

export interface Run {
  code: number
  out: string
  err: string
}

export function tunctl(args: string[], env: Record<string, string> = {}, timeout = 120_000): Run {
  const r = runCli(process.execPath, BIN, args, {env, timeoutMs: timeout})
  return {code: r.code, out: r.stdout, err: r.stderr}
}

/** tunctl ARGS, asserted to exit 0 (the output is in the message otherwise). */
export function tunctlOk(args: string[], env: Record<string, string> = {}): Run {
  const r = tunctl(args, env)
  assert.is(r.code, 0, `tunctl ${args.join(' ')} → ${r.code}\n${r.out}\n${r.err}`)
  return r
}

export interface Child {
  proc: ChildProcess
  done: Promise<Run & {signal: string | null}>
}

const children = new Set<ChildProcess>()
// a child left paused by a failed assertion would wait forever: kill it with the test process
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

/** tunctl as a child process (to signal it); `done` resolves when it exits. */
export function tunctlChild(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, [BIN, ...args], {env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe']})
  children.add(proc)
  proc.on('exit', () => children.delete(proc))
  let out = ''
  let err = ''
  proc.stdout!.on('data', (d) => (out += d))
  proc.stderr!.on('data', (d) => (err += d))
  const done = new Promise<Run & {signal: string | null}>((resolve) =>
    proc.on('close', (code, signal) => resolve({code: code ?? (signal === 'SIGKILL' ? 137 : 128), signal, out, err})),
  )
  return {proc, done}
}

/** Polls `cond` every 20 ms until it returns a truthy value; throws `what` after timeoutMs (test/lib/wait.ts waitFor). */
export async function until<T>(what: string, cond: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  return (await waitFor(cond, Boolean, {what, timeoutMs, intervalMs: 20})) as T
}

/** Resolves with the child's result, or throws after timeoutMs (killing it). */
export async function exited(c: Child, what: string, timeoutMs = 60_000): Promise<Run & {signal: string | null}> {
  let t: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => {
      c.proc.kill('SIGKILL')
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} to exit`))
    }, timeoutMs)
  })
  try {
    return await Promise.race([c.done, timeout])
  } finally {
    clearTimeout(t)
  }
}

/** pids of the userspace engines of the namespace (their command line names its run directory after engine.js). */
export function daemonsOf(ns: string): number[] {
  const dir = nsDir(ns)
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      if (/\) Z /.test(stat)) continue
      const at = cmd.findIndex((a) => a.endsWith('engine.js') || a.endsWith('engine.ts'))
      if (at >= 0 && cmd[at + 1] === dir) out.push(Number(p))
    } catch {}
  }
  return out.sort((a, b) => a - b)
}

/** Files in the namespace's run directory. */
export function runFiles(ns: string): string[] {
  try {
    return readdirSync(nsDir(ns)).sort()
  } catch {
    return []
  }
}

/** The journal's owner pid, if a journal exists. */
export function journalPid(ns: string): number | undefined {
  const f = join(nsDir(ns), 'journal.json')
  if (!existsSync(f)) return undefined
  try {
    return JSON.parse(readFileSync(f, 'utf8')).pid
  } catch {
    return undefined
  }
}

export function showJson(ns: string): any[] {
  const r = tunctl(['show', '--json', '--all', '--netns', ns])
  if (r.code !== 0) throw new Error(`show --json: ${r.code} ${r.err}`)
  return Object.values(shownTunnels(JSON.parse(r.out)))
}

/** tunnel name → what a state comparison cares about */
export function essence(tunnels: any[]): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  for (const t of tunnels) o[t.name] = {mode: t.mode, driver: t.driver, owned: t.owned, addresses: t.addresses, key: t.params?.ikey, alive: t.alive ?? null, up: t.params?.up}
  return o
}

/**
 * Everything tunctl leaves in a namespace that must match a state: tunnel essence, one engine when a userspace
 * tunnel exists, and the run-directory files other than lock/confirm records.
 */
export function leftovers(ns: string, tunnels: any[]): string[] {
  const problems: string[] = []
  const userspace = tunnels.filter((t) => t.driver === 'userspace')
  const daemons = daemonsOf(ns)
  // one engine for all the namespace's userspace tunnels, none without them
  const want = userspace.length ? 1 : 0
  if (daemons.length !== want) problems.push(`${daemons.length} userspace engines for ${userspace.length} userspace tunnels`)
  for (const t of userspace) if (!t.alive) problems.push(`${t.name}: encapsulator dead`)
  const names = new Set(userspace.map((t) => t.name))
  for (const f of runFiles(ns)) {
    if (f === 'lock' || f === 'confirm-result.json' || f === 'confirm.log' || f === '.engine.log') continue
    // the engine's control socket and identity record, while it runs
    if ((f === '.engine.sock' || f === '.engine.json') && daemons.length) continue
    // the state record: there while userspace tunnels are, naming exactly them
    if (f === '.tunnels.json' && names.size) {
      const rec = readRecord(nsDir(ns))
      const inRec = Object.keys(rec?.tunnels ?? {}).sort()
      if (inRec.join() !== [...names].sort().join()) problems.push(`state record names ${inRec.join(' ') || 'nothing'}, not the userspace tunnels ${[...names].sort().join(' ')}`)
      continue
    }
    // a tunnel's counters (a per-tunnel <name>.json is an older release's layout: the record replaced it)
    const m = /^(.*?)(\.stats\.json|\.log)$/.exec(f)
    if (m && names.has(m[1]!)) continue
    // writeAtomic's temp file (.FILE.PID.RAND.tmp) of an engine still running is a write in flight, not a leftover
    const tmp = /^\.(.*?)(?:\.stats)?\.json\.(\d+)\.[0-9a-f]+\.tmp$/.exec(f)
    if (tmp && (names.has(tmp[1]!) || (tmp[1] === '.tunnels' && names.size)) && daemons.includes(Number(tmp[2]))) continue
    problems.push(`stray file ${f}`)
  }
  return problems
}
