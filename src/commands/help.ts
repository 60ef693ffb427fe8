// `tunctl help [COMMAND]`: the same text as `tunctl --help` or `tunctl COMMAND --help`.
import {Args, loadHelpClass} from '@oclif/core'
import {BaseCommand} from '../lib/base.js'
import {UsageError} from '../lib/errors.js'

export default class Help extends BaseCommand {
  static override summary = 'Show the help of tunctl, or of one command.'
  static override description = `Without COMMAND: the commands of tunctl (as \`tunctl --help\`). With COMMAND: its usage, flags, examples and exit codes (as \`tunctl COMMAND --help\`). An unknown COMMAND is a usage error (exit 64).`

  static override examples = [
    {description: 'Every command', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'The flags of apply', command: '<%= config.bin %> <%= command.id %> apply'},
  ]

  static override args = {command: Args.string({description: 'the command to describe', required: false})}

  async run(): Promise<void> {
    const {args} = await this.parse(Help)
    if (args.command !== undefined && !this.config.findCommand(args.command)) {
      throw new UsageError(`no command named ${JSON.stringify(args.command)}; the commands: ${this.config.commandIDs.sort().join(', ')}`)
    }
    const HelpClass = await loadHelpClass(this.config)
    await new HelpClass(this.config).showHelp(args.command === undefined ? [] : [args.command])
  }
}
