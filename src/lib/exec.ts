// The one runner for every system command tunctl starts (ip, modprobe, sh for sysctls, flock(1), the watchdog):
// the `--verbose` echo `[#] …` of each command that changes the system, failures mapped to the error classes
// (CommandError / PermissionError / UsageError for a missing namespace), timeouts, and detached process groups for
// commands that must outlive tunctl (the ip batch, the confirmation watchdog).
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {execa} from 'execa'
import {CommandError, PermissionError, UnavailableError, UsageError, noSuchNetns} from './errors.js'
import {quoteBatchWord, visible} from './text.js'

export interface RunOptions {
  /** echo the command on stderr as `[#] …` before it runs (commands that change the system; never for reads) */
  verbose?: boolean
  /** the words echoed instead of [cmd, ...args] (e.g. with keys hidden, or a sysctl shown for its shell script) */
  shown?: string[]
  /** standard input (never argv or a file: keys go this way) */
  input?: string
  /** its own process group, not killed with tunctl nor by a Ctrl-C reaching tunctl's group */
  detached?: boolean
  /** kill it (SIGKILL) after this many milliseconds; the result then has timedOut */
  timeoutMs?: number
}

export interface RunResult {
  /** 127 when the program cannot be started (not installed) */
  exitCode: number
  stdout: string
  stderr: string
  /** stdout as bytes (ip -j prints names as the kernel holds them, not necessarily UTF-8) */
  stdoutBytes: Uint8Array
  timedOut: boolean
}

/** A word as the echo shows it: quoted like a batch line (or as JSON when a batch cannot carry it). */
function echoWord(w: string): string {
  try {
    return quoteBatchWord(w)
  } catch {
    return JSON.stringify(w)
  }
}

/** `[#] cmd args` on stderr (control and bidi characters escaped). */
export function echoCommand(words: string[]): void {
  process.stderr.write(`[#] ${visible(words.map(echoWord).join(' '))}\n`)
}

/** Runs `cmd args`; never rejects for a failing exit (see exitCode). */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (opts.verbose) echoCommand(opts.shown ?? [cmd, ...args])
  try {
    const r = await execa(cmd, args, {
      reject: false,
      encoding: 'buffer',
      stdin: opts.input === undefined ? 'ignore' : 'pipe',
      input: opts.input,
      detached: Boolean(opts.detached),
      cleanup: !opts.detached,
      timeout: opts.timeoutMs,
      killSignal: 'SIGKILL',
    })
    const bytes: Uint8Array = r.stdout ?? new Uint8Array()
    const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8') : '')
    if (r.failed && r.exitCode === undefined && !r.timedOut && (r.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      return {exitCode: 127, stdout: '', stderr: `${cmd}: not found`, stdoutBytes: new Uint8Array(), timedOut: false}
    }
    return {exitCode: r.exitCode ?? 1, stdout: text(bytes), stderr: text(r.stderr), stdoutBytes: bytes, timedOut: Boolean(r.timedOut)}
  } catch (e) {
    // execa reports a program that cannot be started as a failed result; anything else thrown is a spawn error
    return {exitCode: 127, stdout: '', stderr: `${cmd}: ${e instanceof Error ? e.message : String(e)}`, stdoutBytes: new Uint8Array(), timedOut: false}
  }
}

/**
 * `run` for the few callers that must not yield to the event loop (the engine applying a transaction's kernel view
 * between its other steps; the syncfs before a commit): the same result, synchronously.
 */
export function runSync(cmd: string, args: string[], opts: Pick<RunOptions, 'verbose' | 'shown' | 'input' | 'timeoutMs'> = {}): RunResult {
  if (opts.verbose) echoCommand(opts.shown ?? [cmd, ...args])
  const r = spawnSync(cmd, args, {input: opts.input, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 28})
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return {exitCode: 127, stdout: '', stderr: `${cmd}: not found`, stdoutBytes: new Uint8Array(), timedOut: false}
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT'
  const bytes = r.stdout ? new Uint8Array(r.stdout) : new Uint8Array()
  const stderr = (r.stderr?.toString('utf8') ?? '') + (r.error && !timedOut ? `${cmd}: ${r.error.message}` : '')
  return {exitCode: r.status ?? (r.error ? 127 : 128), stdout: r.stdout?.toString('utf8') ?? '', stderr, stdoutBytes: bytes, timedOut}
}

/**
 * The error class of a failed command from its stderr: a namespace that does not exist → UsageError (64), no
 * privilege → PermissionError (77), the program not installed → UnavailableError (69), anything else → CommandError (with the argv, stderr and batch line).
 */
export function commandError(argv: string[], stderr: string, batchLine?: number): CommandError | PermissionError | UsageError | UnavailableError {
  const ns = /Cannot open network namespace "([^"]*)": No such file or directory/.exec(stderr)
  if (ns) return noSuchNetns(ns[1]!)
  // run/runSync's text for a program that cannot be started: without ip no mode works with any driver (69)
  if (stderr === `${argv[0]}: not found`) return new UnavailableError(`${argv[0]} is not installed or not in PATH (tunctl needs ${argv[0] === 'ip' ? 'iproute2' : argv[0]})`)
  if (/Operation not permitted|Permission denied/.test(stderr)) {
    return new PermissionError(`${argv.join(' ')}: ${stderr.trim()} (tunctl needs root / CAP_NET_ADMIN)`)
  }
  return new CommandError(`${argv.join(' ')}: ${stderr.trim()}`, argv, stderr, batchLine)
}

/**
 * Starts a long-lived detached child (own process group, cwd /, stdin closed) that tunctl does not wait for, e.g.
 * the confirmation watchdog; `stdio` are the fds for stdout, stderr and any further descriptors it inherits.
 */
export function spawnDetached(argv: string[], stdio: Array<number | 'pipe'>, opts: {verbose?: boolean; env?: NodeJS.ProcessEnv} = {}): ChildProcess {
  if (opts.verbose) echoCommand(argv)
  return spawn(argv[0]!, argv.slice(1), {detached: true, stdio: ['ignore', ...stdio], cwd: '/', ...(opts.env ? {env: opts.env} : {})})
}

/**
 * Runs `cmd args` with `fds` of this process as its fd 3, 4, … (flock(1) locking our lock file's open file
 * description) and resolves with its exit code; rejects (e.g. ENOENT) when it cannot be started.
 */
export function runWithFds(cmd: string, args: string[], fds: number[]): Promise<{exitCode: number; stderr: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {stdio: ['ignore', 'ignore', 'pipe', ...fds]})
    let stderr = ''
    child.stderr!.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('exit', (code, signal) => resolve({exitCode: code ?? (signal ? 128 : 1), stderr}))
  })
}
