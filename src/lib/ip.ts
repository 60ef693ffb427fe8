// Runs iproute2: JSON queries, single commands and one `ip -batch -` per apply; echoes lines with --verbose.
import {execa} from 'execa'
import {mkdirSync, unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {runDir, writeFileAtomic} from './journal.js'
import {CommandError, PermissionError, UsageError} from './errors.js'

export interface IpOptions {
  netns?: string
  verbose?: boolean
}

function base(opts: IpOptions): string[] {
  return opts.netns ? ['-n', opts.netns] : []
}

function echo(opts: IpOptions, argv: string[]) {
  if (opts.verbose) process.stderr.write(`[#] ip ${argv.join(' ')}\n`)
}

function classify(argv: string[], stderr: string, batchLine?: number): Error {
  const ns = /Cannot open network namespace "([^"]*)": No such file or directory/.exec(stderr)
  if (ns) return new UsageError(`network namespace "${ns[1]}" does not exist (see ip netns list)`)
  if (/Operation not permitted|Permission denied/.test(stderr)) {
    return new PermissionError(`ip ${argv.join(' ')}: ${stderr.trim()} (tunctl needs root / CAP_NET_ADMIN)`)
  }
  return new CommandError(`ip ${argv.join(' ')}: ${stderr.trim()}`, ['ip', ...argv], stderr, batchLine)
}

/** `ip -j -d <args>` parsed; read-only, never echoed. */
export async function ipJson<T = any>(args: string[], opts: IpOptions = {}): Promise<T> {
  const argv = [...base(opts), '-j', '-d', ...args]
  const r = await execa('ip', argv, {reject: false})
  if (r.exitCode !== 0) throw classify(argv, String(r.stderr))
  const out = String(r.stdout).trim()
  return (out ? JSON.parse(out) : []) as T
}

/** One mutating ip command. */
export async function ip(args: string[], opts: IpOptions = {}): Promise<void> {
  const argv = [...base(opts), ...args]
  echo(opts, args)
  const r = await execa('ip', argv, {reject: false})
  if (r.exitCode !== 0) throw classify(argv, String(r.stderr))
}

/** Quote one argv word for an ip -batch line (ip's batch parser understands double quotes). */
export function quoteBatchWord(w: string): string {
  return /^[A-Za-z0-9_.:/@%+=,-]+$/.test(w) ? w : '"' + w.replace(/(["\\])/g, '\\$1') + '"'
}

let batchSeq = 0

/**
 * Runs lines (each an ip argv without the leading `ip`) through one `ip -batch FILE` process. The batch is written
 * to a file first (mode 0600 in /run/tunctl/<ns>/) and ip runs in its own process group, not killed with us: if
 * tunctl dies or a terminal's Ctrl-C reaches its group while the batch runs, ip still runs the whole batch (or
 * stops at a failing line) — never a part cut off because its feeder went away.
 * ip stops at the first failing line; the error carries its 1-based index so callers map it to a plan step.
 */
export async function ipBatch(lines: string[][], opts: IpOptions = {}): Promise<void> {
  if (lines.length === 0) return
  for (const l of lines) echo(opts, l)
  const text = lines.map((l) => l.map(quoteBatchWord).join(' ')).join('\n') + '\n'
  const dir = runDir(opts.netns)
  try {
    mkdirSync(dir, {recursive: true, mode: 0o700})
  } catch (e: any) {
    if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS') throw new PermissionError(`cannot create ${dir}: ${e.message} (tunctl needs root)`)
    throw e
  }
  const file = join(dir, `batch.${process.pid}.${++batchSeq}`)
  writeFileAtomic(file, text)
  const argv = [...base(opts), '-batch', file]
  try {
    const r = await execa('ip', argv, {stdin: 'ignore', reject: false, detached: true, cleanup: false})
    if (r.exitCode !== 0) {
      const stderr = String(r.stderr)
      // iproute2 reports "Command failed FILE:LINE" for the failing batch line
      const m = /Command failed .*:(\d+)\s*$/m.exec(stderr)
      const line = m ? Number(m[1]) : undefined
      throw classify(line ? lines[line - 1]! : ['-batch', '-'], stderr.replaceAll(file, '-'), line)
    }
  } finally {
    try {
      unlinkSync(file)
    } catch {}
  }
}
