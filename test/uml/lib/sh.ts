// Runs commands inside the UML guest (synchronously: tests are sequential and processes here are slow anyway).
import {spawn, spawnSync} from 'node:child_process'

export interface Run {
  code: number
  stdout: string
  stderr: string
  argv: string[]
}

/** Refuses to run outside user-mode-linux: these tests create tunnels a host kernel may not have. */
export function assertInUml(): void {
  if (!process.env.UML_OUT) {
    throw new Error('test/uml runs inside user-mode-linux only: bash test/uml/uml.sh test/uml/suite.sh')
  }
}

export function run(cmd: string, args: string[], opts: {input?: string; env?: Record<string, string>; timeoutMs?: number} = {}): Run {
  // as from a plain non-interactive shell: no colour forcing inherited from the test runner
  const env: Record<string, string | undefined> = {...process.env, ...opts.env}
  delete env.FORCE_COLOR
  const r = spawnSync(cmd, args, {
    input: opts.input,
    env,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 256 * 1024 * 1024,
  })
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`)
  return {code: r.status ?? 128 + (r.signal ? 9 : 0), stdout: r.stdout ?? '', stderr: r.stderr ?? '', argv: [cmd, ...args]}
}

/** run(), but in the background (for concurrent invocations). */
export function runAsync(cmd: string, args: string[], opts: {env?: Record<string, string>} = {}): Promise<Run> {
  const env: Record<string, string | undefined> = {...process.env, ...opts.env}
  delete env.FORCE_COLOR
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, {env, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = '', stderr = ''
    c.stdout.on('data', (d) => (stdout += d))
    c.stderr.on('data', (d) => (stderr += d))
    c.on('error', reject)
    c.on('close', (code, sig) => resolve({code: code ?? 128 + (sig ? 9 : 0), stdout, stderr, argv: [cmd, ...args]}))
  })
}

/** Like run, but throws (with stderr) unless the exit status is 0. */
export function must(cmd: string, args: string[], opts: {input?: string} = {}): string {
  const r = run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} → exit ${r.code}: ${r.stderr.trim()}`)
  return r.stdout
}

/** ip -n NS ARGS..., throwing on failure. */
export function ipn(ns: string, ...args: string[]): string {
  return must('ip', ['-n', ns, ...args])
}

export function ipnJson<T = any>(ns: string, ...args: string[]): T {
  const out = ipn(ns, '-j', ...args).trim()
  return (out ? JSON.parse(out) : []) as T
}

/** `ip netns exec NS CMD...` */
export function nsExec(ns: string, cmd: string, args: string[]): Run {
  return run('ip', ['netns', 'exec', ns, cmd, ...args])
}
