// `tunctl apply FILE`: validate → lock → observe → plan → one ip batch → re-observe and verify → roll back on failure.
import {Args, Flags} from '@oclif/core'
import {BaseCommand, commonFlags, useColor} from '../lib/base.js'
import {EXIT, TunctlError} from '../lib/errors.js'
import {withLock} from '../lib/lock.js'
import {mark} from '../lib/timing.js'
import type {DriverChoice, Plan} from '../model/types.js'
import {observe} from '../observe/index.js'
import {makePlan, renderPlan, planToJSON} from '../plan/index.js'
import {loadSpec, STDIN_NAME} from '../spec/load.js'
import {recordKeyFiles} from '../ipsec/record.js'
import {executePlan, type ApplyResult} from '../execute/index.js'
import {gatherSupport} from '../execute/support.js'

export const adoptFlag = Flags.string({
  description: 'take over this existing tunnel that tunctl does not own (repeatable); it gets the ownership alias and is then managed like one tunctl created',
  multiple: true,
  multipleNonGreedy: true, // `--adopt a FILE` takes one name, not FILE too; repeat the flag for more
  helpValue: 'NAME',
})

export const driverFlag = Flags.string({
  description: 'driver for every tunnel, overriding the file: auto (kernel if it supports the mode, else userspace), kernel, userspace',
  options: ['auto', 'kernel', 'userspace'],
  helpValue: 'auto|kernel|userspace',
})

export default class Apply extends BaseCommand {
  static override summary = 'Make the host match a spec file (verified, rolled back on any failure).'
  static override description = `Reads FILE (- for standard input), validates it, takes the namespace lock (/run/tunctl/<netns|default>/lock), observes the tunnels, prints the plan and executes it as ONE \`ip -batch\`. Userspace tunnels have their encapsulator started before the batch (creates) or stopped after it (deletes). Afterwards every desired attribute is re-observed and verified; on any failure (a batch line, a verify mismatch, an encapsulator that does not start) the host is rolled back to its state before the apply and the command exits 1 — or 3 if the rollback could not restore everything (the message lists what is left). A second apply of the same file prints "No changes." and runs no mutating command. Tunnels tunctl does not own are never changed, unless named with --adopt (a rollback restores them and gives them back).

--json prints {ok, plan, applied, verified, rolledBack} (schemas/apply-output.schema.json).

Testing hook: TUNCTL_FAIL_AT_LINE=N replaces line N of the batch with a line that fails (\`link set dev tunctl-injected-failure up\`), to exercise the rollback.

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Apply a file', command: '<%= config.bin %> <%= command.id %> tunnels.yaml'},
    {description: 'Show what would change, exit 2 if anything would', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --dry-run --detailed-exitcode'},
    {description: 'Apply inside a namespace, delete tunnels no longer listed, echo every ip line', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --netns blue --prune --verbose'},
    {description: 'Force the userspace encapsulator', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --driver userspace'},
    {description: 'Take over a tunnel created by hand (listed in the file as legacy0)', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --adopt legacy0'},
  ]

  static override args = {
    file: Args.string({required: true, description: 'spec file, or - for standard input'}),
  }

  static override flags = {
    'dry-run': Flags.boolean({description: 'print the plan, change nothing', default: false}),
    prune: Flags.boolean({description: 'also delete tunctl-owned tunnels the file does not list', default: false}),
    netns: commonFlags.netns,
    driver: driverFlag,
    adopt: adoptFlag,
    json: commonFlags.json,
    verbose: Flags.boolean({char: 'v', description: 'echo each ip line as "[#] ip …" on stderr', default: false}),
    'lock-timeout': Flags.integer({description: 'seconds to wait for another tunctl holding the namespace lock', default: 30, min: 0, helpValue: 'SECONDS'}),
    'detailed-exitcode': Flags.boolean({description: 'with --dry-run: exit 2 when changes are pending', default: false}),
  }

  private plan?: Plan
  private result?: Partial<ApplyResult>

  async run(): Promise<void> {
    mark('command loaded')
    const {args, flags} = await this.parse(Apply)
    this.jsonMode = flags.json
    const desired = await loadSpec(args.file)
    mark('spec parsed')
    const netns = flags.netns
    const compute = async () => {
      const observed = await observe({netns, xfrm: desired.tunnels.some((t) => t.ipsec)})
      mark('observed')
      const modes = desired.tunnels.filter((t) => t.state === 'present').map((t) => t.params.mode)
      const support = await gatherSupport(modes, netns)
      mark('support checked')
      const plan = makePlan(desired, observed, {prune: flags.prune, driver: flags.driver as DriverChoice | undefined, support, adopt: new Set(flags.adopt ?? [])})
      this.plan = plan
      mark('planned')
      return {observed, plan}
    }
    const show = (plan: Plan) => {
      if (!this.jsonMode) process.stdout.write(renderPlan(plan, {color: useColor(), file: desired.file}))
    }

    if (flags['dry-run']) {
      const {plan} = await compute()
      show(plan)
      if (this.jsonMode) this.printJSON({ok: true, dryRun: true, plan: planToJSON(plan), applied: false, verified: false, rolledBack: false})
      if (flags['detailed-exitcode'] && plan.steps.length) this.done(EXIT.CHANGES)
      return
    }

    const result = await withLock(netns, flags['lock-timeout'], async () => {
      const {observed, plan} = await compute()
      show(plan)
      this.result = {applied: false, verified: false, rolledBack: false}
      const r = await executePlan(plan, {netns, verbose: flags.verbose, snapshot: observed, adopted: new Set(flags.adopt ?? [])})
      if (desired.tunnels.some((t) => t.ipsec) || plan.steps.some((s) => s.observed?.ipsec)) recordKeyFiles(netns, desired, STDIN_NAME)
      return r
    })
    mark('executed')
    const plan = this.plan!
    if (this.jsonMode) {
      this.printJSON({ok: true, plan: planToJSON(plan), ...result})
      return
    }
    if (result.applied) {
      const c = plan.counts
      process.stdout.write(
        `Applied: ${c.create} created, ${c.update} updated, ${c.replace} replaced, ${c.delete} deleted (${result.lines ? `${result.lines} ip line${result.lines === 1 ? '' : 's'} in one batch` : 'userspace encapsulator actions only'}); verified.\n`,
      )
    }
  }

  protected override async catch(err: any): Promise<any> {
    const json = this.jsonMode || this.argv.includes('--json')
    if (json && err instanceof TunctlError && this.plan) {
      const rolledBack = Boolean((err as any).rolledBack)
      this.printJSON({
        ok: false,
        plan: planToJSON(this.plan),
        applied: this.result !== undefined,
        verified: false,
        rolledBack,
        error: err.toJSON(),
      })
      throw err
    }
    return super.catch(err)
  }
}
