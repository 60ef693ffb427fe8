// Maps JSON pointers into a parsed YAML document back to source positions, and renders excerpts with a caret.
import {isAlias, isMap, isNode, isScalar, isSeq, LineCounter, visit, type Document, type Node as YNode, type Pair, type YAMLMap} from 'yaml'
import {clipExcerpt, visibleKeepTab} from './excerpt.js'
import {splitPointer} from './pointer.js'

export {clipExcerpt, EXCERPT_WIDTH, visibleKeepTab} from './excerpt.js'

/** What of the addressed element a diagnostic points at: its key (`kye:`) or its value (`300`). */
export type Target = 'key' | 'value'

export interface SourcePos {
  offset: number
  line: number // 1-based
  column: number // 1-based
}

export class SourceMap {
  constructor(
    readonly text: string,
    readonly doc: Document | undefined,
    readonly lineCounter: LineCounter,
  ) {}

  /** the source lines, split when first needed (a valid spec needs none) */
  get lines(): string[] {
    return (this.splitLines ??= this.text.split(/\r?\n/))
  }

  private splitLines?: string[]

  posOf(offset: number): SourcePos {
    const o = Math.max(0, Math.min(offset, this.text.length))
    const {line, col} = this.lineCounter.linePos(o)
    // an offset at the very end of a file that ends with a newline maps past the last line
    if (line > this.lines.length) return {offset: o, line: this.lines.length, column: 1}
    return {offset: o, line, column: col}
  }

  /**
   * Position for a YAML syntax error: past leading whitespace on its line, and at the end of the last
   * non-empty line when the parser reports the end of the file.
   */
  syntaxPos(offset: number): SourcePos {
    let o = Math.max(0, Math.min(offset, this.text.length))
    if (/^\s*$/.test(this.text.slice(o))) {
      const trimmed = this.text.replace(/\s+$/, '')
      if (trimmed.length > 0) return this.posOf(trimmed.length)
    }
    while (o < this.text.length && (this.text[o] === ' ' || this.text[o] === '\t')) o++
    if (o < this.text.length && (this.text[o] === '\n' || this.text[o] === '\r')) o = Math.max(0, Math.min(offset, this.text.length))
    return this.posOf(o)
  }

  /** Source offset of the element the pointer addresses (its key or value), or of the nearest ancestor that exists. */
  offsetOf(pointer: string, target: Target = 'value'): number {
    // each position resolved once, however many diagnostics share it
    const k = target + pointer
    let o = this.offsets.get(k)
    if (o === undefined) this.offsets.set(k, (o = this.findOffset(pointer, target)))
    return o
  }

  private readonly offsets = new Map<string, number>()

  private findOffset(pointer: string, target: Target): number {
    const doc = this.doc
    if (!doc) return 0
    let node: unknown = doc.contents
    let keyNode: YNode | undefined
    const segs = splitPointer(pointer)
    // the first alias on the way: what lies inside the anchored node is reported where the alias is used
    let via: YNode | undefined
    for (let i = 0; i < segs.length; i++) {
      if (isAlias(node) && !via) via = node as YNode
      node = this.resolve(node)
      const seg = segs[i]
      const last = i === segs.length - 1
      if (isMap(node)) {
        const pair = this.pairOf(node, seg)
        // a member that is not there (a required key, or a driver rule about a missing setting): the entry's key
        if (!pair) return rangeStart(keyNode) ?? rangeStart(node as YNode) ?? 0
        keyNode = (pair.key as YNode) ?? keyNode
        if (last && target === 'key') return rangeStart(keyNode) ?? 0
        node = pair.value
        if (node == null || (isScalar(node) && node.value == null && emptyRange(node))) {
          // `gre1:` with nothing after it: point at the key
          return rangeStart(keyNode) ?? 0
        }
      } else if (isSeq(node)) {
        const idx = Number(seg)
        const item = Number.isInteger(idx) ? node.items[idx] : undefined
        if (item == null) break
        node = item
        keyNode = undefined
      } else {
        break
      }
    }
    // (an alias is reported where it is used, not at its anchor)
    if (via) return rangeStart(via) ?? 0
    // a diagnostic about a missing or extra member of a mapping points at the mapping's key (`gre1:`)
    if (keyNode && (isMap(this.resolve(node)) || isSeq(this.resolve(node))) && target === 'key') return rangeStart(keyNode) ?? 0
    const start = rangeStart(node as YNode)
    if (start !== undefined) return start
    return rangeStart(keyNode) ?? 0
  }

  /** The source line (control characters escaped, clipped around the column) and a caret line under the column. */
  excerpt(pos: SourcePos): string {
    const src = this.lines[pos.line - 1] ?? ''
    const before = visibleKeepTab(src.slice(0, pos.column - 1))
    return clipExcerpt(before + visibleKeepTab(src.slice(pos.column - 1)), before.length + 1)
  }

  /** The first pair of a mapping with that key; each mapping indexed once (a spec may list thousands of tunnels). */
  private pairOf(map: YAMLMap, key: string): Pair | undefined {
    let index = this.pairIndex.get(map)
    if (!index) {
      index = new Map()
      for (const p of map.items as Pair[]) {
        const k = keyText(p.key)
        if (k !== undefined && !index.has(k)) index.set(k, p)
      }
      this.pairIndex.set(map, index)
    }
    return index.get(key)
  }

  private readonly pairIndex = new WeakMap<YAMLMap, Map<string, Pair>>()

  /** An alias's anchored node: every alias of the document mapped in one pass (yaml's Alias.resolve walks the
   * whole document each time, which a file with many aliases and many errors cannot afford). */
  private resolve(node: unknown): unknown {
    if (!isAlias(node) || !this.doc) return node
    if (!this.aliases) {
      this.aliases = new Map()
      const anchors = new Map<string, unknown>()
      const aliases = this.aliases
      visit(this.doc, {
        Node(_, n) {
          if (isAlias(n)) aliases.set(n, anchors.get(n.source))
          else if (isNode(n) && n.anchor) anchors.set(n.anchor, n)
        },
      })
    }
    return this.aliases.get(node)
  }

  private aliases?: Map<unknown, unknown>
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value)
  if (key == null) return undefined
  return String(key)
}

function rangeStart(node: YNode | undefined | null): number | undefined {
  const r = node?.range
  return r ? r[0] : undefined
}

function emptyRange(node: YNode): boolean {
  const r = node.range
  return !r || r[0] === r[1]
}
