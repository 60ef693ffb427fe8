// Routing table names ↔ numbers, read exactly the way for the spec (`table: vpn`) and for observe (what
// `ip -j route` prints): built-ins, then rt_tables and rt_tables.d/*.conf under /etc/iproute2, /usr/share/iproute2
// and /usr/lib/iproute2 (the first definition of a name wins; ids decimal or 0x hex).
import {existsSync, readdirSync, readFileSync} from 'node:fs'

export const BUILTIN_TABLES: Array<[string, number]> = [
  ['main', 254],
  ['local', 255],
  ['default', 253],
]

/** Names iproute2 prints without reading any file. */
const PRINTED_BUILTINS: Array<[string, number]> = [...BUILTIN_TABLES, ['unspec', 0]]

export const RT_TABLES_DIRS = ['/etc/iproute2', '/usr/share/iproute2', '/usr/lib/iproute2']
export const RT_TABLES_FILES = RT_TABLES_DIRS.map((d) => `${d}/rt_tables`)

/** Parses rt_tables text ("100 vpn" or "0x64 vpn" per line, # comments); a name already in `into` is kept. */
export function parseRtTables(text: string, into = new Map<string, number>()): Map<string, number> {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim()
    const m = /^(0x[0-9a-f]+|\d+)\s+(\S+)$/i.exec(line)
    if (!m) continue
    const id = Number(m[1])
    if (id > 0xffffffff || into.has(m[2]!)) continue
    into.set(m[2]!, id)
  }
  return into
}

/** main/local/default plus the names in the host's rt_tables files (read-only, missing or unreadable files ignored). */
export function readRtTables(files = RT_TABLES_FILES): Map<string, number> {
  const m = new Map<string, number>(BUILTIN_TABLES)
  for (const f of files) {
    try {
      if (existsSync(f)) parseRtTables(readFileSync(f, 'utf8'), m)
    } catch {
      // unreadable: skipped
    }
    const dir = f + '.d'
    try {
      if (existsSync(dir)) for (const e of readdirSync(dir).sort()) if (e.endsWith('.conf')) parseRtTables(readFileSync(`${dir}/${e}`, 'utf8'), m)
    } catch {
      // unreadable: skipped
    }
  }
  for (const [n, v] of BUILTIN_TABLES) m.set(n, v)
  return m
}

let cached: Map<string, number> | undefined

/** readRtTables() of the host, read once per process. */
export function hostRtTables(): Map<string, number> {
  return (cached ??= readRtTables())
}

/**
 * The number of a table as `ip -j route` prints it (absent = main; a number; or a name from the same files),
 * or -1 for a name no file defines (kept distinct rather than guessed).
 */
export function tableNumber(t: unknown, names: Map<string, number> = new Map()): number {
  if (t === undefined || t === null) return 254
  if (typeof t === 'number') return t
  const s = String(t)
  for (const [n, v] of PRINTED_BUILTINS) if (n === s) return v
  if (/^\d+$/.test(s)) return Number(s)
  if (/^0x[0-9a-f]+$/i.test(s)) return Number(s)
  return names.get(s) ?? -1
}
