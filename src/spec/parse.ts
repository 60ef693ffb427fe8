// YAML text → validated DesiredState with every problem positioned (file:line:col + excerpt); drivers injected.
import {LineCounter, parseDocument} from 'yaml'
import type {ModeDriver} from '../drivers/contract.js'
import type {DesiredState, Mode} from '../model/types.js'
import {SpecError, type Diagnostic} from '../lib/errors.js'
import {SourceMap} from './positions.js'
import {schemaDiagnostics, type RawDiagnostic} from './schema.js'
import {checkTunnels} from './semantic.js'

export interface ParseOptions {
  /** mode drivers (load.ts passes src/drivers' DRIVERS) */
  drivers: Record<Mode, ModeDriver>
  /** routing table names (default: built-ins + /etc/iproute2/rt_tables) */
  rtTables?: Map<string, number>
}

/** Turns pointer-based problems into positioned diagnostics with an excerpt, sorted by position. */
export function locate(file: string, map: SourceMap, raw: RawDiagnostic[]): Diagnostic[] {
  const out = raw.map((r) => {
    const pos = map.posOf(map.offsetOf(r.pointer, r.target ?? 'value'))
    return {file, line: pos.line, column: pos.column, pointer: r.pointer, message: r.message, excerpt: map.excerpt(pos)}
  })
  out.sort((a, b) => a.line - b.line || a.column - b.column || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0))
  // the same message at the same place once
  return out.filter((d, i) => i === 0 || !(d.line === out[i - 1].line && d.column === out[i - 1].column && d.message === out[i - 1].message))
}

/** Parses and validates a spec. Pure (apart from reading rt_tables when a route names a table). Throws SpecError with every problem. */
export function parseSpecWith(file: string, text: string, opts: ParseOptions): DesiredState {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true, strict: true})
  const map = new SourceMap(text, doc, lineCounter)

  if (doc.errors.length > 0) {
    // the data of a document with syntax errors is unreliable: report only those
    const diags = doc.errors.map((e) => {
      const pos = map.syntaxPos(e.pos[0])
      const message = 'YAML syntax error: ' + e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
      return {file, line: pos.line, column: pos.column, pointer: '', message, excerpt: map.excerpt(pos)}
    })
    diags.sort((a, b) => a.line - b.line || a.column - b.column)
    throw new SpecError(diags)
  }

  let data: unknown
  try {
    data = doc.toJS({maxAliasCount: 1000})
  } catch (e: any) {
    const pos = map.posOf(0)
    throw new SpecError([{file, line: pos.line, column: pos.column, pointer: '', message: `YAML error: ${e?.message ?? e}`, excerpt: map.excerpt(pos)}])
  }

  const schemaDiags = schemaDiagnostics(data)
  const {diagnostics, tunnels} = checkTunnels(data, schemaDiags, {drivers: opts.drivers, rtTables: opts.rtTables})
  const all = [...schemaDiags, ...diagnostics]
  if (all.length > 0) throw new SpecError(locate(file, map, all))
  // file order (an object's integer-like keys would otherwise come first)
  const at = new Map(tunnels.map((t) => [t.name, map.offsetOf(t.pointer, 'key')]))
  tunnels.sort((a, b) => at.get(a.name)! - at.get(b.name)!)
  for (const t of tunnels) {
    const pos = map.posOf(at.get(t.name)!)
    t.at = {line: pos.line, column: pos.column, excerpt: map.excerpt(pos)}
  }
  return {file, tunnels}
}

