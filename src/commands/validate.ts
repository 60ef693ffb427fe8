// `tunctl validate FILE`: schema and semantic checks of a spec, no system access.
import {Args} from '@oclif/core'
import {BaseCommand, commonFlags} from '../lib/base.js'
import {SpecError, TunctlError} from '../lib/errors.js'
import {readInput, parseSpec, STDIN_NAME} from '../spec/load.js'
import {loadKeyFiles} from '../ipsec/keyfile.js'

export default class Validate extends BaseCommand {
  static override summary = 'Check a spec file (schema and kernel rules) without touching the system.'
  static override description = `Reads FILE (or standard input for -), checks it against the version-1 file format and the kernel's rules for each mode, and reports every problem at once as FILE:LINE:COLUMN with the source line and a caret. Nothing on the host is read or changed (except /etc/iproute2/rt_tables when a route names a table by name, and the key files of vti ipsec blocks: they are input like the spec, checked for owner, mode and format; the SAs on the system are not consulted).

With --json, stdout carries one object (schemas/validate-output.schema.json): {"ok": true, "file", "tunnels": N, "diagnostics": []} when valid; {"ok": false, "file", "tunnels": null, "diagnostics": [{file, line, column, pointer, message, excerpt}], "error": {code, exitCode, message}} otherwise.

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Check a file', command: '<%= config.bin %> <%= command.id %> tunnels.yaml'},
    {description: 'Check standard input and get machine-readable diagnostics', command: 'cat tunnels.yaml | <%= config.bin %> <%= command.id %> - --json'},
  ]

  static override args = {
    file: Args.string({required: true, description: 'spec file, or - for standard input'}),
  }

  static override flags = {
    json: commonFlags.json,
  }

  private file?: string

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Validate)
    this.jsonMode = flags.json
    this.file = args.file
    const input = await readInput(args.file)
    this.file = input.file
    const state = parseSpec(input.file, input.text)
    // key files are input like the spec (no system state is consulted): validate checks them too
    loadKeyFiles(state, {stdinName: STDIN_NAME})
    const n = state.tunnels.length
    if (this.jsonMode) this.printJSON({ok: true, file: input.file, tunnels: n, diagnostics: []})
    else process.stdout.write(`${input.file}: valid (${n} tunnel${n === 1 ? '' : 's'})\n`)
  }

  protected override async catch(err: any): Promise<any> {
    const json = this.jsonMode || this.argv.includes('--json')
    if (json && err instanceof TunctlError) {
      this.printJSON({
        ok: false,
        file: this.file ?? null,
        tunnels: null,
        diagnostics: err instanceof SpecError ? err.diagnostics : [],
        error: err.toJSON(),
      })
      throw err
    }
    return super.catch(err)
  }
}
