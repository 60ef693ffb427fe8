// What each mode can use on this host (kernel module / userspace encapsulator), for the planner and doctor.
import {MODES, type Mode} from '../model/types.js'
import {kernelSupport, type SupportHints} from '../observe/index.js'
import type {ModeSupport} from '../plan/diff.js'
import {supportsUserspace, userspaceUnavailableReason} from '../userspace/control.js'

export interface ModeReport {
  kernel: {available: boolean; reason: string; loaded?: boolean}
  userspace: {available: boolean; reason: string}
}

export async function modeReport(mode: Mode, netns?: string, hints?: SupportHints): Promise<ModeReport> {
  const k = await kernelSupport(mode, {netns, ...(hints ? {hints} : {})})
  let userspace: ModeReport['userspace']
  if (!supportsUserspace(mode)) userspace = {available: false, reason: `no userspace encapsulator for ${mode}`}
  else {
    const why = userspaceUnavailableReason()
    userspace = why ? {available: false, reason: why} : {available: true, reason: 'native addon and /dev/net/tun present'}
  }
  return {kernel: {available: k.available, reason: k.reason, ...(k.loaded ? {loaded: true} : {})}, userspace}
}

/** Support for the given modes (only those a plan needs: kernelSupport may spawn modprobe). */
export async function gatherSupport(modes: Iterable<Mode>, netns?: string, hints?: SupportHints): Promise<Partial<Record<Mode, ModeSupport>>> {
  const out: Partial<Record<Mode, ModeSupport>> = {}
  // every mode's checks side by side
  const reports = await Promise.all([...new Set(modes)].map(async (m) => [m, await modeReport(m, netns, hints)] as const))
  for (const [m, r] of reports) {
    out[m] = {kernel: r.kernel.available, userspace: r.userspace.available, reason: r.kernel.available ? r.kernel.reason : `${r.kernel.reason}${r.userspace.available ? '' : `; userspace: ${r.userspace.reason}`}`}
    // the module loaded: its protocol handler sees the userspace encapsulator's packets too (see chooseDriver).
    // TUNCTL_USERSPACE_BESIDE_MODULE=1 allows it anyway (testing hook: kernel ↔ userspace peers in one kernel).
    // Not vti: ESP that no kernel SA takes is dropped silently (xfrm_input: XfrmInNoStates, no ICMP; measured in
    // user-mode-linux with ip_vti and esp4 loaded, test/uml/vti-userspace.sh "kernel-silent").
    if (r.kernel.loaded && m !== 'vti' && process.env.TUNCTL_USERSPACE_BESIDE_MODULE !== '1') out[m]!.kernelLoaded = true
  }
  return out
}

export async function allModes(netns?: string): Promise<Record<Mode, ModeReport>> {
  const out = {} as Record<Mode, ModeReport>
  for (const m of MODES) out[m] = await modeReport(m, netns)
  return out
}
