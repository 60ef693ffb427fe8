// `tunctl del NAME...`: delete tunnels (their addresses and routes go with the link) and stop userspace encapsulators,
// as a plan of deletions through the executor (src/execute/delete.ts).
import {Args, Flags} from '@oclif/core'
import {BaseCommand, commonFlags, requireNetns} from '../lib/base.js'
import {UsageError} from '../lib/errors.js'
import {visible} from '../lib/text.js'
import {deleteTunnels} from '../execute/delete.js'

export default class Del extends BaseCommand {
  static override summary = 'Delete tunnels (and their addresses and routes; stops userspace encapsulators).'
  static override description = `Deletes each NAME in one \`ip -batch\` (userspace tunnels: the encapsulator is stopped too). Every NAME is checked before anything is deleted: a name that does not exist is an error unless --ignore-missing; a tunnel tunctl does not own is refused unless --force; a link that is not a tunnel (e.g. a veth) is always refused. Takes the namespace lock like apply; an apply that was killed before it finished (its journal is still there) is rolled back first. The deletions are journaled, verified and, on any failure, rolled back like an apply (exit 1; 3 if the rollback is incomplete).

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
    const names = argv.filter((a): a is string => typeof a === 'string')
    if (names.includes('')) throw new UsageError('NAME must not be empty')
    requireNetns(flags.netns)
    const {interrupted, ...result} = await deleteTunnels(names, {netns: flags.netns, verbose: flags.verbose, lockTimeout: flags['lock-timeout'], force: flags.force, ignoreMissing: flags['ignore-missing']})
    if (interrupted) process.stderr.write(`tunctl: ${interrupted} arrived while the batch ran: the deletions finished and were verified; they stand\n`)
    if (this.jsonMode) this.printJSON({ok: true, ...result})
    else {
      for (const n of result.deleted) process.stdout.write(`- ${visible(n)} deleted\n`)
      for (const n of result.missing) process.stdout.write(`  ${visible(n)} not present (ignored)\n`)
    }
  }
}
