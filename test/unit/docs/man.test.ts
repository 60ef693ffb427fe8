// Keeps the manual pages honest: every command, flag and exit code of the contract in tunctl(8), every key
// of the file format in tunctl.yaml(5) with the modes the drivers really accept, examples identical to
// examples/*.yaml, the flags of each command class documented (and nothing documented that does not
// exist), and groff renders both pages without a warning.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {spawnSync} from 'node:child_process'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {EXIT_TABLE} from '../../../src/lib/errors.js'
import {COMMON_KEYS, DRIVERS} from '../../../src/drivers/index.js'
import {maxMtu, minMtu} from '../../../src/drivers/common.js'
import {MODES} from '../../../src/model/types.js'
import {FIELDS} from '../../../src/model/fields.js'
import {parseSpec} from '../../../src/spec/load.js'
import {makePlan, renderPlan} from '../../../src/plan/index.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const MAN8 = join(repo, 'man', 'tunctl.8')
const MAN5 = join(repo, 'man', 'tunctl.yaml.5')
const man8 = readFileSync(MAN8, 'utf8')
const man5 = readFileSync(MAN5, 'utf8')

// ---------- the contract ----------

/** The contract: docs/PRODUCT.md, a copy of the project's shared contract (../shared/PRODUCT.md, checked below). */
const productPath = join(repo, 'docs', 'PRODUCT.md')
const sharedProduct = join(repo, '..', 'shared', 'PRODUCT.md')
const product = readFileSync(productPath, 'utf8')
/** The CLI's commands: one file each in src/commands/ (importing src/cli.ts here would load every module early). */
const COMMANDS = Object.fromEntries(readdirSync(join(repo, 'src', 'commands')).filter((f) => f.endsWith('.ts')).map((f) => [f.slice(0, -3), true]))

/**
 * Contract items not built yet, each with the issue that builds it. Everything else of the contract is checked;
 * a test below fails as soon as one of these exists, so the list cannot go stale.
 */
const NOT_YET = {
  commands: {} as Record<string, string>,
  keys: {} as Record<string, string>,
}

/** `| \`tunctl apply FILE\` | does | key flags |` rows → command → flags named in the row's last column. */
export function commandTable(md: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of md.split('\n')) {
    const m = /^\|\s*`tunctl ([a-z]+)[^`]*`\s*\|.*\|(.*)\|\s*$/.exec(line)
    if (!m || /`\s*\(planned\)\s*\|/.test(line)) continue // planned commands are not asked for yet
    out.set(m[1]!, [...new Set([...m[2]!.matchAll(/--[a-z][a-z-]*/g)].map((x) => x[0]))])
  }
  return out
}

/** Keys of the ```yaml block of the "File format" section, except tunnel names (keys directly under tunnels:). */
export function formatKeys(md: string): string[] {
  const block = /## File format[^\n]*\n```yaml\n([\s\S]*?)```/.exec(md)?.[1]
  if (!block) throw new Error('no ```yaml block under "## File format" in PRODUCT.md')
  const keys = new Set<string>()
  let tunnelsIndent: number | undefined
  for (const raw of block.split('\n')) {
    const m = /^( *)(?:- )?([A-Za-z0-9_-]+):/.exec(raw)
    if (!m) continue
    const indent = m[1]!.length
    if (m[2] === 'tunnels') tunnelsIndent = indent
    else if (tunnelsIndent !== undefined && indent === tunnelsIndent + 2 && !raw.trimStart().startsWith('- ')) continue // a tunnel name
    keys.add(m[2]!)
    // keys named in the comments: "input-key / output-key", "{address, default: bool}", "{input: bool, output: bool}"
    const comment = raw.split('#')[1] ?? ''
    for (const k of comment.matchAll(/\b((?:input|output)-key)\b/g)) keys.add(k[1]!)
    for (const obj of comment.matchAll(/\{([^}]*)\}/g)) for (const part of obj[1]!.split(',')) {
        const k = part.split(':')[0]!.trim()
        if (/^[A-Za-z][A-Za-z0-9-]*$/.test(k)) keys.add(k)
      }
  }
  return [...keys]
}

/** Every property name in the JSON schema of the file format (recursively). */
function schemaKeys(schema: any, into = new Set<string>()): Set<string> {
  if (schema && typeof schema === 'object') {
    if (schema.properties && typeof schema.properties === 'object') for (const k of Object.keys(schema.properties)) into.add(k)
    for (const v of Object.values(schema)) schemaKeys(v, into)
  }
  return into
}

// ---------- roff ----------

const SPECIAL: Record<string, string> = {aq: "'", ha: '^', em: '—', en: '–', '<>': '↔', '->': '→', bu: '•', lq: '"', rq: '"', dq: '"', ti: '~', rs: '\\'}

/** Inline roff → text: font changes dropped, \- → -, special characters, \& and \e. */
export function inline(s: string): string {
  return s
    .replace(/\\f(\[[^\]]*\]|\(..|.)/g, '')
    .replace(/\\\((..)/g, (_, n: string) => SPECIAL[n] ?? `<${n}>`)
    .replace(/\\\[([^\]]+)\]/g, (_, n: string) => SPECIAL[n] ?? `<${n}>`)
    .replace(/\\-/g, '-')
    .replace(/\\&/g, '')
    .replace(/\\e/g, '\\')
    .replace(/\\[ ~]/g, ' ')
    .replace(/\\[%:]/g, '')
}

/** Macro arguments, honouring double quotes. */
function args(s: string): string[] {
  const out: string[] = []
  for (const m of s.matchAll(/"((?:[^"]|"")*)"|(\S+)/g)) out.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2]!)
  return out
}

/** One source line → its text (font macros joined as roff would: .BR a b → "ab", .B a b → "a b"); other requests → ''. */
export function lineText(line: string): string {
  if (line.startsWith('.\\"') || line.startsWith("'\\\"")) return ''
  const m = /^\.([A-Z]{1,2})(?:\s+(.*))?$/.exec(line)
  if (!m) return line.startsWith('.') ? '' : inline(line)
  const [, macro, rest = ''] = m
  if (macro === 'B' || macro === 'I' || macro === 'SM') return inline(args(rest).join(' '))
  if (/^[BIR]{2}$/.test(macro!)) return inline(args(rest).join(''))
  if (macro === 'SH' || macro === 'SS' || macro === 'TP' || macro === 'IP') return inline(args(rest)[0] ?? '')
  return ''
}

/** Whole text of a roff fragment, whitespace collapsed. */
export function roffText(src: string): string {
  return src
    .split('\n')
    .map(lineText)
    .filter((l) => l !== '')
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim()
}

/** `.SH NAME` sections → their source (the lines after the heading). */
function sections(src: string, macro: 'SH' | 'SS'): Map<string, string> {
  const out = new Map<string, string>()
  let name: string | undefined
  let body: string[] = []
  const flush = () => name !== undefined && out.set(name, body.join('\n'))
  for (const line of src.split('\n')) {
    const m = new RegExp(`^\\.${macro}\\s+(.*)$`).exec(line)
    if (m || (macro === 'SS' && /^\.SH\s/.test(line))) {
      flush()
      name = m ? inline(args(m[1]!).join(' ')) : undefined
      body = []
    } else if (name !== undefined) body.push(line)
  }
  flush()
  return out
}

/**
 * `.TP` items of a fragment at nesting depth 0 (not inside .RS/.RE): tag text → body source.
 * The tag is the line after .TP.
 */
export function tpItems(src: string): Array<{tag: string; body: string}> {
  const lines = src.split('\n')
  const items: Array<{tag: string; body: string[]}> = []
  let depth = 0
  let cur: {tag: string; body: string[]} | undefined
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    if (/^\.RS\b/.test(l)) depth++
    if (/^\.RE\b/.test(l)) depth = Math.max(0, depth - 1)
    if (depth === 0 && /^\.TP\b/.test(l)) {
      cur = {tag: lineText(lines[++i] ?? ''), body: []}
      items.push(cur)
      continue
    }
    if (depth === 0 && /^\.(SH|SS|PP|P|LP|IP)\b/.test(l)) cur = undefined
    cur?.body.push(l)
  }
  return items.map((x) => ({tag: x.tag.trim(), body: x.body.join('\n')}))
}

/** Every .TP tag at any depth (nested keys such as routes.to). */
function allTpTags(src: string): Set<string> {
  const lines = src.split('\n')
  const tags = new Set<string>()
  lines.forEach((l, i) => {
    if (/^\.TP\b/.test(l)) tags.add(lineText(lines[i + 1] ?? '').trim())
  })
  return tags
}

/** The .EX … .EE blocks of a fragment, as text. */
function exBlocks(src: string): string[] {
  return [...src.matchAll(/^\.EX\n([\s\S]*?)^\.EE/gm)].map((m) => m[1]!.split('\n').map(inline).join('\n').trimEnd())
}

const SH8 = sections(man8, 'SH')
const SS8 = sections(man8, 'SS')
const SH5 = sections(man5, 'SH')

/** The `.SS "tunctl CMD …"` subsection of COMMANDS. */
function commandSection(cmd: string): string | undefined {
  for (const [name, body] of SS8) if (name.split(/\s+/)[0] === 'tunctl' && name.split(/\s+/)[1] === cmd) return body
  return undefined
}

/** Flags (--x) that are the tags of .TP items of a command's subsection. */
function documentedFlags(body: string): Set<string> {
  const out = new Set<string>()
  for (const it of tpItems(body)) for (const f of it.tag.matchAll(/--[a-z][a-z-]*/g)) out.add(f[0])
  return out
}

/** The SYNOPSIS lines of one command (from `.SY tunctl` to `.YS`). */
function synopsisOf(cmd: string): string | undefined {
  const syn = SH8.get('SYNOPSIS') ?? ''
  for (const block of syn.split(/^\.YS.*$/m)) {
    const lines = block.split('\n').filter((l) => l.trim() !== '')
    const i = lines.findIndex((l) => /^\.SY\s+tunctl/.test(l))
    if (i >= 0 && lineText(lines[i + 1] ?? '') === cmd) return roffText(lines.slice(i + 1).join('\n'))
  }
  return undefined
}

// ---------- tunctl(8) ----------

test('docs/PRODUCT.md is the current shared contract', () => {
  assert.ok(existsSync(sharedProduct), `${sharedProduct} is missing: the contract lives there`)
  assert.fixture(product, readFileSync(sharedProduct, 'utf8'), 'copy ../shared/PRODUCT.md to docs/PRODUCT.md')
})

/** Commands beyond the contract (it may be extended where users expect more), each with why. */
const BEYOND_CONTRACT: Record<string, string> = {help: '`tunctl help [COMMAND]`: the text of --help, as users of git or ip expect'}

test('the contract\'s commands (not planned) are exactly the CLI\'s commands and those not built yet', () => {
  const t = commandTable(product)
  const cli = Object.keys(COMMANDS).filter((c) => !(c in BEYOND_CONTRACT))
  assert.equal([...t.keys()].sort(), [...cli, ...Object.keys(NOT_YET.commands)].sort())
  for (const c of Object.keys(BEYOND_CONTRACT)) assert.ok(c in COMMANDS && !t.has(c), `BEYOND_CONTRACT: ${c} is not a command, or is in the contract now`)
})

test('src/cli.ts registers exactly the commands of src/commands/', () => {
  const m = /export const COMMANDS = \{([^}]*)\}/.exec(readFileSync(join(repo, 'src', 'cli.ts'), 'utf8'))
  assert.ok(m, 'no COMMANDS in src/cli.ts')
  assert.equal(m![1]!.split(',').map((p) => p.split(':')[0]!.trim()).filter(Boolean).sort(), Object.keys(COMMANDS).sort())
})

test('what NOT_YET lists is really not built (the list cannot go stale)', () => {
  for (const c of Object.keys(NOT_YET.commands)) assert.not.ok(c in COMMANDS, `tunctl ${c} exists now: remove it from NOT_YET`)
  const schema = schemaKeys(JSON.parse(readFileSync(join(repo, 'schemas', 'tunnels.schema.json'), 'utf8')))
  for (const k of Object.keys(NOT_YET.keys)) assert.not.ok(schema.has(k), `key ${k} is in the schema now: remove it from NOT_YET`)
})

test('parsers: the command table and the file-format keys are read from PRODUCT.md', () => {
  const t = commandTable(product!)
  assert.ok(t.get('apply')!.includes('--lock-timeout'))
  const keys = formatKeys(product!)
  for (const k of ['version', 'tunnels', 'mode', 'ignore-df', '6rd-relay-prefix', 'to', 'table', 'input-key', 'output-key', 'address', 'default', 'input', 'output']) {
    assert.ok(keys.includes(k), `parsed keys lack ${k}: ${keys.join(' ')}`)
  }
  assert.not.ok(keys.includes('gre1'), 'a tunnel name was taken for a key')
})

test('tunctl(8) has the required sections', () => {
  for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'EXIT STATUS', 'ENVIRONMENT', 'FILES', 'EXAMPLES', 'SEE ALSO']) {
    assert.ok(SH8.has(s), `missing .SH ${s}`)
  }
  const see = roffText(SH8.get('SEE ALSO')!)
  for (const ref of ['tunctl.yaml(5)', 'ip-link(8)', 'ip-tunnel(8)']) assert.ok(see.includes(ref), `SEE ALSO lacks ${ref}: ${see}`)
})

test('every command and flag of PRODUCT.md is in its COMMANDS subsection and its SYNOPSIS', () => {
  const table = commandTable(product!)
  for (const [cmd, flags] of table) {
    if (cmd in NOT_YET.commands) continue
    const body = commandSection(cmd)
    assert.ok(body, `no .SS "tunctl ${cmd} …" subsection in COMMANDS`)
    const documented = documentedFlags(body!)
    const syn = synopsisOf(cmd)
    assert.ok(syn, `no SYNOPSIS entry for tunctl ${cmd}`)
    for (const f of flags) {
      assert.ok(documented.has(f), `tunctl ${cmd}: ${f} is not documented (as a .TP item) in its subsection; documented: ${[...documented].join(' ')}`)
      assert.ok(new RegExp(`${f}(?![a-z-])`).test(syn!), `tunctl ${cmd}: ${f} missing from SYNOPSIS: ${syn}`)
    }
    // every flag of the subsection is also in the synopsis, and vice versa
    const synFlags = new Set([...syn!.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]))
    assert.equal([...documented].sort(), [...synFlags].sort(), `tunctl ${cmd}: SYNOPSIS and COMMANDS disagree`)
  }
})

test('--driver documents auto, kernel and userspace; --lock-timeout takes SECONDS; --netns takes NS', () => {
  const apply = roffText(commandSection('apply')!)
  assert.match(apply, /--driver auto\|kernel\|userspace/)
  assert.match(apply, /--lock-timeout SECONDS/)
  assert.match(apply, /--netns NS/)
  assert.match(apply, /\[#\] ip/) // what --verbose prints
})

test('EXIT STATUS lists exactly the codes of EXIT_TABLE, in order, with the same wording', () => {
  const items = tpItems(SH8.get('EXIT STATUS')!)
  const listed = items.map((it) => [Number(it.tag), roffText(it.body)] as [number, string])
  assert.equal(listed, EXIT_TABLE)
})

test('ENVIRONMENT documents NO_COLOR and TUNCTL_FAIL_AT_LINE; FILES the lock and userspace state', () => {
  const env = roffText(SH8.get('ENVIRONMENT')!)
  assert.match(env, /NO_COLOR/)
  assert.match(env, /TUNCTL_FAIL_AT_LINE=N/)
  const files = roffText(SH8.get('FILES')!)
  for (const f of ['/run/tunctl/ns/NS/lock', '/run/tunctl/ns/NS/journal.json', '/run/tunctl/ns/NS/.tunnels.json', '/run/tunctl/ns/NS/NAME.stats.json', '/run/tunctl/ns/NS/.engine.sock', '.engine.log', '/run/tunctl/host', '0700', '0600']) {
    assert.ok(files.includes(f), `FILES lacks ${f}: ${files}`)
  }
})

test('DESCRIPTION explains ownership, plan symbols, one batch, verification, rollback, lock and driver choice', () => {
  const d = roffText(SH8.get('DESCRIPTION')!)
  for (const s of ['ifalias', 'tunctl', 'ip -batch', 'verifies', 'rolls back', 'lock', 'gre0', 'tunl0', 'sit0', 'ip_vti0', '/sys/module/', 'modprobe -n', 'Plan: N to create, N to update, N to replace, N to delete.']) {
    assert.ok(d.includes(s), `DESCRIPTION lacks "${s}"`)
  }
  const tags = tpItems(sections(man8, 'SS').get('Plan')!).map((t) => t.tag)
  assert.equal(tags, ['+', '~', '-/+', '-'])
})

test('EXAMPLES cover apply, plan --detailed-exitcode, show --json | jq, del, export > file, doctor', () => {
  const ex = roffText(SH8.get('EXAMPLES')!)
  for (const re of [/tunctl apply /, /tunctl plan --detailed-exitcode/, /tunctl show --json.*\| jq/, /tunctl del /, /tunctl export > \S+/, /tunctl doctor/]) {
    assert.match(ex, re)
  }
})

test('the plan shown in EXAMPLES is what tunctl plan really prints for examples/gre.yaml', () => {
  const cmd = '$ tunctl plan --show-commands examples/gre.yaml'
  const block = exBlocks(SH8.get('EXAMPLES')!).find((b) => b.startsWith(cmd + '\n'))
  assert.ok(block, `no example starting with "${cmd}"`)
  const file = 'examples/gre.yaml'
  const desired = parseSpec(file, readFileSync(join(repo, file), 'utf8'))
  const support = {gre: {kernel: true, userspace: true, reason: 'module ip_gre loaded (fallback device gre0 exists)'}}
  const plan = makePlan(desired, {tunnels: [], links: [], kinds: {}}, {prune: false, support})
  assert.fixture(block!.slice(cmd.length + 1), renderPlan(plan, {color: false, showCommands: true, file}).trimEnd())
})

// ---------- command classes (src/commands/*.ts) ----------

const commandsDir = join(repo, 'src', 'commands')
const commandFiles = existsSync(commandsDir) ? readdirSync(commandsDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')) : []

test(`command classes (${commandFiles.length} in src/commands): every static flag is documented, and every documented flag exists`, async () => {
  assert.ok(commandFiles.length > 0, 'no command classes in src/commands')
  for (const file of commandFiles) {
    const cmd = file.replace(/\.ts$/, '')
    const mod = await import(pathToFileURL(join(commandsDir, file)).href)
    const flags: Record<string, {hidden?: boolean; char?: string}> = mod.default?.flags ?? {}
    const body = commandSection(cmd)
    assert.ok(body, `src/commands/${file}: no .SS "tunctl ${cmd} …" in tunctl(8)`)
    const documented = documentedFlags(body!)
    const declared = new Set(Object.entries(flags).filter(([, f]) => !f.hidden).map(([n]) => `--${n}`))
    for (const f of declared) assert.ok(documented.has(f), `tunctl ${cmd}: flag ${f} (src/commands/${file}) is not in tunctl(8)`)
    for (const f of documented) assert.ok(declared.has(f), `tunctl ${cmd}: tunctl(8) documents ${f} but src/commands/${file} has no such flag`)
  }
})

// ---------- tunctl.yaml(5) ----------

const keyItems = tpItems(SH5.get('TUNNEL KEYS') ?? '')
const topItems = tpItems(SH5.get('TOP-LEVEL KEYS') ?? '')

test('tunctl.yaml(5) has the required sections', () => {
  for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'TOP-LEVEL KEYS', 'TUNNEL NAMES', 'TUNNEL KEYS', 'DEFAULTS', 'KERNEL RULES', 'ADDRESS FAMILIES', 'CHANGES IN PLACE AND REPLACEMENTS', 'DIAGNOSTICS', 'EXAMPLES', 'SEE ALSO']) {
    assert.ok(SH5.has(s), `missing .SH ${s}`)
  }
})

test('every key of the PRODUCT.md file format and of the JSON schema is a documented item', () => {
  const tags = allTpTags(man5)
  const keys = new Set(formatKeys(product!).filter((k) => !(k in NOT_YET.keys)))
  const schemaFile = join(repo, 'schemas', 'tunnels.schema.json')
  if (existsSync(schemaFile)) for (const k of schemaKeys(JSON.parse(readFileSync(schemaFile, 'utf8')))) keys.add(k)
  for (const k of keys) assert.ok(tags.has(k), `key "${k}" is not a .TP item of tunctl.yaml(5)`)
})

test('TUNNEL KEYS lists exactly the keys the drivers accept, each with Type, Default and the right Modes', () => {
  const accepted = (key: string) => MODES.filter((m) => (COMMON_KEYS as readonly string[]).includes(key) || DRIVERS[m].keys.includes(key))
  const driverKeys = [...new Set([...COMMON_KEYS, ...MODES.flatMap((m) => DRIVERS[m].keys)])].sort()
  assert.equal(keyItems.map((k) => k.tag).sort(), driverKeys, 'documented tunnel keys ≠ keys the drivers accept')
  for (const {tag, body} of keyItems) {
    const text = roffText(body)
    assert.match(text, /^Type: /, `${tag}: no "Type:"`)
    assert.match(text, / Default: /, `${tag}: no "Default:"`)
    const m = / Modes: ([^.]*)\./.exec(text)
    assert.ok(m, `${tag}: no "Modes: …."`)
    const said = m![1]!.replace(/\s*\(.*\)\s*$/, '').trim()
    const modes = said === 'all' ? [...MODES] : said.split(/,\s*/)
    assert.equal(modes.sort(), accepted(tag).sort(), `${tag}: tunctl.yaml(5) says modes "${said}", the drivers accept ${accepted(tag).join(', ')}`)
  }
  assert.equal(topItems.map((t) => t.tag), ['version', 'tunnels'])
})

test('documented defaults match what the drivers fill in', () => {
  const def = (key: string) => / Default: ([^.]*(?:\.\d[^.]*)*)\./.exec(roffText(keyItems.find((k) => k.tag === key)!.body))?.[1]
  const gre = DRIVERS.gre.normalize({mode: 'gre', local: '192.0.2.1', remote: '198.51.100.7'})
  assert.is(gre.ttl, 0) // inherit
  assert.is(def('ttl'), 'inherit')
  assert.is(gre.tos, 1) // inherit
  assert.is(def('tos'), 'inherit')
  assert.is(gre.pmtudisc, true)
  assert.is(def('pmtudisc'), 'true')
  assert.is(gre.up, true)
  assert.is(def('up'), 'true')
  assert.is(gre.fwmark, 0)
  assert.is(def('fwmark'), '0')
  assert.is(gre.ignoreDf, false)
  assert.is(def('ignore-df'), 'false')
  assert.is(gre.icsum, false)
  assert.is(def('csum'), 'false')
  assert.is(gre.oseq, false)
  assert.is(def('seq'), 'false')
  const any = DRIVERS.ipip.normalize({mode: 'ipip', local: '192.0.2.1'})
  assert.is(any.remote, 'any')
  assert.is(def('remote'), 'any')
  assert.is(any.proto, 'ipip')
  assert.is(DRIVERS.sit.normalize({mode: 'sit', local: '192.0.2.1'}).proto, 'ip6ip')
  assert.match(def('encapsulated')!, /ipip \(ipip\), ip6ip \(sit\)/)
  assert.is(def('driver'), 'auto')
  assert.is(def('state'), 'present')
  const defaults = roffText(SH5.get('DEFAULTS')!)
  for (const s of ['ttl: inherit', 'tos: inherit', 'pmtudisc: true', 'up: true', 'driver: auto', 'state: present', '1480', '1476']) {
    assert.ok(defaults.includes(s), `DEFAULTS lacks "${s}"`)
  }
})

test('every default of the field table (src/model/fields.ts) is the Default tunctl.yaml(5) documents for its key', () => {
  const def = (key: string) => / Default: ([^.]*(?:\.\d[^.]*)*)\./.exec(roffText(keyItems.find((k) => k.tag === key)!.body))?.[1]
  let checked = 0
  for (const r of FIELDS) {
    if (r.default === undefined) continue
    const spelled = r.inherit !== undefined && r.default === r.inherit ? 'inherit' : String(r.default)
    for (const k of new Set(r.pair && !r.pair.split ? [r.pair.key] : r.specKeys)) {
      assert.is(def(k), spelled, `${k}: tunctl.yaml(5) says "${def(k)}", the field table's default is ${spelled}`)
      checked++
    }
  }
  assert.ok(checked >= 10, `only ${checked} defaults checked`)
})

test('the mtu ranges in tunctl.yaml(5) are the ones the drivers enforce', () => {
  const text = roffText(keyItems.find((k) => k.tag === 'mtu')!.body)
  assert.ok(text.includes(`ipip and vti ${minMtu('ipip')}..${maxMtu('ipip')}`), text)
  assert.is(maxMtu('vti'), maxMtu('ipip'))
  assert.ok(text.includes(`gre ${minMtu('gre')}..${maxMtu('gre')}, less 4 for each`), text)
  assert.is(maxMtu('gre', 8), maxMtu('gre') - 4)
  assert.ok(text.includes(`sit and isatap ${minMtu('sit')}..65535`), text) // the schema caps every mtu at 65535
  assert.is(minMtu('isatap'), minMtu('sit'))
})

test('KERNEL RULES, replacements and diagnostics are described', () => {
  const rules = roffText(SH5.get('KERNEL RULES')!)
  for (const s of ['only on gre and vti', 'pmtudisc: true', 'ignore-df needs pmtudisc: false', 'must be any', '(mode, local, remote, dev, key)', '15 bytes']) {
    assert.ok(rules.includes(s), `KERNEL RULES lacks "${s}"`)
  }
  const repl = roffText(SH5.get('CHANGES IN PLACE AND REPLACEMENTS')!)
  for (const s of ['mode', 'isatap flag', 'inner protocol', 'any and an address']) assert.ok(repl.includes(s), `replacements lack "${s}"`)
  const diag = SH5.get('DIAGNOSTICS')!
  assert.match(diag, /^ +\\\(ha$/m) // a caret line in the example
  const names = roffText(SH5.get('TUNNEL NAMES')!)
  for (const n of ['tunl0', 'gre0', 'gretap0', 'erspan0', 'sit0', 'ip_vti0']) assert.ok(names.includes(n), `TUNNEL NAMES lacks ${n}`)
})

test('the DIAGNOSTICS example is what the parser really prints for the example file', () => {
  const [input, output] = exBlocks(SH5.get('DIAGNOSTICS')!)
  assert.ok(input && output, 'DIAGNOSTICS needs two .EX blocks: the file and the report')
  let message: string | undefined
  try {
    parseSpec('tunnels.yaml', input + '\n')
  } catch (e: any) {
    message = e.message
  }
  assert.ok(message, 'the example file is valid, so it shows no diagnostic')
  assert.fixture(output!, message!.trimEnd())
})

test('EXAMPLES has one subsection per mode, identical to examples/<mode>.yaml without comments', () => {
  const ss = sections(SH5.get('EXAMPLES')!.replace(/^/, ''), 'SS')
  for (const mode of MODES) {
    const body = ss.get(mode)
    assert.ok(body, `no .SS ${mode} in EXAMPLES`)
    const shown = exBlocks(body!)[0]
    assert.ok(shown, `.SS ${mode}: no .EX block`)
    const file = readFileSync(join(repo, 'examples', `${mode}.yaml`), 'utf8')
    const expected = file.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').trimEnd()
    assert.fixture(shown, expected)
  }
})

// ---------- rendering ----------

const hasGroff = spawnSync('sh', ['-c', 'command -v groff'], {encoding: 'utf8'}).status === 0

for (const page of [MAN8, MAN5]) {
  const name = page.split('/').pop()
  if (!hasGroff && process.env.CI !== 'true') {
    test.skip(`${name} renders without groff warnings (SKIPPED: groff not installed — apt-get install groff-base)`, () => {})
    continue
  }
  test(`${name} renders with groff -man -ww without warnings`, () => {
    const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', page], {encoding: 'utf8'})
    assert.not.ok(r.error, `groff is required with CI=true (apt-get install groff-base): ${r.error}`)
    assert.is(r.status, 0, r.stderr)
    assert.is(r.stderr, '', `groff warnings:\n${r.stderr}`)
    const out = spawnSync('groff', ['-man', '-Tutf8', '-P-c', '-P-b', '-P-u', page], {encoding: 'utf8'})
    assert.ok(out.stdout.length > 2000, 'rendered page is suspiciously short')
    assert.not.match(out.stdout, /\\[f(\-]/, 'an escape survived rendering')
  })
}

test.run()
