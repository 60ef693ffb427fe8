// Text that came from outside (interface names, aliases, spec lines) made safe to print on a terminal, and the
// one quoting of words for iproute2's batch reader.
import {BatchWordError} from './errors.js'

// C0 controls, DEL, C1 controls (a terminal may take U+009B as CSI), and the bidirectional/invisible format
// characters that make a printed name read differently from what it is
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
// eslint-disable-next-line no-control-regex
const UNSAFE_KEEP_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

function escapeChar(c: string): string {
  switch (c) {
    case '\t':
      return '\\t'
    case '\n':
      return '\\n'
    case '\r':
      return '\\r'
    case '\x1b':
      return '\\e'
  }
  const n = c.charCodeAt(0)
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`
}

/** `s` with every control or invisible character written as an escape (`\e`, `\x01`, `\u202e`); the rest as is. */
export function visible(s: string): string {
  return s.replace(UNSAFE, escapeChar)
}

/** Like visible, but newlines and tabs stay (for multi-line messages and excerpts). */
export function visibleText(s: string): string {
  return s.replace(UNSAFE_KEEP_LAYOUT, escapeChar)
}

// A hex literal long enough to be key material: `0x` and 16 or more hex digits. A spec's own hex numbers (keys,
// SPIs, fwmarks, table ids) have at most 8 digits; an ESP key has 32 to 72 (a key file given as the spec, a key
// pasted into a value).
const KEY_LIKE = /0[xX][0-9a-fA-F]{16,}/g
/** What an error shows instead of such a literal. */
export const HIDDEN_HEX = '0x…(hidden)'

/** `s` with every hex literal that may be key material shown as HIDDEN_HEX: errors never quote key material. */
export function hideKeyMaterial(s: string): string {
  return s.replace(KEY_LIKE, HIDDEN_HEX)
}

/**
 * hideKeyMaterial for a source line with a 1-based column in it: the column moved to where the same character
 * is in the masked line (to the start of HIDDEN_HEX when it falls inside a hidden literal).
 */
export function hideKeyMaterialAt(s: string, column: number): {text: string; column: number} {
  const col = column - 1
  let shift = 0
  const text = s.replace(KEY_LIKE, (m: string, at: number) => {
    if (at + m.length <= col) shift += m.length - HIDDEN_HEX.length
    else if (at < col) shift += col - at
    return HIDDEN_HEX
  })
  return {text, column: column - shift}
}

/** Whether printing `s` raw could be misread or act on a terminal. */
export function hasUnsafeChars(s: string): boolean {
  UNSAFE.lastIndex = 0
  const r = UNSAFE.test(s)
  UNSAFE.lastIndex = 0
  return r
}

/** A name for a message: in double quotes, escaped where needed (and `"` as `\"`). */
export function quoteName(s: string): string {
  return `"${visible(s).replace(/"/g, '\\"')}"`
}

/**
 * JSON as tunctl prints it: JSON.stringify escapes C0 controls; DEL, C1 controls (a terminal may take U+009B as
 * CSI) and bidirectional overrides in names or aliases from the system are escaped too (still the same JSON).
 */
export function jsonText(value: unknown): string {
  // eslint-disable-next-line no-control-regex
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
}

// ---------- iproute2 batch words ----------

/**
 * Why a word cannot be passed through `ip -batch` exactly, or undefined. iproute2 (lib/utils.c) reads a batch
 * line with getcmdline, which cuts the line at the first `#` (even inside quotes) and joins a line ending in
 * `\` with the next, then splits it with makeargs: words are separated by space, tab, CR or LF; a word that
 * BEGINS with `'` or `"` runs to the next same quote (there is no escape character); a quote elsewhere is an
 * ordinary character. So a word cannot contain `#`, a newline or NUL, nor both kinds of quote.
 */
export function batchWordProblem(w: string): string | undefined {
  if (w.includes('#')) return `contains '#', where ip -batch cuts the line`
  if (w.includes('\n')) return 'contains a newline, which ends an ip -batch line'
  if (w.includes('\0')) return 'contains NUL'
  if (/[ \t\r\\]/.test(w) || w === '' || w[0] === '"' || w[0] === "'") {
    if (w.includes('"') && w.includes("'")) return 'contains both kinds of quote, which ip -batch cannot carry in one word'
  }
  return undefined
}

/** One argv word as iproute2's batch reader (makeargs) reads it back exactly; throws for a word it cannot carry. */
export function quoteBatchWord(w: string): string {
  const why = batchWordProblem(w)
  if (why) throw new BatchWordError(`cannot pass ${quoteName(w)} to ip -batch: it ${why}`)
  // bare unless it is empty, begins with a quote, or holds a separator or a backslash (a word ending in `\` at
  // the end of the line would join the next line)
  if (w !== '' && w[0] !== '"' && w[0] !== "'" && !/[ \t\r\\]/.test(w)) return w
  return w.includes('"') ? `'${w}'` : `"${w}"`
}

export {BatchWordError}

/** What makeargs makes of one batch line (the inverse of quoting; used by tests). */
export function makeargs(line: string): string[] {
  const hash = line.indexOf('#')
  if (hash >= 0) line = line.slice(0, hash)
  const ws = ' \t\r\n'
  const out: string[] = []
  let i = 0
  while (i < line.length) {
    while (i < line.length && ws.includes(line[i]!)) i++
    if (i >= line.length) break
    const c = line[i]!
    if (c === '"' || c === "'") {
      const end = line.indexOf(c, i + 1)
      if (end < 0) throw new Error('Unterminated quoted string')
      out.push(line.slice(i + 1, end))
      i = end + 1 // makeargs overwrites the closing quote and goes on after it
    } else {
      let j = i
      while (j < line.length && !ws.includes(line[j]!)) j++
      out.push(line.slice(i, j))
      i = j + 1
    }
  }
  return out
}
