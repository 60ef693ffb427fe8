// `tunctl show [NAME]`: tunnels with mode, driver, endpoints, keys, ttl, mtu, state, addresses, routes, ownership, counters.
import {visible} from '../lib/text.js'
import {Args} from '@oclif/core'
import {BaseCommand, commonFlags, nsJsonFlags} from '../lib/base.js'
import {UsageError} from '../lib/errors.js'
import {table} from '../lib/render.js'
import type {ObservedTunnel} from '../model/types.js'
import {listTunnels} from '../execute/inspect.js'
import {fieldLabel, formatRoute, formatValue} from '../plan/render.js'
import {ipsecSummary, ipsecText} from '../ipsec/plan.js'

/** an outbound SA whose sequence number reached 2^32 - 1: it stopped rather than wrap (not a plan problem: only
 * new keys or a new spi-out in the spec, applied on both ends, replace it; man/tunctl.yaml.5) */
const EXHAUSTED = 'SA exhausted (2^32 - 1 sent, sends nothing more: new spi-out or keys needed)'

function keyText(t: ObservedTunnel): string {
  const p = t.params
  if (p.ikey === undefined && p.okey === undefined) return '-'
  return p.ikey === p.okey ? String(p.ikey) : `${p.ikey ?? '-'}/${p.okey ?? '-'}`
}

function stateText(t: ObservedTunnel): string {
  let s = t.params.up ? 'up' : 'down'
  if (t.driver === 'userspace') s += t.alive ? '' : ' (encapsulator dead)'
  return s
}

function counters(t: ObservedTunnel): string {
  const c = t.counters
  return c ? `${c.rxPackets}/${c.txPackets}` : '-'
}

export function tunnelJSON(t: ObservedTunnel): Record<string, unknown> {
  return {
    name: t.name,
    mode: t.params.mode,
    driver: t.driver,
    owned: t.owned,
    ifindex: t.ifindex,
    operstate: t.operstate,
    params: t.params,
    addresses: t.addresses,
    routes: t.routes,
    counters: t.counters ?? null,
    ...(t.driver === 'userspace' ? {pid: t.pid ?? null, alive: Boolean(t.alive)} : {}),
    // vti with tunctl's SAs: algorithm, SPIs, replay window, what is missing, ESP counters; never keys
    ...(t.ipsec ? {ipsec: {...ipsecSummary(t.ipsec), ...(t.ipsec.problems ? {problems: t.ipsec.problems} : {}), counters: t.esp ?? null}} : {}),
  }
}

export default class Show extends BaseCommand {
  static override summary = 'List tunnels (tunctl-owned by default) or show one in detail.'
  static override description = `Without NAME: one row per tunnel tunctl owns (--all: every tunnel of the five modes) with mode, driver (kernel/userspace), local, remote, key, ttl, mtu, state, addresses, routes, whether tunctl owns it and rx/tx packet counters (userspace: also the encapsulator pid). With NAME: every attribute of that tunnel, including drop counters by reason for userspace tunnels.

--json prints {ok, tunnels: [...]} (schemas/show-output.schema.json).

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Tunnels tunctl manages', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Every tunnel in a namespace, as JSON', command: '<%= config.bin %> <%= command.id %> --all --netns blue --json'},
    {description: 'One tunnel in detail', command: '<%= config.bin %> <%= command.id %> gre1'},
  ]

  static override args = {
    name: Args.string({required: false, description: 'tunnel name'}),
  }

  static override flags = {
    all: commonFlags.all,
    ...nsJsonFlags,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Show)
    this.jsonMode = flags.json
    // an empty NAME is no name: a usage error, not the list of every tunnel
    if (args.name === '') throw new UsageError('NAME must not be empty')
    const tunnels = await listTunnels({netns: flags.netns, name: args.name, all: flags.all})

    if (this.jsonMode) {
      this.printJSON({ok: true, ...(flags.netns ? {netns: flags.netns} : {}), tunnels: tunnels.map(tunnelJSON)})
      return
    }
    if (args.name) {
      process.stdout.write(detail(tunnels[0]!))
      return
    }
    if (tunnels.length === 0) {
      process.stdout.write(flags.all ? 'No tunnels.\n' : 'No tunctl-managed tunnels (--all lists the others).\n')
      return
    }
    const rows = tunnels.map((t) => [
      t.name,
      t.params.mode,
      t.driver === 'userspace' ? `userspace${t.pid ? ` (pid ${t.pid})` : ''}` : 'kernel',
      t.params.local,
      t.params.remote,
      keyText(t),
      t.params.ttl === undefined ? '-' : formatValue('ttl', t.params.ttl),
      t.params.mtu === undefined ? '-' : String(t.params.mtu),
      stateText(t),
      t.addresses.join(',') || '-',
      t.routes.map(formatRoute).join(',') || '-',
      t.owned ? 'yes' : 'no',
      counters(t),
    ])
    process.stdout.write(table(['NAME', 'MODE', 'DRIVER', 'LOCAL', 'REMOTE', 'KEY', 'TTL', 'MTU', 'STATE', 'ADDRESSES', 'ROUTES', 'OWNED', 'RX/TX PKTS'], rows))
  }
}

export function detail(t: ObservedTunnel): string {
  const lines: string[] = [visible(t.name)]
  const add = (k: string, v: string) => lines.push(`  ${(k + ':').padEnd(18)} ${visible(v)}`)
  add('mode', t.params.mode)
  add('driver', t.driver)
  if (t.driver === 'userspace') add('encapsulator', t.alive ? `running (pid ${t.pid})` : `dead${t.pid ? ` (was pid ${t.pid})` : ''}`)
  add('owned by tunctl', t.owned ? 'yes' : 'no')
  add('state', `${t.params.up ? 'up' : 'down'} (operstate ${t.operstate})`)
  for (const [k, v] of Object.entries(t.params)) {
    if (k === 'mode' || k === 'up' || v === undefined) continue
    add(fieldLabel(k), formatValue(k, v))
  }
  if (t.ipsec) {
    add('ipsec', ipsecText({...ipsecSummary(t.ipsec), problems: t.ipsec.problems}))
    if (t.esp) {
      add('esp out', `${t.esp.out.packets} packets, ${t.esp.out.bytes} bytes${t.esp.out.exhausted ? `, ${EXHAUSTED}` : ''}`)
      add('esp in', `${t.esp.in.packets} packets, ${t.esp.in.bytes} bytes, ${t.esp.in.replay} replayed, ${t.esp.in.failed} failed`)
    }
  }
  add('addresses', t.addresses.join(', ') || '-')
  add('routes', t.routes.map(formatRoute).join(', ') || '-')
  const c = t.counters
  if (c) {
    add('rx', `${c.rxPackets} packets, ${c.rxBytes} bytes, ${c.rxErrors} errors, ${c.rxDropped} dropped`)
    add('tx', `${c.txPackets} packets, ${c.txBytes} bytes, ${c.txErrors} errors, ${c.txDropped} dropped`)
    if (c.drops && Object.keys(c.drops).length) add('drops', Object.entries(c.drops).map(([k, v]) => `${k} ${v}`).join(', '))
  }
  return lines.join('\n') + '\n'
}
