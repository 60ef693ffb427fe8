// JSON-Schema validation of the parsed spec (schemas/tunnels.schema.json) and ajv errors → readable messages.
import {readFileSync} from 'node:fs'
import {Ajv, type ErrorObject, type Options, type ValidateFunction} from 'ajv'
import {precompiled} from './schema-precompiled.js'
import {describePointer, joinPointer, splitPointer} from './pointer.js'
import {didYouMean} from './suggest.js'
import type {Target} from './positions.js'

/** A problem before it has a file position: a JSON pointer into the document and what it points at. */
export interface RawDiagnostic {
  pointer: string
  message: string
  target?: Target
}

export const SCHEMA_URL = new URL('../../schemas/tunnels.schema.json', import.meta.url)

let cached: {schema: any; validate: ValidateFunction} | undefined

/** The Ajv of the spec's validation (scripts/bundle.mjs compiles the bundle's validator ahead of time with it). */
export function specAjv(extra: Options = {}): Ajv {
  const ajv = new Ajv({allErrors: true, strict: true, allowUnionTypes: true, ...extra})
  ajv.addKeyword({keyword: 'x-expect', schemaType: 'string'})
  return ajv
}

export function loadSchema(): {schema: any; validate: ValidateFunction} {
  if (cached) return cached
  const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8'))
  cached = {schema, validate: precompiled ?? specAjv().compile(schema)}
  return cached
}

/** The schema node that describes the instance at `segs` (follows properties / additionalProperties / items / $ref). */
export function schemaAt(root: any, segs: string[]): any {
  let node = deref(root, root)
  for (const seg of segs) {
    if (!node) return undefined
    if (node.properties && Object.hasOwn(node.properties, seg)) node = node.properties[seg]
    else if (node.items && /^\d+$/.test(seg)) node = node.items
    else if (node.additionalProperties && typeof node.additionalProperties === 'object') node = node.additionalProperties
    else return undefined
    node = deref(root, node)
  }
  return node
}

function deref(root: any, node: any): any {
  let n = node
  for (let i = 0; n && n.$ref && i < 10; i++) {
    const path = String(n.$ref).replace(/^#\//, '').split('/')
    n = path.reduce((acc: any, k) => acc?.[k], root)
  }
  return n
}

/** `tunnel "gre1": ` for anything inside a tunnel entry, '' elsewhere. */
export function tunnelPrefix(pointer: string): string {
  const segs = splitPointer(pointer)
  return segs[0] === 'tunnels' && segs.length >= 2 ? `tunnel "${segs[1]}": ` : ''
}

/** where a key is missing or unknown: ` in seq`, ` in routes[0]`, ` at the top level`, or '' for a tunnel entry. */
function where(parentPointer: string): string {
  const {tunnel, label} = describePointer(parentPointer)
  if (label) return ` in ${label}`
  return tunnel === undefined ? ' at the top level' : ''
}

function subject(pointer: string): string {
  const segs = splitPointer(pointer)
  if (segs.length === 0) return 'the file'
  if (segs[0] === 'tunnels' && segs.length === 2) return `tunnel "${segs[1]}"`
  return describePointer(pointer).label
}

export function schemaDiagnostics(data: unknown): RawDiagnostic[] {
  // the precompiled validator needs no schema: it is read only to word the errors (and to compile it in src, tests)
  const validate = precompiled ?? loadSchema().validate
  if (validate(data)) return []
  const {schema} = loadSchema()
  const out: RawDiagnostic[] = []
  const seenValue = new Set<string>()
  for (const e of validate.errors as ErrorObject[]) {
    if (e.keyword === 'additionalProperties') {
      const prop = String(e.params.additionalProperty)
      const node = schemaAt(schema, splitPointer(e.instancePath))
      const known = Object.keys(node?.properties ?? {})
      let hint = prop === '<<' ? ' (YAML merge keys are not supported; write the settings out)' : didYouMean(prop, known)
      if (!hint && splitPointer(e.instancePath).length === 0 && !(typeof data === 'object' && data !== null && 'tunnels' in data)) {
        hint = ' (tunnels go under "tunnels:")'
      }
      out.push({pointer: e.instancePath + joinPointer(prop), target: 'key', message: `${tunnelPrefix(e.instancePath)}unknown key "${prop}"${where(e.instancePath)}${hint}`})
    } else if (e.keyword === 'required') {
      const prop = String(e.params.missingProperty)
      out.push({pointer: e.instancePath, target: 'key', message: `${tunnelPrefix(e.instancePath)}missing required key "${prop}"${where(e.instancePath)}`})
    } else {
      if (seenValue.has(e.instancePath)) continue
      seenValue.add(e.instancePath)
      const segs = splitPointer(e.instancePath)
      const node = schemaAt(schema, segs)
      const expect: string | undefined = node?.['x-expect']
      let message: string
      const prefix = segs.length > 2 ? tunnelPrefix(e.instancePath) : ''
      if (expect) message = `${prefix}${subject(e.instancePath)} must be ${expect}`
      else message = `${prefix}${subject(e.instancePath)} ${e.message ?? 'is invalid'}`
      if (segs.length === 0 && (data === null || data === undefined)) message = `the file is empty; it must be ${expect}`
      const value = segs.reduce((acc: any, k) => acc?.[k], data)
      if (e.keyword === 'enum' && typeof value === 'string') message += didYouMean(value, e.params.allowedValues ?? [])
      out.push({pointer: e.instancePath, target: 'value', message})
    }
  }
  return out
}
