// Runs iproute2: JSON queries, single commands and one `ip -batch FILE` per apply, through the one runner
// (src/lib/exec.ts: the --verbose echo `[#] ip …`, failures mapped to the error classes).
import {unlinkSync} from 'node:fs'
import {join} from 'node:path'
import {BugError} from './errors.js'
import {commandError, echoCommand, run} from './exec.js'
import {ensureRunDir, writeAtomic} from './rundir.js'
import {quoteBatchWord} from './text.js'

export interface IpOptions {
  netns?: string
  verbose?: boolean
  /** ipJson: false leaves out `-d` (link details an address dump does not need: ~40% of its output) */
  details?: boolean
}

function base(opts: IpOptions): string[] {
  return opts.netns ? ['-n', opts.netns] : []
}

/** `ip -j -d <args>` parsed (parseIpJson); read-only, never echoed. */
export async function ipJson<T = any>(args: string[], opts: IpOptions = {}): Promise<T> {
  const argv = [...base(opts), '-j', ...(opts.details === false ? [] : ['-d']), ...args]
  const r = await run('ip', argv)
  if (r.exitCode !== 0) throw commandError(['ip', ...argv], r.stderr)
  try {
    return parseIpJson(r.stdoutBytes) as T
  } catch (e) {
    throw new BugError(`ip ${argv.join(' ')} printed JSON tunctl cannot read: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/**
 * Reads what `ip -j` prints, whatever bytes the system's names and aliases hold. iproute2's JSON writer escapes
 * only tab, newline, CR, form feed, backspace, `\` and `"` (older versions also `'` as `\'`, which JSON has not)
 * and copies every other byte as it is. So: invalid UTF-8 becomes U+FFFD (a name holding it is never one tunctl
 * manages), and inside strings a raw control character becomes its \u escape and `\'` becomes `'`.
 */
export function parseIpJson(out: Uint8Array | string): unknown {
  const text = (typeof out === 'string' ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString('utf8')).trim()
  if (!text) return []
  try {
    return JSON.parse(text)
  } catch {
    return JSON.parse(sanitizeJsonStrings(text))
  }
}

/** Raw control characters inside JSON strings escaped, `\'` turned into `'` (see parseIpJson). */
export function sanitizeJsonStrings(text: string): string {
  let out = ''
  let inString = false
  let from = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (!inString) {
      if (c === 0x22) inString = true
      continue
    }
    if (c === 0x5c) {
      // an escape: keep valid ones, drop the backslash of \' (and of any other escape JSON does not know)
      const n = text[i + 1]
      if (n !== undefined && '"\\/bfnrtu'.includes(n)) {
        i++
        continue
      }
      out += text.slice(from, i)
      from = i + 1
      continue
    }
    if (c === 0x22) inString = false
    else if (c < 0x20 || c === 0x7f) {
      out += text.slice(from, i) + '\\u' + c.toString(16).padStart(4, '0')
      from = i + 1
    }
  }
  return out + text.slice(from)
}

/** One mutating ip command. */
export async function ip(args: string[], opts: IpOptions = {}): Promise<void> {
  const argv = [...base(opts), ...args]
  const r = await run('ip', argv, {verbose: opts.verbose, shown: ['ip', ...args]})
  if (r.exitCode !== 0) throw commandError(['ip', ...argv], r.stderr)
}

export {quoteBatchWord} from './text.js'

/** One batch line as ip -batch reads it back (every word quoted by quoteBatchWord; throws for one it cannot carry). */
export function batchLine(words: string[]): string {
  return words.map(quoteBatchWord).join(' ')
}

let batchSeq = 0

/** The 1-based line an `ip -batch` stopped at: iproute2 reports "Command failed FILE:LINE" (FILE `-` for stdin). */
export function failedBatchLine(stderr: string): number | undefined {
  const m = /Command failed .*:(\d+)\s*$/m.exec(stderr)
  return m ? Number(m[1]) : undefined
}

/**
 * Runs lines (each an ip argv without the leading `ip`) through one `ip -batch FILE` process. The batch is written
 * to a file first (0600, in the namespace's run directory) and ip runs in its own process group, not killed with us: if
 * tunctl dies or a terminal's Ctrl-C reaches its group while the batch runs, ip still runs the whole batch (or
 * stops at a failing line) — never a part cut off because its feeder went away.
 * ip stops at the first failing line; the error carries its 1-based index so callers map it to a plan step.
 */
export async function ipBatch(lines: string[][], opts: IpOptions = {}): Promise<void> {
  if (lines.length === 0) return
  // quoted before anything runs: a word ip -batch cannot carry fails the whole batch, not one line of it
  const text = lines.map(batchLine).join('\n') + '\n'
  if (opts.verbose) for (const l of lines) echoCommand(['ip', ...l])
  const dir = ensureRunDir(opts.netns)
  const file = join(dir, `batch.${process.pid}.${++batchSeq}`)
  writeAtomic(file, text)
  const argv = [...base(opts), '-batch', file]
  try {
    const r = await run('ip', argv, {detached: true})
    if (r.exitCode !== 0) {
      const stderr = r.stderr
      const line = failedBatchLine(stderr)
      throw commandError(['ip', ...(line ? lines[line - 1]! : ['-batch', '-'])], stderr.replaceAll(file, '-'), line)
    }
  } finally {
    try {
      unlinkSync(file)
    } catch {}
  }
}
