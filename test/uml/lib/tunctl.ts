// Runs the built CLI (node bin/run) as a user would, capturing exit code, stdout and stderr.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {run, runAsync, type Run} from './sh.js'
import {runCli} from '../../lib/cli.js'
import {assertOutputSchema, commandOf, shownTunnels} from '../../lib/schemas.js'

export const REPO = process.env.TUNCTL_REPO ?? process.cwd()
const BIN = process.env.TUNCTL_BIN ?? join(REPO, 'bin', 'run')
/** scratch space for spec files: /run is a tmpfs inside UML (never write to the host's filesystem) */
export const SCRATCH = '/run/tunctl-tests'

export interface TunctlOptions {
  env?: Record<string, string>
  input?: string
  timeoutMs?: number
}

let daemonNode: string | undefined
function baseEnv(): Record<string, string> {
  // the userspace encapsulator is started with process.execPath unless told otherwise; inside UML that
  // must be the PATH's node wrapper (V8 kept off AVX), not /usr/bin/node itself
  daemonNode ??= run('sh', ['-c', 'command -v node']).stdout.trim() || 'node'
  return {NO_COLOR: '1', TUNCTL_DAEMON_NODE: process.env.TUNCTL_DAEMON_NODE ?? daemonNode}
}

/** `tunctl ARGS...`; `node` is resolved through PATH (inside UML a wrapper that keeps V8 off AVX). */
export function tunctl(args: string[], opts: TunctlOptions = {}): Run {
  const r = runCli('node', BIN, args, {env: {...baseEnv(), ...opts.env}, input: opts.input, timeoutMs: opts.timeoutMs ?? 180_000})
  if (r.error) throw new Error(`node ${[BIN, ...args].join(' ')}: ${r.error.message}`)
  return {code: r.signal ? 137 : r.code, stdout: r.stdout, stderr: r.stderr, argv: r.argv}
}

/** tunctl() in the background. */
export function tunctlAsync(args: string[], opts: {env?: Record<string, string>} = {}): Promise<Run> {
  return runAsync('node', [BIN, ...args], {env: {...baseEnv(), ...opts.env}})
}

/** Formats a run for assertion messages. */
export function show(r: Run): string {
  return `\n$ tunctl ${r.argv.slice(2).join(' ')}\n→ exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`
}

/** Like tunctl() but throws with the full output unless the exit code is `code` (default 0). */
export function tunctlOk(args: string[], opts: TunctlOptions & {code?: number} = {}): Run {
  const r = tunctl(args, opts)
  const want = opts.code ?? 0
  if (r.code !== want) throw new Error(`expected exit ${want}` + show(r))
  return r
}

/** Parses stdout as JSON, failing with the output if it is not, and validates it against its command's schema. */
export function json(r: Run): any {
  let doc: any
  try {
    doc = JSON.parse(r.stdout)
  } catch {
    throw new Error('stdout is not JSON' + show(r))
  }
  const command = commandOf(r.argv.slice(2))
  if (!command) throw new Error('json(): cannot tell which command printed this' + show(r))
  assertOutputSchema(command, doc, show(r))
  return doc
}

let seq = 0
/** Writes a spec (text) to the scratch tmpfs and returns its path. */
export function specFile(tag: string, text: string): string {
  mkdirSync(SCRATCH, {recursive: true})
  const p = join(SCRATCH, `${tag}-${process.pid}-${++seq}.yaml`)
  writeFileSync(p, text)
  return p
}

export {shownTunnels}

/** A tunnel parameter from a `show --json` entry (model field names, under params). */
export function param(t: any, field: string): any {
  return t.params[field]
}

/** Batch lines `$ [N] ip …` of `plan --show-commands` output. */
export function planCommands(text: string): string[] {
  return [...text.matchAll(/^\s*\$ \[(\d+)\] ip (.*)$/gm)].map((m) => m[2]!)
}

/** The "Plan: N to create, …" counts of a text plan. */
export function planCounts(text: string): {create: number; update: number; replace: number; delete: number} | undefined {
  const m = /Plan: (\d+) to create, (\d+) to update, (\d+) to replace, (\d+) to delete\./.exec(text)
  return m ? {create: +m[1]!, update: +m[2]!, replace: +m[3]!, delete: +m[4]!} : undefined
}

/** `[#] ip …` lines echoed by --verbose. */
export function echoedIpLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('[#] ip '))
}

/** Asserts that `show --json --all` in ns lists at least one tunnel and that every one runs on `driver`. */
export function assertDrivers(ns: string, driver: 'kernel' | 'userspace'): void {
  const r = tunctlOk(['show', '--all', '--json', '--netns', ns])
  const list = Object.values(shownTunnels(json(r)))
  if (list.length === 0) throw new Error(`show --all lists no tunnel in ${ns}` + show(r))
  for (const t of list) if (t.driver !== driver) throw new Error(`${t.name} runs on the ${t.driver} driver, expected ${driver}` + show(r))
}
