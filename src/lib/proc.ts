// The one process-identity check: a pid names the process we mean only if it is alive (not a zombie), started at
// the recorded time (/proc/PID/stat field 22, clock ticks since boot: a reused pid has another) and, when the
// caller knows what it runs, has the expected command line. Used for the journal's owner (an apply or its
// --confirm watchdog), stale batch files, the watchdog start-up and the userspace engine.
import {readFileSync} from 'node:fs'

/** Start time of a live process (field 22 of /proc/PID/stat, clock ticks since boot); undefined if it is gone or a zombie. */
export function startTicks(pid: number): number | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // fields after the command name (which may hold spaces and parentheses): state is field 3
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (rest[0] === 'Z') return undefined
    const v = Number(rest[19])
    return Number.isSafeInteger(v) ? v : undefined
  } catch {
    return undefined
  }
}

/** argv of a process (/proc/PID/cmdline), or undefined. */
export function cmdline(pid: number): string[] | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    if (argv.at(-1) === '') argv.pop()
    return argv
  } catch {
    return undefined
  }
}

export interface ProcessIdentity {
  pid: number | undefined
  /** the recorded start time (startTicks); unchecked when unknown (records of older releases) */
  startTicks?: number
  /** what its command line must satisfy (e.g. it runs daemon.js for this state file) */
  cmdline?: (argv: string[]) => boolean
}

/** Whether the process `id` describes still runs (the same process, not a reused pid). */
export function processAlive(id: ProcessIdentity): boolean {
  if (id.pid === undefined) return false
  const start = startTicks(id.pid)
  if (start === undefined) return false
  if (id.startTicks !== undefined && id.startTicks !== start) return false
  if (id.cmdline) {
    const argv = cmdline(id.pid)
    if (!argv || !id.cmdline(argv)) return false
  }
  return true
}
