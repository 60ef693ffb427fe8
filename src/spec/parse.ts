// YAML text → validated DesiredState with every problem positioned (file:line:col + excerpt); drivers injected.
import {isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, YAMLMap, YAMLSeq, type Document} from 'yaml'
import type {ModeDriver} from '../drivers/contract.js'
import type {DesiredState, Mode, SourceLocation} from '../model/types.js'
import {MAX_DIAGNOSTICS, SpecError, type Diagnostic} from '../lib/errors.js'
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
    return {file, line: pos.line, column: pos.column, pointer: r.pointer, message: r.message, pos}
  })
  out.sort((a, b) => a.line - b.line || a.column - b.column || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0))
  // the same message at the same place once; excerpts only for the diagnostics SpecError lists
  return out
    .filter((d, i) => i === 0 || !(d.line === out[i - 1].line && d.column === out[i - 1].column && d.message === out[i - 1].message))
    .map(({pos, ...d}, i) => (i < MAX_DIAGNOSTICS ? {...d, excerpt: map.excerpt(pos)} : d))
}

/**
 * Mapping keys are taken as written: a plain scalar key means its source text, not its YAML value, so `0x10:`
 * names a tunnel "0x10" (not 16) and `1e1:` one "1e1" (not 10). Quoted or not, the same text is the same key:
 * `16:` and `"16":` are duplicates (as JavaScript object keys they would silently merge, the later winning).
 * Returns every later key of a mapping equal, as written, to an earlier one (at the later key), and the
 * document's data as yaml's `doc.toJS()` makes it, built in the same walk when the document has only plain
 * mappings, sequences and scalars (no alias, anchor or merge key, and scalar keys): `data` is undefined otherwise,
 * and the caller asks yaml. One walk over the nodes (yaml's visit freezes a new path array per node: two passes
 * of it cost ~40 ms for 1000 tunnels; toJS is a second walk of ~10-15 ms at a cold start).
 */
export function keysAsWritten(doc: Document): {duplicates: Array<{offset: number; message: string}>; data?: unknown} {
  const duplicates: Array<{offset: number; message: string}> = []
  // false once the walk meets what yaml's toJS treats in its own way: the data is then yaml's
  let plain = true
  // a plain scalar key's value set back to its source text; any other key walked
  const asWritten = (k: unknown): void => {
    if (!isScalar(k)) walk(k)
    else if (typeof k.source === 'string' && k.value !== k.source) k.value = k.source
  }
  // toJS({keep: true}) of a node: a scalar's value; a mapping an object with its pairs in order (a key that `in`
  // finds, like __proto__, defined as an own property), a sequence an array
  const walk = (node: unknown): unknown => {
    if (node === null || node === undefined) return node
    // (most nodes are scalars: tested first)
    if (isScalar(node)) {
      if (node.anchor) plain = false
      return node.value
    }
    if (isMap(node)) {
      if (node.anchor || Object.getPrototypeOf(node) !== YAMLMap.prototype) plain = false
      const seen = new Set<string>()
      const out: Record<string, unknown> = {}
      for (const pair of node.items) {
        const k = pair.key
        let key: string | undefined
        if (isScalar(k)) {
          asWritten(k)
          const v = k.value
          const text = String(v)
          if (seen.has(text)) duplicates.push({offset: k.range?.[0] ?? 0, message: 'Map keys must be unique'})
          else seen.add(text)
          // `<<` (a merge key where the schema has them, %YAML 1.1: toJS merges it even when it is a plain string)
          if ((k as {addToJSMap?: unknown}).addToJSMap || k.anchor || v === '<<' || typeof v === 'symbol' || (typeof v === 'object' && v !== null)) plain = false
          else key = v === null ? '' : text
        } else {
          plain = false
          walk(k)
        }
        const value = walk(pair.value)
        if (plain && key !== undefined) {
          if (key in out) Object.defineProperty(out, key, {value, writable: true, enumerable: true, configurable: true})
          else out[key] = value
        }
      }
      return out
    }
    if (isSeq(node)) {
      if (node.anchor || Object.getPrototypeOf(node) !== YAMLSeq.prototype) plain = false
      const out: unknown[] = []
      for (const item of node.items) out.push(walk(item))
      return out
    }
    plain = false
    if (isPair(node)) {
      // a pair in a flow sequence (`[a: 1]`: yaml 2.9 makes it a mapping of one pair)
      asWritten(node.key)
      walk(node.value)
    }
    return undefined
  }
  const data = walk(doc.contents)
  return plain ? {duplicates, data} : {duplicates}
}

/**
 * yaml's parse of a spec. Every key is read as the string it is written as (yaml's stringKeys: no key scalar is
 * resolved by its type, which keysAsWritten would undo; ~5 % of a cold parse). A document with a key that is not
 * a plain string (tagged, an alias, a collection, or none: yaml's NON_STRING_KEY error) is parsed again without
 * stringKeys, so its errors and data are exactly what they were.
 */
export function parseYaml(text: string): {doc: Document; lineCounter: LineCounter} {
  // yaml's own uniqueKeys check compares every key with every earlier one (quadratic in the number of
  // tunnels); keysAsWritten does the same check in one pass
  const options = {prettyErrors: false, uniqueKeys: false, strict: true} as const
  let lineCounter = new LineCounter()
  let doc: Document = parseDocument(text, {...options, lineCounter, stringKeys: true})
  if (doc.errors.some((e) => e.code === 'NON_STRING_KEY')) {
    lineCounter = new LineCounter()
    doc = parseDocument(text, {...options, lineCounter})
  }
  return {doc, lineCounter}
}

/**
 * Defines o[key] as an enumerable property worked out by `compute` when first read (then a plain data property):
 * it reads, copies, compares and serialises as if it had been assigned.
 */
function lazy<T extends object, K extends keyof T>(o: T, key: K, compute: () => T[K]): void {
  const settle = (value: T[K]): T[K] => {
    Object.defineProperty(o, key, {value, enumerable: true, configurable: true, writable: true})
    return value
  }
  Object.defineProperty(o, key, {enumerable: true, configurable: true, get: () => settle(compute()), set: settle})
}

/** Parses and validates a spec. Pure (apart from reading rt_tables when a route names a table). Throws SpecError with every problem. */
export function parseSpecWith(file: string, text: string, opts: ParseOptions): DesiredState {
  const {doc, lineCounter} = parseYaml(text)
  const {duplicates, data: plainData} = keysAsWritten(doc)
  const map = new SourceMap(text, doc, lineCounter)
  const errors = [...doc.errors.map((e) => ({offset: e.pos[0], message: e.message})), ...duplicates]

  if (errors.length > 0) {
    // the data of a document with syntax errors is unreliable: report only those
    const diags = errors.map((e) => {
      const pos = map.syntaxPos(e.offset)
      const message = 'YAML syntax error: ' + e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')
      return {file, line: pos.line, column: pos.column, pointer: '', message, excerpt: map.excerpt(pos)}
    })
    diags.sort((a, b) => a.line - b.line || a.column - b.column)
    throw new SpecError(diags)
  }

  let data: unknown = plainData
  try {
    if (data === undefined) data = doc.toJS({maxAliasCount: 1000})
  } catch (e: any) {
    const pos = map.posOf(0)
    throw new SpecError([{file, line: pos.line, column: pos.column, pointer: '', message: `YAML error: ${e?.message ?? e}`, excerpt: map.excerpt(pos)}])
  }

  const schemaDiags = schemaDiagnostics(data)
  const {diagnostics, tunnels} = checkTunnels(data, schemaDiags, {drivers: opts.drivers, rtTables: opts.rtTables})
  const all = [...schemaDiags, ...diagnostics]
  if (all.length > 0) throw new SpecError(locate(file, map, all))
  // file order: an object lists integer-like keys first. Data the walk built from plain mappings lists the others
  // as the file does, so the tunnels are in file order already when no name is all digits.
  if (plainData === undefined || tunnels.some((t) => /^\d+$/.test(t.name))) {
    const at = new Map(tunnels.map((t) => [t.name, map.offsetOf(t.pointer, 'key')]))
    tunnels.sort((a, b) => at.get(a.name)! - at.get(b.name)!)
  }
  // where each tunnel, its key file and its routes stand: needed only when a later error names them (a plan
  // conflict, a key file's problem), so each is worked out when first read (1000 tunnels: ~5 ms of every apply)
  const located = (offset: number): SourceLocation => {
    const pos = map.posOf(offset)
    return {line: pos.line, column: pos.column, excerpt: map.excerpt(pos)}
  }
  for (const t of tunnels) {
    lazy(t, 'at', () => located(map.offsetOf(t.pointer, 'key')))
    if (t.ipsec) lazy(t, 'keyFileAt', () => located(map.offsetOf(`${t.pointer}/ipsec/key-file`, 'value')))
    if (t.params.dev !== undefined) lazy(t, 'devAt', () => located(map.offsetOf(`${t.pointer}/dev`, 'value')))
    if (t.routePointers?.length) lazy(t, 'routeAt', () => t.routePointers!.map((p) => located(map.offsetOf(p, 'value'))))
  }
  return {file, tunnels}
}

