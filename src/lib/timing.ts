// TUNCTL_TIMING=1: phase marks on stderr ("[timing] 1234 ms observe"), milliseconds since the process started
// (Node's own start-up included). For finding where an apply spends its time (bench/uml-apply.sh prints them).
const on = Boolean(process.env.TUNCTL_TIMING)

export function mark(phase: string): void {
  if (on) process.stderr.write(`[timing] ${Math.round(performance.now())} ms ${phase}\n`)
}
