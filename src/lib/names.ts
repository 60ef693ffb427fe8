// The one rule for interface names tunctl manages or passes to iproute2 (tunnel names and `dev`), shared by the
// spec checks and observe (a link whose name breaks it is never treated as tunctl's).
import {hasUnsafeChars, quoteName} from './text.js'

export const IFNAMSIZ_MAX = 15

/**
 * Why tunctl refuses `name` as an interface name, or undefined. The kernel (dev_valid_name) refuses empty
 * names, more than 15 bytes, `.`/`..`, `/`, `:` and whitespace. tunctl also refuses what iproute2's batch reader
 * cannot carry exactly or its output does not print back exactly — `#` (ip -batch cuts the line there), `"`, `'`
 * and `\` (batch quoting has no escapes; older iproute2 prints `'` as `\'` in JSON) — and control, invisible or
 * bidirectional-override characters, lone surrogates (not UTF-8) and U+FFFD (what undecodable bytes read as).
 */
export function interfaceNameProblem(name: string, what: string): string | undefined {
  // quoted only for a message: observe checks every link's name (thousands of tunnels) and most pass
  const q = () => quoteName(name)
  if (name.length === 0) return `${what} must not be empty`
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(name)) return `${what} ${q()} is not valid UTF-8 (it holds a lone surrogate)`
  if (name.includes('\ufffd')) return `${what} ${q()} contains U+FFFD, the replacement character of undecodable bytes`
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > IFNAMSIZ_MAX) return `${what} ${q()} is ${bytes} bytes long; interface names are at most ${IFNAMSIZ_MAX} bytes`
  if (/[/:\s]/.test(name)) return `${what} ${q()} must not contain '/', ':' or whitespace`
  if (hasUnsafeChars(name)) return `${what} ${q()} must not contain control or invisible characters`
  if (/[#"'\\]/.test(name)) return `${what} ${q()} must not contain '#', '"', "'" or '\\': iproute2's batch reader (ip -batch) cuts a line at '#' and has no escape character`
  if (name === '.' || name === '..') return `${what} ${q()} is not a valid interface name`
  return undefined
}

/** Whether tunctl may manage (change, delete, print as its own) a link of that name. */
export function manageableName(name: unknown): name is string {
  return typeof name === 'string' && interfaceNameProblem(name, 'name') === undefined
}
