// Runs xfrm lines (SAs carry keys) through `ip -batch -` fed on stdin: key material never reaches an argv, the
// environment or a file. The echo (--verbose) and every error show the lines with the keys hidden, and ip's
// stderr has anything that looks like a key scrubbed.
import {CommandError} from '../lib/errors.js'
import {echoCommand, run} from '../lib/exec.js'
import {batchLine, failedBatchLine} from '../lib/ip.js'
import {KEY_HIDDEN} from './xfrm.js'

/** Long hex runs (keys) replaced: ip's error messages can quote an argument. */
export function scrubKeys(s: string): string {
  return s.replace(/(0x)?[0-9a-fA-F]{16,}/g, KEY_HIDDEN)
}

/** This batch is separate from the link batch on purpose: that one may be written to a file, this one never is. */
export async function xfrmBatch(lines: string[][], shown: string[][], opts: {netns?: string; verbose?: boolean} = {}): Promise<void> {
  if (!lines.length) return
  const text = lines.map(batchLine).join('\n') + '\n'
  if (opts.verbose) for (const l of shown) echoCommand(['ip', ...l])
  const argv = [...(opts.netns ? ['-n', opts.netns] : []), '-batch', '-']
  const r = await run('ip', argv, {input: text})
  if (r.exitCode !== 0) {
    const stderr = scrubKeys(r.stderr)
    const line = failedBatchLine(stderr)
    const what = line ? shown[line - 1]! : ['-batch', '-']
    throw new CommandError(`ip ${what.join(' ')}: ${stderr.trim()}`, ['ip', ...argv], stderr)
  }
}
