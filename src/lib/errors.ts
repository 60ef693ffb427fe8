// The typed error tree and the one exit-code table that --help, the man page and the code all use.
import type {FieldChange} from '../model/types.js'
import {hideKeyMaterial, jsonText, visibleText} from './text.js'

export const EXIT = {
  OK: 0,
  FAILED: 1, // operation failed, host restored
  CHANGES: 2, // plan --detailed-exitcode: changes pending
  ROLLBACK_INCOMPLETE: 3,
  USAGE: 64,
  DATAERR: 65, // invalid spec
  NOINPUT: 66,
  UNAVAILABLE: 69, // mode unavailable with every allowed driver
  SOFTWARE: 70, // internal bug
  TEMPFAIL: 75, // lock held past timeout
  NOPERM: 77,
} as const

/** Rendered into --help and man/tunctl.8. Keep in sync with EXIT. */
export const EXIT_TABLE: Array<[number, string]> = [
  [0, 'success (plan: no changes, or any plan without --detailed-exitcode)'],
  [1, 'operation failed; the host was restored to its previous state'],
  [2, 'changes pending (plan --detailed-exitcode, apply --dry-run --detailed-exitcode)'],
  [3, 'operation failed AND rollback incomplete (the message lists what is left)'],
  [64, 'usage error (bad flag or argument)'],
  [65, 'invalid spec (every error is listed with file:line:col)'],
  [66, 'input file missing or unreadable'],
  [69, 'a tunnel mode is unavailable with every allowed driver'],
  [70, 'internal error (a bug in tunctl)'],
  [75, 'another tunctl holds the namespace lock past --lock-timeout'],
  [77, 'insufficient privilege (needs CAP_NET_ADMIN / root)'],
]

/** The table in --help: oclif trims each line's leading blanks, so the codes are padded on the right to align. */
export function exitTableText(): string {
  return 'EXIT CODES\n' + EXIT_TABLE.map(([c, t]) => `${String(c).padEnd(4)}${t}`).join('\n')
}

export class TunctlError extends Error {
  exitCode: number = EXIT.FAILED
  code = 'failed'
  /** set by the executor: the batch ran before the failure (apply --json `applied`) */
  applied?: boolean
  /** set by the executor: the failure was rolled back completely (apply --json `rolledBack`) */
  rolledBack?: boolean
  toJSON(): Record<string, unknown> {
    return {code: this.code, exitCode: this.exitCode, message: this.message}
  }
}

export interface Diagnostic {
  file: string
  line: number // 1-based
  column: number // 1-based
  pointer: string // JSON pointer into the document
  message: string
  /** the source line and a caret under the column */
  excerpt?: string
}

/** The most diagnostics a SpecError lists (text and --json); the rest are counted (output stays bounded). */
export const MAX_DIAGNOSTICS = 100

export class SpecError extends TunctlError {
  override exitCode: number = EXIT.DATAERR
  override code = 'invalid-spec'
  /** diagnostics beyond MAX_DIAGNOSTICS, not listed */
  omitted: number
  constructor(public diagnostics: Diagnostic[]) {
    const omitted = Math.max(0, diagnostics.length - MAX_DIAGNOSTICS)
    // a message may quote what the file says (a name, a value): never key material (excerpts hide it themselves,
    // src/spec/excerpt.ts, keeping the caret in place)
    const shown = (omitted ? diagnostics.slice(0, MAX_DIAGNOSTICS) : diagnostics).map((d) => {
      const message = hideKeyMaterial(d.message)
      return message === d.message ? d : {...d, message}
    })
    super(
      shown.map((d) => `${d.file}:${d.line}:${d.column}: ${d.message}${d.excerpt ? '\n' + d.excerpt : ''}`).join('\n') +
        (omitted ? `\n… and ${omitted} more error${omitted === 1 ? '' : 's'} (only the first ${MAX_DIAGNOSTICS} are listed)` : ''),
    )
    this.diagnostics = shown
    this.omitted = omitted
  }
  override toJSON() {
    return {...super.toJSON(), diagnostics: this.diagnostics, ...(this.omitted ? {omitted: this.omitted} : {})}
  }
}

export class UsageError extends TunctlError {
  override exitCode: number = EXIT.USAGE
  override code = 'usage'
}

/** A --netns naming no namespace (`ip -n` says "Cannot open network namespace"): a usage error, 64. */
export function noSuchNetns(ns: string): UsageError {
  return new UsageError(`network namespace "${ns}" does not exist (see ip netns list)`)
}

export class InputError extends TunctlError {
  override exitCode: number = EXIT.NOINPUT
  override code = 'no-input'
}

/** An external command (ip, modprobe, …) failed. Keeps argv, stderr and, for ip -batch, the failing line. */
export class CommandError extends TunctlError {
  override code = 'command-failed'
  constructor(
    message: string,
    public argv: string[],
    public stderr: string,
    public batchLine?: number, // 1-based line of the batch that failed
    public step?: string, // plan step description the line belongs to
  ) {
    super(message)
  }
  override toJSON() {
    return {...super.toJSON(), argv: this.argv, stderr: this.stderr, batchLine: this.batchLine, step: this.step}
  }
}

export class VerifyError extends TunctlError {
  override code = 'verify-failed'
  constructor(message: string, public residual: Array<{name: string; changes: FieldChange[]}>) {
    super(message)
  }
  override toJSON() {
    return {...super.toJSON(), residual: this.residual}
  }
}

export class RollbackError extends TunctlError {
  override exitCode: number = EXIT.ROLLBACK_INCOMPLETE
  override code = 'rollback-incomplete'
  constructor(message: string, public leftovers: string[]) {
    super(message + (leftovers.length ? '\nleft behind:\n  ' + leftovers.join('\n  ') : ''))
  }
  override toJSON() {
    return {...super.toJSON(), leftovers: this.leftovers}
  }
}

/** SIGINT/SIGTERM stopped an apply before its batch ran (it is rolled back: exit 1). */
export class InterruptedError extends TunctlError {
  override code = 'interrupted'
  constructor(public signal: string) {
    super(`interrupted by ${signal} before the batch ran`)
  }
}

export class PermissionError extends TunctlError {
  override exitCode: number = EXIT.NOPERM
  override code = 'permission'
}

export class UnavailableError extends TunctlError {
  override exitCode: number = EXIT.UNAVAILABLE
  override code = 'unavailable'
}

export class LockError extends TunctlError {
  override exitCode: number = EXIT.TEMPFAIL
  override code = 'locked'
}

/** A word ip -batch cannot carry (names are checked at validate; this guards names observed on the system). */
export class BatchWordError extends TunctlError {
  override code = 'unquotable'
}

export class BugError extends TunctlError {
  override exitCode: number = EXIT.SOFTWARE
  override code = 'internal'
}

/** Whether a JSON document went to stdout (BaseCommand.printJSON): --json output is one document, never two. */
export const stdoutState = {json: false}

/**
 * Maps any thrown value to an exit code, printing it on stderr. oclif's own exit 2 becomes 64. With --json,
 * an error before any command printed JSON (an unknown command, say) is printed as {ok: false, error} too.
 */
export function handleError(error: unknown, argv: string[] = process.argv): number {
  // oclif's errors carry {oclif: {exit}}; anything else thrown is shown by its stack or text
  const e = (typeof error === 'object' && error !== null ? error : {}) as {oclif?: {exit?: unknown}; code?: unknown; message?: unknown; stack?: unknown}
  if (e.oclif && typeof e.oclif.exit === 'number' && e.code === 'EEXIT') return e.oclif.exit // this.exit(n)
  if (argv.includes('--json') && !stdoutState.json) {
    const payload =
      error instanceof TunctlError ? error.toJSON()
      : e.oclif ? {code: 'usage', exitCode: EXIT.USAGE, message: String(e.message)}
      : {code: 'internal', exitCode: EXIT.SOFTWARE, message: String(e.stack ?? error)}
    process.stdout.write(jsonText({ok: false, error: payload}) + '\n')
  }
  if (error instanceof TunctlError) {
    // names and aliases from the system or the file never reach the terminal raw
    process.stderr.write(`tunctl: ${visibleText(error.message)}\n`)
    return error.exitCode
  }
  if (e.oclif) {
    // oclif parse/usage errors (unknown flag, missing argument, unknown command)
    process.stderr.write(`tunctl: ${visibleText(String(e.message))}\n`)
    return EXIT.USAGE
  }
  process.stderr.write(`tunctl: internal error: ${visibleText(String(e.stack ?? error))}\n`)
  return EXIT.SOFTWARE
}
