// `tunctl del NAME...`: delete tunnels (their addresses and routes go with the link) and stop userspace encapsulators.
import {visible} from '../lib/text.js'
import {Args, Flags} from '@oclif/core'
import {BaseCommand, commonFlags} from '../lib/base.js'
import {CommandError, TunctlError} from '../lib/errors.js'
import {ipBatch} from '../lib/ip.js'
import {withLock} from '../lib/lock.js'
import {xfrmDeleteLines} from '../ipsec/plan.js'
import {xfrmBatch} from '../ipsec/execute.js'
import {observe} from '../observe/index.js'
import {recoverUnfinished} from '../execute/recover.js'
import {removeEncapTempFiles} from '../execute/index.js'
import {applyEncaps, throwFailures} from '../userspace/control.js'

export default class Del extends BaseCommand {
  static override summary = 'Delete tunnels (and their addresses and routes; stops userspace encapsulators).'
  static override description = `Deletes each NAME in one \`ip -batch\` (userspace tunnels: the encapsulator is stopped too). Every NAME is checked before anything is deleted: a name that does not exist is an error unless --ignore-missing; a tunnel tunctl does not own is refused unless --force; a link that is not a tunnel (e.g. a veth) is always refused. Takes the namespace lock like apply; an apply that was killed before it finished (its journal is still there) is rolled back first.

--json prints {ok, deleted, missing} (schemas/del-output.schema.json).

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Delete a tunnel tunctl created', command: '<%= config.bin %> <%= command.id %> gre1'},
    {description: 'Delete a tunnel made by something else', command: '<%= config.bin %> <%= command.id %> legacy0 --force'},
    {description: 'Idempotent clean-up in a namespace', command: '<%= config.bin %> <%= command.id %> gre1 sit1 --ignore-missing --netns blue'},
  ]

  static override strict = false
  static override args = {
    name: Args.string({required: true, description: 'tunnel name(s)'}),
  }

  static override flags = {
    force: Flags.boolean({description: 'also delete tunnels tunctl does not own', default: false}),
    'ignore-missing': Flags.boolean({description: 'a NAME that does not exist is not an error', default: false}),
    netns: commonFlags.netns,
    json: commonFlags.json,
    'lock-timeout': Flags.integer({description: 'seconds to wait for the namespace lock', default: 30, min: 0, helpValue: 'SECONDS'}),
    verbose: Flags.boolean({char: 'v', description: 'echo each ip line as "[#] ip …" on stderr', default: false}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Del)
    this.jsonMode = flags.json
    const names = [...new Set(argv as string[])]
    const netns = flags.netns
    const result = await withLock(netns, flags['lock-timeout'], async () => {
      await recoverUnfinished({netns, verbose: flags.verbose})
      const observed = await observe({netns})
      const problems: string[] = []
      const missing: string[] = []
      const targets = []
      for (const n of names) {
        const t = observed.tunnels.find((x) => x.name === n)
        if (!t) {
          if (observed.links.includes(n)) problems.push(`${n} is not a tunnel (kind ${observed.kinds[n] ?? 'unknown'}); tunctl does not delete it`)
          else if (flags['ignore-missing']) missing.push(n)
          else problems.push(`no tunnel named ${n} (--ignore-missing to accept that)`)
          continue
        }
        if (!t.owned && !flags.force) {
          problems.push(`${n} is not managed by tunctl (ifalias is not 'tunctl'); use --force to delete it anyway`)
          continue
        }
        targets.push(t)
      }
      if (problems.length) throw new TunctlError(problems.join('\n') + '\nNothing was deleted.')
      const lines = targets.filter((t) => observed.links.includes(t.name)).map((t) => ['link', 'del', 'dev', t.name])
      await ipBatch(lines, {netns, verbose: flags.verbose})
      // vti ipsec: the tunnels' SAs and policies (tunctl's reqid only), through their own stdin batch
      const x = xfrmDeleteLines(observed, targets)
      await xfrmBatch(x.lines, x.shown, {netns, verbose: flags.verbose})
      // the userspace ones: one engine transaction for all of them
      const stops = targets.filter((x) => x.driver === 'userspace').map((x) => x.name)
      if (flags.verbose) for (const n of stops) process.stderr.write(`[#] (userspace) stop ${n}\n`)
      if (stops.length) throwFailures(await applyEncaps({stop: stops}, {netns}), netns)
      for (const n of stops) removeEncapTempFiles(n, netns)
      const after = await observe({netns})
      const left = targets.filter((t) => after.tunnels.some((x) => x.name === t.name) || after.links.includes(t.name))
      if (left.length) throw new CommandError(`still present after delete: ${left.map((t) => t.name).join(', ')}`, ['ip', 'link', 'del'], '')
      const xleft = xfrmDeleteLines(after, targets).shown
      if (xleft.length) throw new CommandError(`SAs/policies still present after delete: ${xleft.map((l) => l.join(' ')).join('; ')}`, ['ip', 'xfrm'], '')
      return {deleted: targets.map((t) => t.name), missing}
    })
    if (this.jsonMode) this.printJSON({ok: true, ...result})
    else {
      for (const n of result.deleted) process.stdout.write(`- ${visible(n)} deleted\n`)
      for (const n of result.missing) process.stdout.write(`  ${visible(n)} not present (ignored)\n`)
    }
  }
}
