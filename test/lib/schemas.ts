// Validates what the real CLI prints with --json against schemas/<command>-output.schema.json (export --json:
// the spec schema, since apply reads it back). Used by the host and user-mode-linux helpers, so every --json
// output a test reads is checked as printed.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'

const SCHEMAS = join(import.meta.dirname, '..', '..', 'schemas')
const COMMANDS = ['apply', 'plan', 'show', 'del', 'doctor', 'validate', 'export', 'confirm'] as const

const ajv = new (Ajv as any)({strict: false, allErrors: true})
;(addFormats as any)(ajv)
const compiled = new Map<string, any>()

function validator(command: string): any {
  let v = compiled.get(command)
  if (!v) {
    const file = command === 'export' ? 'tunnels.schema.json' : `${command}-output.schema.json`
    v = ajv.compile(JSON.parse(readFileSync(join(SCHEMAS, file), 'utf8')))
    compiled.set(command, v)
  }
  return v
}

/** The tunctl command an argv runs (the first argument that is a known command). */
export function commandOf(args: readonly string[]): string | undefined {
  return args.find((a) => (COMMANDS as readonly string[]).includes(a))
}

/** Throws, naming the schema errors, unless doc is valid output of `command --json`. */
export function assertOutputSchema(command: string, doc: unknown, context = ''): void {
  // export's error output is the common error document, which every other schema also accepts
  const v = command === 'export' && (doc as any)?.ok === false ? validator('show') : validator(command)
  if (!v(doc)) throw new Error(`${command} --json output does not match its schema: ${ajv.errorsText(v.errors)}${context}`)
}

/** The tunnels of a `show --json` document ({ok, tunnels: [...]}, the one shape), keyed by name. */
export function shownTunnels(doc: any): Record<string, any> {
  assertOutputSchema('show', doc)
  return Object.fromEntries((doc.tunnels as any[]).map((t) => [t.name, t]))
}
