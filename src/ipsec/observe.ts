// Observes the namespace's xfrm state for vti ipsec blocks: tunctl's SAs (with counters) and policies, the
// (dst, SPI) of foreign SAs, and disable_policy of the vti devices that have SAs. Keys read from the kernel stay
// in keys.ts's table (they let a rollback restore an SA and a plan notice a key change); nothing prints them.
import {CommandError} from '../lib/errors.js'
import {echoCommand, run} from '../lib/exec.js'
import {existsSync} from 'node:fs'
import type {ObservedState, ObservedTunnel} from '../model/types.js'
import {ipsecOf, parsePolicies, parseStates, type XfrmObserved} from './xfrm.js'

function nsArgs(netns?: string): string[] {
  return netns ? ['-n', netns] : []
}

/** Whether xfrm is worth asking about: a vti link exists, or the kernel has xfrm_user loaded, or the caller needs it. */
export function wantXfrm(links: any[], required?: boolean): boolean {
  if (required) sticky = true
  return sticky || links.some((l) => l?.linkinfo?.info_kind === 'vti') || existsSync('/sys/module/xfrm_user')
}

/** Once a command needed xfrm, every later observe of it looks too (verification, rollback after the vti is gone). */
let sticky = false

/** `ip -s xfrm state` + `ip xfrm policy`; undefined when the kernel has no xfrm (then nothing of ipsec can exist). */
export async function observeXfrm(netns?: string): Promise<XfrmObserved | undefined> {
  const [st, pol] = await Promise.all([
    run('ip', [...nsArgs(netns), '-s', 'xfrm', 'state']),
    run('ip', [...nsArgs(netns), 'xfrm', 'policy']),
  ])
  if (st.exitCode !== 0 || pol.exitCode !== 0) return undefined
  const s = parseStates(st.stdout)
  const p = parsePolicies(pol.stdout)
  return {sas: s.owned, policies: p.owned, foreignSas: s.foreign, foreignPolicies: p.foreign}
}

/** disable_policy (IPv4 and IPv6) of each device: true when both are 1. */
export async function readDisablePolicy(netns: string | undefined, names: string[]): Promise<Map<string, boolean>> {
  const out = new Map<string, boolean>()
  if (!names.length) return out
  const script = 'for d in "$@"; do printf "%s %s %s\\n" "$d" "$(cat /proc/sys/net/ipv4/conf/$d/disable_policy 2>/dev/null || echo x)" "$(cat /proc/sys/net/ipv6/conf/$d/disable_policy 2>/dev/null || echo 1)"; done'
  const argv = netns ? ['netns', 'exec', netns, 'sh', '-c', script, 'sh', ...names] : ['-c', script, 'sh', ...names]
  const r = await run(netns ? 'ip' : 'sh', argv)
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) (\S+) (\S+)$/.exec(line)
    if (m) out.set(m[1]!, m[2] === '1' && m[3] === '1')
  }
  return out
}

/** Sets disable_policy=1 (IPv4 and, when the kernel has IPv6, IPv6) on vti devices: the kernel drops decrypted packets arriving on them otherwise. */
export async function setDisablePolicy(netns: string | undefined, names: string[], verbose?: boolean): Promise<void> {
  if (!names.length) return
  const script = 'for d in "$@"; do echo 1 >/proc/sys/net/ipv4/conf/$d/disable_policy || exit 1; [ ! -e /proc/sys/net/ipv6/conf/$d/disable_policy ] || echo 1 >/proc/sys/net/ipv6/conf/$d/disable_policy || exit 1; done'
  if (verbose) for (const n of names) echoCommand(['sysctl', `net.ipv4.conf.${n}.disable_policy=1`, `net.ipv6.conf.${n}.disable_policy=1`])
  const argv = netns ? ['netns', 'exec', netns, 'sh', '-c', script, 'sh', ...names] : ['-c', script, 'sh', ...names]
  const r = await run(netns ? 'ip' : 'sh', argv)
  if (r.exitCode !== 0) throw new CommandError(`cannot set disable_policy on ${names.join(', ')}: ${r.stderr.trim()}`, [netns ? 'ip' : 'sh', ...argv], r.stderr)
}

/** A kernel vti's ESP counters from its two SAs (pure); out.exhausted when the kernel reports the outbound SA's oseq:
 * 2^32 - 1 sent, the SA stopped (it never wraps without ESN). */
export function espCounters(t: ObservedTunnel, x: XfrmObserved): NonNullable<ObservedTunnel['esp']> {
  const out = x.sas.find((s) => s.src === t.params.local && s.dst === t.params.remote && s.mark === t.params.okey)
  const inn = x.sas.find((s) => s.src === t.params.remote && s.dst === t.params.local && s.mark === t.params.ikey)
  return {
    out: {packets: out?.counters?.packets ?? 0, bytes: out?.counters?.bytes ?? 0, ...(out?.oseq !== undefined ? {exhausted: out.oseq === 0xffffffff} : {})},
    in: {packets: inn?.counters?.packets ?? 0, bytes: inn?.counters?.bytes ?? 0, replay: inn?.counters?.replay ?? 0, failed: inn?.counters?.failed ?? 0},
  }
}

/** Adds xfrm to an observed state and each kernel vti tunnel's ipsec block (with what is missing, and its ESP counters). */
export async function addXfrm(state: ObservedState, links: any[], opts: {netns?: string; required?: boolean}): Promise<void> {
  if (!wantXfrm(links, opts.required)) return
  const x = await observeXfrm(opts.netns)
  if (!x) return
  state.xfrm = x
  const withSa: string[] = []
  for (const t of state.tunnels) {
    if (t.params.mode !== 'vti' || t.driver !== 'kernel') continue
    const p = ipsecOf(t, x)
    if (!p) continue
    t.ipsec = p
    withSa.push(t.name)
    t.esp = espCounters(t, x)
  }
  const dp = await readDisablePolicy(opts.netns, withSa)
  for (const t of state.tunnels) {
    if (t.ipsec && dp.get(t.name) === false) {
      t.ipsec.problems = [...(t.ipsec.problems ?? []), 'disable_policy is not set on the device']
    }
  }
}
