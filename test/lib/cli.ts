// Running the built CLI (node bin/run ARGS) the way a user does, shared by the host tests (test/host/lib/cli.ts) and
// the UML tests (test/uml/lib/tunctl.ts, inside the guest): no colour (NO_COLOR=1, FORCE_COLOR from the test runner
// dropped), the exit code (128+ for a signal), stdout and stderr, and the argv that ran.
import {spawnSync} from 'node:child_process'

export interface CliRun {
  code: number
  stdout: string
  stderr: string
  argv: string[]
  /** the signal that ended it, if one did */
  signal: string | null
  /** why it could not run or was killed (spawnSync's error: ENOENT, ETIMEDOUT) */
  error?: Error
}

export interface CliOptions {
  env?: Record<string, string>
  input?: string
  timeoutMs?: number
}

/** The environment of a CLI run: the test process's, without FORCE_COLOR, with NO_COLOR=1 and `extra`. */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {...process.env, NO_COLOR: '1', ...extra}
  delete env.FORCE_COLOR
  return env
}

/** `node BIN ARGS...` (synchronously). */
export function runCli(node: string, bin: string, args: string[], opts: CliOptions = {}): CliRun {
  const argv = [node, bin, ...args]
  const r = spawnSync(node, [bin, ...args], {input: opts.input, env: cliEnv(opts.env), encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 * 1024 * 1024})
  return {code: r.status ?? (r.signal ? 128 : -1), stdout: r.stdout ?? '', stderr: r.stderr ?? '', argv, signal: r.signal, ...(r.error ? {error: r.error} : {})}
}
