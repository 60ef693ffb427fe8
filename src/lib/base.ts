// Base class of every command: --json rendering, colour policy, and error → exit-code mapping.
import {existsSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {Command, Flags} from '@oclif/core'
import {EXIT, TunctlError, UsageError, exitTableText, noSuchNetns, stdoutState} from './errors.js'
import {jsonText} from './text.js'

export {jsonText}

/** An `ip netns` name: a file name under /run/netns (it also names tunctl's state directory, so no path tricks). */
export function netnsNameProblem(ns: string): string | undefined {
  if (ns === '' || ns === '.' || ns === '..' || ns.includes('/') || ns.includes('\0')) return `"${ns}" is not a network namespace name (ip netns names are plain file names)`
  return undefined
}

/**
 * Throws noSuchNetns unless `ip netns` knows NS (iproute2 opens /var/run/netns/NS, /run/netns on most systems).
 * Commands that take the namespace lock check it first: the lock would otherwise create /run/tunctl/ns/NS for it.
 */
export function requireNetns(ns: string | undefined): void {
  if (!netnsExists(ns)) throw noSuchNetns(ns!)
}

function netnsExists(ns: string | undefined): boolean {
  return ns === undefined || existsSync(join('/var/run/netns', ns)) || existsSync(join('/run/netns', ns))
}

/**
 * Whether apply and plan may observe the namespace (and apply try its lock) while the spec file parses
 * (pipeline.ts observeEarly): the spec is a regular file, so reading it cannot wait for a writer and what is
 * observed is at most one parse old (standard input or a pipe could keep it waiting for any time), and `ip netns`
 * knows the namespace (a missing one is reported after the file's own errors, before anything is locked).
 */
export function observableEarly(file: string, ns: string | undefined): boolean {
  try {
    return file !== '-' && statSync(file).isFile() && netnsExists(ns)
  } catch {
    return false
  }
}

export const commonFlags = {
  netns: Flags.string({
    description: 'operate inside this network namespace (ip netns name)',
    helpValue: 'NS',
    parse: async (ns) => {
      const why = netnsNameProblem(ns)
      if (why) throw new UsageError(why)
      return ns
    },
  }),
  json: Flags.boolean({description: 'machine-readable JSON on stdout (schemas/ describes each shape)', default: false}),
  /** show, export: the tunnels tunctl does not own too */
  all: Flags.boolean({description: 'include tunnels tunctl does not own', default: false}),
}

/** --netns and --json, the flags of every read-only command */
export const nsJsonFlags = {netns: commonFlags.netns, json: commonFlags.json}

/** Colour only on a TTY (not TERM=dumb, as oclif's help) and never with NO_COLOR (set to anything, even empty). */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  return Boolean(stream.isTTY) && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb'
}

/**
 * Why argv gives a boolean flag a value (`--force=false`, `--no-x=1`, `-v=0`), or undefined. oclif would take the
 * flag as set and the value as a positional argument (`del --force=false x` deletes a tunnel "false" by force); a
 * boolean flag is set by naming it and left out otherwise. Arguments after `--` are not flags.
 */
export function booleanFlagValueProblem(flags: Record<string, {type?: string; char?: string; aliases?: string[]; charAliases?: string[]; allowNo?: boolean}>, argv: readonly string[]): string | undefined {
  const names = new Map<string, string>() // how it is written (without the value) → the flag's name
  for (const [name, f] of Object.entries(flags)) {
    if (f?.type !== 'boolean') continue
    for (const n of [name, ...(f.aliases ?? [])]) {
      names.set(`--${n}`, name)
      if (f.allowNo) names.set(`--no-${n}`, name)
    }
    for (const c of [f.char, ...(f.charAliases ?? [])]) if (c) names.set(`-${c}`, name)
  }
  for (const arg of argv) {
    if (arg === '--') break
    const eq = arg.indexOf('=')
    if (!arg.startsWith('-') || eq < 0) continue
    const written = arg.slice(0, eq)
    const name = names.get(written)
    if (name) return `${written} takes no value (${JSON.stringify(arg)}): write ${written} to set it, or leave it out`
  }
  return undefined
}

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = false
  /** appended to every command's --help */
  static exitCodesHelp = exitTableText()

  /** set by subclasses after parsing */
  protected jsonMode = false

  /** before any command parses its flags: a boolean flag given a value is a usage error (booleanFlagValueProblem) */
  public override async init(): Promise<void> {
    await super.init()
    const why = booleanFlagValueProblem((this.ctor as typeof Command).flags ?? {}, this.argv)
    if (why) throw new UsageError(why)
  }

  protected printJSON(value: unknown): void {
    stdoutState.json = true
    process.stdout.write(jsonText(value) + '\n')
  }

  /** exit with a code without it counting as an error */
  protected done(code: number): void {
    if (code !== EXIT.OK) process.exitCode = code
  }

  protected override async catch(err: any): Promise<any> {
    // oclif's missing-argument note ("--adopt allows multiple values … provide all arguments before that flag")
    // ignores multipleNonGreedy; every multiple flag of tunctl is non-greedy, so the note is wrong here
    if (err?.oclif && typeof err.message === 'string') {
      err.message = err.message.replace(/\n\nNote: [^\n]* multiple values\.[^\n]*(\nAlternatively, you can use "--"[^\n]*)?/, '')
    }
    const json = this.jsonMode || this.argv.includes('--json')
    if (err?.code === 'EEXIT') throw err
    if (json) {
      let payload: Record<string, unknown>
      if (err instanceof TunctlError) payload = err.toJSON()
      else if (err?.oclif) payload = {code: 'usage', exitCode: EXIT.USAGE, message: err.message}
      else payload = {code: 'internal', exitCode: EXIT.SOFTWARE, message: String(err?.stack ?? err)}
      this.printJSON({ok: false, error: payload})
    }
    throw err
  }
}
