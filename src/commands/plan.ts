// `tunctl plan FILE`: what apply would do; never mutates.
import {Args, Flags} from '@oclif/core'
import {BaseCommand, commonFlags, observableEarly, useColor} from '../lib/base.js'
import {EXIT} from '../lib/errors.js'
import {reportUnfinished} from '../execute/recover.js'
import {observeEarly, planSpec} from '../execute/pipeline.js'
import {renderPlan, planToJSON, compilePlan, groupDeleteFor} from '../plan/index.js'
import {realSystem} from '../execute/index.js'
import {DRIVERS} from '../drivers/index.js'
import {loadSpec} from '../spec/load.js'
import {adoptFlag, checkAdopt, driverFlag} from './apply.js'

export default class PlanCmd extends BaseCommand {
  static override summary = 'Show what apply would change; never changes anything.'
  static override description = `Reads FILE (- for standard input), observes the host and prints each change: create (+), update in place (~, with every field change), replace (-/+, with the reason it cannot be done in place) and delete (-), the driver chosen for each tunnel and why, and finally "Plan: N to create, N to update, N to replace, N to delete." --show-commands adds the exact ip lines apply would run in its one batch (and the userspace encapsulator actions).

--json prints {ok, file, plan: {steps, counts, changes}} (schemas/plan-output.schema.json).

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Preview changes', command: '<%= config.bin %> <%= command.id %> tunnels.yaml'},
    {description: 'In CI: exit 2 when the host drifted from the file', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --detailed-exitcode'},
    {description: 'See the ip lines, including deletions of unlisted tunnels', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --prune --show-commands'},
  ]

  static override args = {
    file: Args.string({required: true, description: 'spec file, or - for standard input'}),
  }

  static override flags = {
    'detailed-exitcode': Flags.boolean({description: 'exit 2 when changes are pending (0 when none)', default: false}),
    json: commonFlags.json,
    prune: Flags.boolean({description: 'include deletion of tunctl-owned tunnels the file does not list', default: false}),
    netns: commonFlags.netns,
    'show-commands': Flags.boolean({description: 'print the ip lines apply would run', default: false}),
    driver: driverFlag,
    adopt: adoptFlag,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(PlanCmd)
    this.jsonMode = flags.json
    reportUnfinished(flags.netns)
    // observed while the file is parsed (read only; plan takes no lock: see apply and base.ts observableEarly)
    const early = observableEarly(args.file, flags.netns) ? observeEarly(flags.netns) : undefined
    const desired = await loadSpec(args.file)
    checkAdopt(desired, flags.adopt)
    const {plan} = await planSpec(desired, {netns: flags.netns, prune: flags.prune, driver: flags.driver, adopt: flags.adopt, early})
    // the group apply would delete many userspace tunnels through, as apply's executor picks it
    const group = flags['show-commands'] ? await groupDeleteFor(plan, realSystem({netns: flags.netns}).linkGroups) : undefined
    if (this.jsonMode) {
      const out: Record<string, unknown> = {ok: true, file: desired.file, plan: planToJSON(plan)}
      if (flags['show-commands']) out.commands = compilePlan(plan, DRIVERS, group).lines.map((l) => ['ip', ...l].join(' '))
      this.printJSON(out)
    } else {
      process.stdout.write(renderPlan(plan, {color: useColor(), showCommands: flags['show-commands'], group, file: desired.file}))
    }
    if (flags['detailed-exitcode'] && plan.steps.length) this.done(EXIT.CHANGES)
  }
}
