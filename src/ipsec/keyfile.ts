// Reads the key files named by ipsec blocks (after the spec parsed): where, who may read them, and their format.
// Contract: one `NAME: 0xHEX` per line, `#` comments; aead: out, in (key + 4-byte salt); cipher+auth: out-enc,
// out-auth, in-enc, in-auth. Errors never quote key material: a key file's excerpt has every value masked.
import {closeSync, fstatSync, openSync, readSync} from 'node:fs'
import {dirname, isAbsolute, join, resolve} from 'node:path'
import {EXIT, SpecError, type Diagnostic} from '../lib/errors.js'
import {visible} from '../lib/text.js'
import {clipExcerpt, visibleKeepTab} from '../spec/excerpt.js'
import type {DesiredState, DesiredTunnel} from '../model/types.js'
import {KEY_BYTES, keyNames, type IpsecParams} from './spec.js'
import {setKeyPath, setKeys, type KeyMaterial} from './keys.js'

/** A key file is a few lines; anything larger is not one. */
const MAX_KEY_FILE = 64 * 1024
const ALL_NAMES = ['out', 'in', 'out-enc', 'out-auth', 'in-enc', 'in-auth']

/** Where a key-file path is taken from: the spec file's folder, or the current folder for standard input. */
export function keyFilePath(specFile: string, keyFile: string, stdinName = '<stdin>'): string {
  if (isAbsolute(keyFile)) return keyFile
  return specFile === stdinName ? keyFile : join(dirname(specFile), keyFile)
}

/**
 * The key file's line with every value masked: what follows the first `:` or `#` (values, and comments, where
 * old keys are often parked), or the whole line when it has neither. Same length, so a caret still points right.
 */
export function maskedLine(line: string): string {
  const cut = [line.indexOf(':'), line.indexOf('#')].filter((i) => i >= 0)
  const at = cut.length ? Math.min(...cut) + 1 : 0
  return line.slice(0, at) + line.slice(at).replace(/[0-9A-Za-z]/g, '*')
}

function excerpt(line: string, column: number): string {
  const masked = maskedLine(line)
  const before = visibleKeepTab(masked.slice(0, column - 1))
  return clipExcerpt(before + visibleKeepTab(masked.slice(column - 1)), before.length + 1)
}

/** Parses a key file's text for `p`'s algorithm: the keys, or diagnostics naming the key file's line:col. */
export function parseKeyFile(file: string, text: string, p: IpsecParams): {keys?: KeyMaterial; diagnostics: Diagnostic[]} {
  const diags: Diagnostic[] = []
  const lines = text.split('\n')
  const wanted = keyNames(p)
  const keys: KeyMaterial = {}
  const seen = new Map<string, number>()
  const at = (i: number, column: number, message: string) =>
    diags.push({file, line: i + 1, column, pointer: '', message, excerpt: excerpt(lines[i]!.replace(/\r$/, ''), column)})
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '')
    const body = line.replace(/#.*$/, '')
    if (body.trim() === '') return
    const m = /^(\s*)([^:\s]*)\s*(:?)\s*(.*?)\s*$/.exec(body)!
    const name = m[2]!
    const nameCol = m[1]!.length + 1
    if (!m[3]) return at(i, nameCol, `expected "NAME: 0xHEX" (a key-file line is a name, a colon and a hex value)`)
    if (!ALL_NAMES.includes(name)) return at(i, nameCol, `unknown key name "${visible(name)}" (this block uses ${wanted.join(', ')})`)
    if (!wanted.includes(name)) return at(i, nameCol, `key "${name}" is not used with ${p.aead ? `aead ${p.aead}` : `cipher ${p.cipher} + auth ${p.auth}`} (this block uses ${wanted.join(', ')})`)
    if (seen.has(name)) return at(i, nameCol, `key "${name}" is defined twice (first on line ${seen.get(name)! + 1})`)
    seen.set(name, i)
    const value = m[4]!
    const valueCol = body.indexOf(value, body.indexOf(':') + 1) + 1
    if (!/^0x[0-9a-fA-F]+$/.test(value)) return at(i, valueCol, `the value of "${name}" must be 0x followed by hex digits`)
    const digits = value.length - 2
    if (digits % 2) return at(i, valueCol, `the value of "${name}" has an odd number of hex digits (${digits}); a key is whole bytes`)
    const alg = name.endsWith('-auth') ? p.auth! : (p.aead ?? p.cipher)!
    const need = KEY_BYTES[alg]
    if (digits / 2 !== need) {
      const what = p.aead ? `${need - 4}-byte key + 4-byte salt` : `${need}-byte key`
      return at(i, valueCol, `"${name}" is ${digits / 2} bytes; ${alg} needs ${need} (${what})`)
    }
    keys[name] = Buffer.from(value.slice(2), 'hex')
  })
  const missing = wanted.filter((n) => !seen.has(n))
  if (missing.length) {
    const last = Math.max(0, lines.length - (lines[lines.length - 1] === '' ? 2 : 1))
    diags.push({file, line: last + 1, column: 1, pointer: '', message: `missing key${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')} (this block uses ${wanted.join(', ')})`})
  }
  return diags.length ? {diagnostics: diags} : {keys, diagnostics: []}
}

function specDiag(state: DesiredState, t: DesiredTunnel, message: string): Diagnostic {
  const at = t.keyFileAt ?? t.at
  return {file: state.file, line: at?.line ?? 1, column: at?.column ?? 1, pointer: `${t.pointer}/ipsec/key-file`, message: `tunnel "${visible(t.name)}": ${message}`, excerpt: at?.excerpt}
}

/** A key file that does not exist: exit 66 (no input, like a missing spec file), with the spec's file:line:col,
 * source line and caret at the key-file value, and every other key-file problem found with it. */
export class KeyFileMissingError extends SpecError {
  override exitCode: number = EXIT.NOINPUT
  override code = 'no-input'
}

/**
 * Reads the key file of every ipsec block and attaches its keys (keys.ts). Every problem is reported at once:
 * a missing file → KeyFileMissingError (66); otherwise unreadable, not owned by root, readable by group or others,
 * or malformed → SpecError (65).
 * `validate` reads key files too: they are input, like the spec (it never looks at the system).
 */
export function loadKeyFiles(state: DesiredState, opts: {stdinName?: string; requireRoot?: boolean; cwd?: string} = {}): void {
  const diags: Diagnostic[] = []
  let missing = false
  const cache = new Map<string, {text?: string; uid: number; mode: number} | 'missing'>()
  for (const t of state.tunnels) {
    if (!t.ipsec?.keyFile || t.state === 'absent') continue
    const path = keyFilePath(state.file, t.ipsec.keyFile, opts.stdinName)
    let got = cache.get(path)
    if (!got) {
      let fd: number | undefined
      try {
        fd = openSync(opts.cwd && !isAbsolute(path) ? join(opts.cwd, path) : path, 'r')
        const st = fstatSync(fd)
        if (!st.isFile()) throw Object.assign(new Error('not a regular file'), {code: 'ENOTFILE'})
        if (st.size > MAX_KEY_FILE) throw Object.assign(new Error('too large'), {code: 'EFBIG'})
        // refused before any byte is read: a file others can read is no longer secret
        let text: string | undefined
        if ((st.mode & 0o077) === 0 && st.uid === 0) {
          const buf = Buffer.alloc(Number(st.size))
          let n = 0
          while (n < buf.length) {
            const r = readSync(fd, buf, n, buf.length - n, null)
            if (r === 0) break
            n += r
          }
          text = buf.subarray(0, n).toString('utf8')
          buf.fill(0)
        }
        got = {text, uid: st.uid, mode: st.mode & 0o777}
      } catch (e: any) {
        if (e?.code === 'ENOENT') got = 'missing'
        else {
          const why = e?.code === 'EACCES' ? 'permission denied' : e?.code === 'EISDIR' || e?.code === 'ENOTFILE' ? 'not a regular file' : e?.code === 'EFBIG' ? `larger than ${MAX_KEY_FILE / 1024} KiB` : String(e?.message ?? e)
          diags.push(specDiag(state, t, `cannot read key file ${visible(path)}: ${why}`))
          continue
        }
      } finally {
        if (fd !== undefined) closeSync(fd)
      }
      cache.set(path, got)
    }
    if (got === 'missing') {
      missing = true
      diags.push(specDiag(state, t, `key file ${visible(path)} does not exist`))
      continue
    }
    if (got.uid !== 0 && opts.requireRoot !== false) {
      diags.push(specDiag(state, t, `key file ${visible(path)} is owned by uid ${got.uid}, not root; a key file must be owned by root (chown root ${visible(path)})`))
      continue
    }
    if (got.mode & 0o077) {
      diags.push(specDiag(state, t, `key file ${visible(path)} is readable or writable by group or others (mode ${got.mode.toString(8).padStart(4, '0')}); chmod 600 ${visible(path)}`))
      continue
    }
    const r = parseKeyFile(path, got.text ?? '', t.ipsec)
    if (r.keys) {
      setKeys(t.ipsec, r.keys)
      setKeyPath(t.ipsec, resolve(opts.cwd ?? process.cwd(), path)) // the userspace vti's daemon reads it again
    }
    else diags.push(...r.diagnostics.filter((d) => !diags.some((x) => x.file === d.file && x.line === d.line && x.column === d.column && x.message === d.message)))
  }
  if (diags.length) throw missing ? new KeyFileMissingError(diags) : new SpecError(diags)
}
