// Spec front end entry points: read FILE or stdin, parse and validate into a DesiredState (see parse.ts).
import {isUtf8} from 'node:buffer'
import {open, type FileHandle} from 'node:fs/promises'
import {DRIVERS} from '../drivers/index.js'
import type {DesiredState} from '../model/types.js'
import {InputError, SpecError} from '../lib/errors.js'
import {visible} from '../lib/text.js'
import {clipExcerpt} from './positions.js'
import {parseSpecWith, type ParseOptions} from './parse.js'
import {loadKeyFiles} from '../ipsec/keyfile.js'

export {locate} from './parse.js'
export const STDIN_NAME = '<stdin>'

export type SpecOptions = Partial<ParseOptions>

/** The largest spec tunctl reads (a spec of thousands of tunnels is well under 1 MiB). */
export const MAX_SPEC_BYTES = 4 * 1024 * 1024

/**
 * Reads FILE, or stdin for `-`. Missing or unreadable → InputError (exit 66). More than MAX_SPEC_BYTES, or bytes
 * that are not UTF-8 → SpecError (exit 65; the first bad byte's line:column).
 */
export async function readInput(file: string): Promise<{file: string; text: string}> {
  let bytes: Buffer = Buffer.alloc(0)
  let tooLarge = false
  const name = file === '-' ? STDIN_NAME : file
  if (file === '-') {
    try {
      const chunks: Buffer[] = []
      let n = 0
      for await (const c of process.stdin) {
        const b = Buffer.isBuffer(c) ? c : Buffer.from(c)
        chunks.push(b)
        n += b.length
        if (n > MAX_SPEC_BYTES) break // read no further than needed to know it is too large
      }
      bytes = Buffer.concat(chunks)
    } catch (e: any) {
      throw new InputError(`cannot read standard input: ${e?.message ?? e}`)
    }
  } else {
    let fh: FileHandle | undefined
    try {
      fh = await open(file, 'r')
      const st = await fh.stat()
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), {code: 'EISDIR'})
      if (st.isFile() && st.size > MAX_SPEC_BYTES) tooLarge = true
      else {
        // not a regular file (a pipe, /dev/stdin): read up to the limit and one byte more
        const buf = Buffer.alloc(MAX_SPEC_BYTES + 1)
        let n = 0
        for (;;) {
          const {bytesRead} = await fh.read(buf, n, buf.length - n, null)
          if (bytesRead === 0) break
          n += bytesRead
          if (n >= buf.length) break
        }
        bytes = buf.subarray(0, n)
      }
    } catch (e: any) {
      const why = e?.code === 'ENOENT' ? 'no such file' : e?.code === 'EACCES' ? 'permission denied' : e?.code === 'EISDIR' ? 'is a directory' : (e?.message ?? String(e))
      throw new InputError(`cannot read ${file}: ${why}`)
    } finally {
      await fh?.close()
    }
  }
  if (tooLarge) throw new SpecError([{file: name, line: 1, column: 1, pointer: '', message: tooLargeMessage()}])
  return {file: name, text: decodeSpec(name, bytes)}
}

/** The bytes of a spec as text: at most MAX_SPEC_BYTES of UTF-8 (a BOM is dropped), else SpecError (65). */
export function decodeSpec(file: string, bytes: Uint8Array): string {
  const at1 = (message: string): SpecError => new SpecError([{file, line: 1, column: 1, pointer: '', message}])
  if (bytes.length > MAX_SPEC_BYTES) throw at1(tooLargeMessage())
  // Node's native check first (well-formed UTF-8 by the same rules; ~0.05 ms against 1-3 ms for a 140 KB spec at
  // a cold start); the byte-by-byte scan only finds where a bad file goes wrong
  const bad = isUtf8(bytes) ? -1 : firstInvalidUtf8(bytes)
  if (bad >= 0) {
    const lineStart = bytes.lastIndexOf(0x0a, bad - 1) + 1
    let line = 1
    for (let i = 0; i < lineStart; i++) if (bytes[i] === 0x0a) line++
    const before = Buffer.from(bytes.subarray(lineStart, bad)).toString('utf8')
    const column = before.length + 1
    let lineEnd = bytes.indexOf(0x0a, bad)
    if (lineEnd < 0) lineEnd = bytes.length
    const src = Buffer.from(bytes.subarray(lineStart, lineEnd)).toString('utf8').replace(/\r$/, '')
    const shown = clipExcerpt(visible(src.replace(/\ufffd/g, '\\ufffd')), visible(before).length + 1)
    throw new SpecError([
      {file, line, column, pointer: '', message: `the file is not UTF-8: byte 0x${bytes[bad]!.toString(16).padStart(2, '0')} at offset ${bad} does not decode`, excerpt: shown},
    ])
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

function tooLargeMessage(): string {
  return `the file is larger than ${MAX_SPEC_BYTES / 1024 / 1024} MiB, the most tunctl reads as a spec`
}

/** Offset of the first byte that is not part of well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0
  while (i < b.length) {
    const c = b[i]!
    if (c < 0x80) {
      i++
      continue
    }
    let n: number
    let lo = 0x80
    let hi = 0xbf
    if (c >= 0xc2 && c <= 0xdf) n = 1
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2
      if (c === 0xe0) lo = 0xa0
      if (c === 0xed) hi = 0x9f
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3
      if (c === 0xf0) lo = 0x90
      if (c === 0xf4) hi = 0x8f
    } else return i
    for (let k = 1; k <= n; k++) {
      const d = b[i + k]
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i
    }
    i += n + 1
  }
  return -1
}

/** Parses and validates a spec (pure, except reading rt_tables when a route names a table). Throws SpecError with every problem. */
export function parseSpec(file: string, text: string, opts: SpecOptions = {}): DesiredState {
  return parseSpecWith(file, text, {drivers: opts.drivers ?? DRIVERS, rtTables: opts.rtTables})
}

/** readInput + parseSpec + the key files of vti ipsec blocks (src/ipsec/keyfile.ts: 66 missing, 65 otherwise). */
export async function loadSpec(file: string, opts: SpecOptions = {}): Promise<DesiredState> {
  const input = await readInput(file)
  const state = parseSpec(input.file, input.text, opts)
  loadKeyFiles(state, {stdinName: STDIN_NAME})
  return state
}
