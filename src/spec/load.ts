// Spec front end entry points: read FILE or stdin, parse and validate into a DesiredState (see parse.ts).
import {readFile} from 'node:fs/promises'
import {DRIVERS} from '../drivers/index.js'
import type {DesiredState} from '../model/types.js'
import {InputError} from '../lib/errors.js'
import {parseSpecWith, type ParseOptions} from './parse.js'

export {locate} from './parse.js'
export const STDIN_NAME = '<stdin>'

export type SpecOptions = Partial<ParseOptions>

/** Reads FILE, or stdin for `-`. Missing or unreadable → InputError (exit 66). */
export async function readInput(file: string): Promise<{file: string; text: string}> {
  if (file === '-') {
    try {
      const chunks: Buffer[] = []
      for await (const c of process.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c))
      return {file: STDIN_NAME, text: Buffer.concat(chunks).toString('utf8')}
    } catch (e: any) {
      throw new InputError(`cannot read standard input: ${e?.message ?? e}`)
    }
  }
  try {
    return {file, text: await readFile(file, 'utf8')}
  } catch (e: any) {
    const why = e?.code === 'ENOENT' ? 'no such file' : e?.code === 'EACCES' ? 'permission denied' : e?.code === 'EISDIR' ? 'is a directory' : (e?.message ?? String(e))
    throw new InputError(`cannot read ${file}: ${why}`)
  }
}

/** Parses and validates a spec (pure, except reading rt_tables when a route names a table). Throws SpecError with every problem. */
export function parseSpec(file: string, text: string, opts: SpecOptions = {}): DesiredState {
  return parseSpecWith(file, text, {drivers: opts.drivers ?? DRIVERS, rtTables: opts.rtTables})
}

/** readInput + parseSpec. */
export async function loadSpec(file: string, opts: SpecOptions = {}): Promise<DesiredState> {
  const input = await readInput(file)
  return parseSpec(input.file, input.text, opts)
}
