// SIGINT/SIGTERM/SIGHUP handling for mutating commands, and the test-only pause hook (TUNCTL_PAUSE_AT).
import {existsSync, writeFileSync} from 'node:fs'

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

export interface SignalWatch {
  /** the first signal received, if any */
  readonly signal: string | undefined
  /** from now on a signal no longer ends the process at once: it is recorded for the apply to act on */
  arm(onSignal: (sig: string, first: boolean) => void): void
  /** a promise resolved by the next signal (or at once if one came) */
  next(): Promise<string>
  dispose(): void
}

/**
 * Installs handlers for SIGINT, SIGTERM and SIGHUP. Until arm() (nothing changed yet) a signal exits at once
 * with `earlyExit` (the lock dies with the process). Once armed, signals are recorded and reported through
 * onSignal; the apply decides (roll back before the batch, let a running batch finish).
 */
export function watchSignals(earlyExit: (sig: string) => never): SignalWatch {
  let signal: string | undefined
  let armed: ((sig: string, first: boolean) => void) | undefined
  const waiters: Array<(s: string) => void> = []
  const handler = (sig: NodeJS.Signals) => {
    const first = signal === undefined
    if (first) signal = sig
    for (const w of waiters.splice(0)) w(sig)
    if (!armed) earlyExit(sig)
    armed(sig, first)
  }
  for (const s of SIGNALS) process.on(s, handler)
  return {
    get signal() {
      return signal
    },
    arm(onSignal) {
      armed = onSignal
    },
    next() {
      return signal ? Promise.resolve(signal) : new Promise((r) => waiters.push(r))
    },
    dispose() {
      for (const s of SIGNALS) process.removeListener(s, handler)
    },
  }
}

/**
 * Test hook: with TUNCTL_PAUSE_AT=PHASE[,PHASE…] and TUNCTL_PAUSE_FILE=PATH, reaching PHASE writes PHASE to
 * PATH.reached and waits until PATH exists (or a signal arrives), so a test can act at a deterministic point.
 */
export async function pausePoint(phase: string, interrupted?: () => boolean, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const at = env.TUNCTL_PAUSE_AT
  const file = env.TUNCTL_PAUSE_FILE
  if (!at || !file || !at.split(',').includes(phase)) return
  writeFileSync(`${file}.reached`, `${phase}\n`)
  while (!existsSync(file) && !interrupted?.()) await new Promise((r) => setTimeout(r, 20))
}
