// Excerpts of a source line with a caret under a column (spec errors, key-file errors). Without the yaml library, so
// that what imports only this (the userspace engine, through src/ipsec/keyfile.ts) does not load it (~60-250 ms).
import {hideKeyMaterialAt, visibleText} from '../lib/text.js'

/** Widest source text an excerpt shows (a 16 KB flow list on one line is shown around the column only). */
export const EXCERPT_WIDTH = 120

export function visibleKeepTab(s: string): string {
  return visibleText(s).replace(/\n/g, '\\n')
}

/**
 * `  LINE\n  ^` with the caret under the 1-based column (tabs kept so it lines up), clipped to EXCERPT_WIDTH, every
 * hex literal that may be key material hidden (before clipping, so no part of one shows).
 */
export function clipExcerpt(source: string, column: number): string {
  const hidden = hideKeyMaterialAt(source, column)
  const line = hidden.text
  let shown = line
  let col = hidden.column - 1
  if (line.length > EXCERPT_WIDTH) {
    const start = Math.max(0, Math.min(col - EXCERPT_WIDTH / 2, line.length - EXCERPT_WIDTH))
    const end = Math.min(line.length, start + EXCERPT_WIDTH)
    shown = (start > 0 ? '…' : '') + line.slice(start, end) + (end < line.length ? '…' : '')
    col = col - start + (start > 0 ? 1 : 0)
  }
  const pad = shown.slice(0, col).replace(/[^\t]/g, ' ')
  return `  ${shown}\n  ${pad}^`
}
