// `tunctl doctor`: what this host can do — iproute2 version, each mode kernel/userspace/unavailable and why, privileges, /dev/net/tun.
import {existsSync, readFileSync} from 'node:fs'
import {BaseCommand, nsJsonFlags} from '../lib/base.js'
import {run} from '../lib/exec.js'
import {ipJson} from '../lib/ip.js'
import {table} from '../lib/render.js'
import {MODES, type Mode} from '../model/types.js'
import {allModes, type ModeReport} from '../execute/support.js'

/** CAP_NET_ADMIN (bit 12) in the effective capability set of /proc/self/status. */
export function capNetAdmin(status: string): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)/im.exec(status)
  if (!m) return false
  return (BigInt('0x' + m[1]) & (1n << 12n)) !== 0n
}

export default class Doctor extends BaseCommand {
  static override summary = 'Report what this host can do: iproute2, each mode per driver, privileges, /dev/net/tun.'
  static override description = `Checks the iproute2 version (ip -V), for each mode whether the kernel driver is available (fallback device present, module loaded or loadable) and whether the userspace encapsulator can run (native addon built, /dev/net/tun present), which driver auto would pick and why, whether the process has root / CAP_NET_ADMIN, and whether /dev/net/tun exists. Changes nothing.

--json prints {ok, iproute2, modes, privileges, tun} (schemas/doctor-output.schema.json).

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Check this host', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Check a namespace, machine-readable', command: '<%= config.bin %> <%= command.id %> --netns blue --json'},
  ]

  static override flags = nsJsonFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(Doctor)
    this.jsonMode = flags.json
    const r = await run('ip', ['-V'])
    const text = (r.stdout || r.stderr).trim()
    const m = /iproute2-([\w.-]+)|iproute2[- ](\S+)/.exec(text)
    const iproute2 = {found: r.exitCode === 0, version: m ? (m[1] ?? m[2] ?? null) : null, text}
    // a namespace that does not exist is a usage error (64), not a host without tunnel support
    if (flags.netns) await ipJson(['link', 'show', 'dev', 'lo'], {netns: flags.netns})
    const reports = await allModes(flags.netns)
    const modes = {} as Record<Mode, ModeReport & {auto: string}>
    for (const m of MODES) {
      const r = reports[m]
      modes[m] = {...r, auto: r.kernel.available ? 'kernel' : r.userspace.available ? 'userspace' : 'unavailable'}
    }
    let status = ''
    try {
      status = readFileSync('/proc/self/status', 'utf8')
    } catch {}
    const euid = typeof process.geteuid === 'function' ? process.geteuid() : -1
    const privileges = {euid, root: euid === 0, capNetAdmin: capNetAdmin(status)}
    const tun = {path: '/dev/net/tun', present: existsSync('/dev/net/tun')}
    const ok = iproute2.found && privileges.capNetAdmin
    if (this.jsonMode) {
      this.printJSON({ok, iproute2, modes, privileges, tun, ...(flags.netns ? {netns: flags.netns} : {})})
      return
    }
    const out: string[] = []
    out.push(`iproute2:     ${iproute2.found ? iproute2.text : 'NOT FOUND: ' + iproute2.text}`)
    out.push(`privileges:   euid ${euid}${privileges.root ? ' (root)' : ''}, CAP_NET_ADMIN ${privileges.capNetAdmin ? 'yes' : 'NO (apply/del need it)'}`)
    out.push(`/dev/net/tun: ${tun.present ? 'present' : 'missing (no userspace driver)'}`)
    if (flags.netns) out.push(`namespace:    ${flags.netns}`)
    out.push('')
    process.stdout.write(out.join('\n') + '\n')
    process.stdout.write(
      table(
        ['MODE', 'AUTO', 'KERNEL', 'USERSPACE'],
        MODES.map((m) => {
          const r = modes[m]
          return [m, r.auto, `${r.kernel.available ? 'yes' : 'no'}: ${r.kernel.reason}`, `${r.userspace.available ? 'yes' : 'no'}: ${r.userspace.reason}`]
        }),
      ),
    )
  }
}
