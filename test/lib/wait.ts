// Synchronisation for tests: wait on a condition with a time limit and a message, never a fixed sleep.
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'

export interface WaitOptions {
  /** what is awaited, for the error message */
  what: string
  timeoutMs?: number
  intervalMs?: number
}

const describe = (v: unknown) => {
  try {
    return JSON.stringify(v)?.slice(0, 500)
  } catch {
    return String(v)
  }
}

/** Polls probe() until ok(value); returns that value, or throws naming `what` and the last value seen. */
export async function waitFor<T>(probe: () => T | Promise<T>, ok: (v: T) => boolean, o: WaitOptions): Promise<T> {
  const end = Date.now() + (o.timeoutMs ?? 5000)
  for (;;) {
    const v = await probe()
    if (ok(v)) return v
    if (Date.now() > end) throw new Error(`timed out after ${o.timeoutMs ?? 5000} ms waiting for ${o.what}; last seen: ${describe(v)}`)
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 50))
  }
}

/** waitFor() for synchronous code (blocks the thread between probes). */
export function waitForSync<T>(probe: () => T, ok: (v: T) => boolean, o: WaitOptions): T {
  const end = Date.now() + (o.timeoutMs ?? 5000)
  for (;;) {
    const v = probe()
    if (ok(v)) return v
    if (Date.now() > end) throw new Error(`timed out after ${o.timeoutMs ?? 5000} ms waiting for ${o.what}; last seen: ${describe(v)}`)
    spawnSync('sleep', [String((o.intervalMs ?? 50) / 1000)])
  }
}

/** True while pid runs and is not a zombie. */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}
