// Tests that run bin/run exercise dist/bundle/tunctl.cjs (the esbuild bundle bin/run loads), so that is what
// must be at least as new as every source file; rebuild it (tsc + bundle, as `npm run build`) when it is not.
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

const repo = join(import.meta.dirname, '..', '..')
export const BUNDLE = join(repo, 'dist', 'bundle', 'tunctl.cjs')
/** the userspace engine, bundled by the same script (src/userspace/control.ts engineArgv runs it) */
export const ENGINE_BUNDLE = join(repo, 'dist', 'bundle', 'engine.js')

function newestSource(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, {withFileTypes: true})) {
    const p = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** Rebuilds the CLI and engine bundles if any file under src/ or schemas/ is newer; throws with the build output if that fails. */
export function ensureBuilt(): void {
  const newest = Math.max(newestSource(join(repo, 'src')), newestSource(join(repo, 'schemas')))
  const fresh = () => [BUNDLE, ENGINE_BUNDLE].every((f) => existsSync(f) && statSync(f).mtimeMs >= newest)
  if (fresh()) return
  for (const argv of [[join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', repo], [join(repo, 'scripts', 'bundle.mjs')]]) {
    const r = spawnSync(process.execPath, argv, {cwd: repo, encoding: 'utf8'})
    if (r.status !== 0) throw new Error(`build failed: ${argv.join(' ')}\n${r.stdout}${r.stderr}`)
  }
  if (!fresh()) throw new Error(`${BUNDLE} or ${ENGINE_BUNDLE} is still older than the sources after building`)
}
