// `tunctl export`: the current tunnels as a version-1 spec that `apply` turns back into the same state.
import {BaseCommand, commonFlags, nsJsonFlags} from '../lib/base.js'
import {exportTunnels} from '../execute/inspect.js'
import {exportDoc, exportSpec} from '../plan/export.js'

export default class Export extends BaseCommand {
  static override summary = 'Print the current tunnels as a spec file.'
  static override description = `Writes a version-1 spec (YAML) of the tunnels tunctl owns (--all: also the others) to stdout, with only the keys that differ from the defaults. Applying it to the same host reports no changes. --json prints the same spec as JSON (which is YAML too, so apply reads it back). Note that apply refuses to manage tunnels tunctl does not own, so a file exported with --all is for reference (or for another host) unless those tunnels are deleted first.

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Save the managed tunnels', command: '<%= config.bin %> <%= command.id %> > tunnels.yaml'},
    {description: 'Everything in a namespace', command: '<%= config.bin %> <%= command.id %> --all --netns blue'},
    {description: 'The same spec as JSON', command: '<%= config.bin %> <%= command.id %> --json > tunnels.json'},
  ]

  static override flags = {
    all: commonFlags.all,
    ...nsJsonFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Export)
    this.jsonMode = flags.json
    const {tunnels, keyFiles} = await exportTunnels({netns: flags.netns, all: flags.all})
    if (flags.json) this.printJSON(exportDoc(tunnels, keyFiles))
    else process.stdout.write(exportSpec(tunnels, keyFiles))
  }
}
