// Small text helpers shared by the operational commands: aligned tables and value formatting.
import {visible} from './text.js'
/** Aligned columns; every cell printed with visible() (names and aliases from the system are never raw). */
export function table(headers: string[], rows: string[][]): string {
  rows = rows.map((r) => r.map(visible))
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n') + '\n'
}
