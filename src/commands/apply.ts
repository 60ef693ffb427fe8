// `tunctl apply FILE`: validate → lock → observe → plan → one ip batch → re-observe and verify → roll back on failure.
import {Args, Flags} from '@oclif/core'
import {BaseCommand, commonFlags, observableEarly, requireNetns, useColor} from '../lib/base.js'
import {EXIT, TunctlError, UsageError} from '../lib/errors.js'
import {mark} from '../lib/timing.js'
import type {DesiredState, Plan} from '../model/types.js'
import {renderPlan, planToJSON} from '../plan/index.js'
import {loadSpec} from '../spec/load.js'
import {applySpec} from '../execute/apply.js'
import {awaitConfirmation, notConfirmedError} from '../execute/confirm.js'
import {reportUnfinished} from '../execute/recover.js'
import {observeEarly, planSpec} from '../execute/pipeline.js'
import {dropPreLock, preLock} from '../lib/lock.js'

export const adoptFlag = Flags.string({
  description: 'take over this existing tunnel that tunctl does not own (repeatable); it gets the ownership alias and is then managed like one tunctl created',
  multiple: true,
  multipleNonGreedy: true, // `--adopt a FILE` takes one name, not FILE too; repeat the flag for more
  helpValue: 'NAME',
})

/** --adopt NAME takes over a tunnel the file describes (tunctl(8)): a NAME the file does not list is a usage error. */
export function checkAdopt(desired: DesiredState, adopt: string[] | undefined): void {
  const missing = (adopt ?? []).filter((n) => !desired.tunnels.some((t) => t.name === n))
  if (missing.length) throw new UsageError(`--adopt ${missing.join(', ')}: ${desired.file} lists no tunnel of that name (--adopt takes over a tunnel the file describes)`)
}

export const driverFlag = Flags.option({
  description: 'driver for every tunnel, overriding the file: auto (kernel if it supports the mode, else userspace), kernel, userspace',
  options: ['auto', 'kernel', 'userspace'] as const,
  helpValue: 'auto|kernel|userspace',
})()

export default class Apply extends BaseCommand {
  static override summary = 'Make the host match a spec file (verified, rolled back on any failure).'
  static override description = `Reads FILE (- for standard input), validates it, takes the namespace lock (an flock on /run/tunctl/host/lock, or /run/tunctl/ns/NS/lock with --netns), observes the tunnels, prints the plan and executes it as ONE \`ip -batch\`. Userspace tunnels have their encapsulator started before the batch (creates) or stopped after it (deletes). Afterwards every desired attribute is re-observed and verified; on any failure (a batch line, a verify mismatch, an encapsulator that does not start) the host is rolled back to its state before the apply and the command exits 1 — or 3 if the rollback could not restore everything (the message lists what is left). A second apply of the same file prints "No changes." and runs no mutating command. Tunnels tunctl does not own are never changed, unless named with --adopt (a rollback restores them and gives them back).

Interrupts: SIGINT, SIGTERM or SIGHUP before the batch runs rolls back what was started (userspace encapsulators) and exits 1; one arriving while the batch runs lets it finish (ip runs on its own, from a file) and verifies: if verified the apply stands (exit 0, with a note), otherwise it is rolled back. A journal of the apply in progress (journal.json beside the lock) lets the next apply, del or confirm roll back an apply that was killed (SIGKILL, crash); plan, show and export report it.

--confirm SECONDS: after a verified apply, the change is kept only if \`tunctl confirm\` (or Enter, when standard input is a terminal) comes within SECONDS; otherwise it is rolled back. The waiting is done by a detached watchdog that holds the namespace lock, so it survives this command's terminal or SSH session going away; this command waits for the outcome (exit 0 confirmed, 1 rolled back, 3 rollback incomplete).

--json prints {ok, plan, applied, verified, rolledBack} (schemas/apply-output.schema.json); applied is true only when the batch ran.

Testing hooks: TUNCTL_FAIL_AT_LINE=N replaces line N of the batch with a line that fails (\`link set dev tunctl-injected-failure up\`), to exercise the rollback. TUNCTL_PAUSE_AT=PHASE with TUNCTL_PAUSE_FILE=PATH (PHASE: before-batch, batch, after-batch, verify, rollback) writes PATH.reached and waits there until PATH exists or a signal arrives.

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Apply a file', command: '<%= config.bin %> <%= command.id %> tunnels.yaml'},
    {description: 'Show what would change, exit 2 if anything would', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --dry-run --detailed-exitcode'},
    {description: 'Apply inside a namespace, delete tunnels no longer listed, echo every ip line', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --netns blue --prune --verbose'},
    {description: 'Force the userspace encapsulator', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --driver userspace'},
    {description: 'Take over a tunnel created by hand (listed in the file as legacy0)', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --adopt legacy0'},
    {description: 'Over SSH: roll back by itself unless confirmed within 2 minutes (tunctl confirm)', command: '<%= config.bin %> <%= command.id %> tunnels.yaml --confirm 120'},
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
    confirm: Flags.integer({description: 'keep the change only if `tunctl confirm` (or Enter on a terminal) comes within SECONDS; otherwise roll it back', min: 1, helpValue: 'SECONDS'}),
  }

  private plan?: Plan
  /** a --confirm that did not come: the change was applied and verified before it was rolled back */
  private failure: {applied?: boolean; verified?: boolean} = {}

  async run(): Promise<void> {
    mark('command loaded')
    const {args, flags} = await this.parse(Apply)
    this.jsonMode = flags.json
    if (flags.confirm !== undefined && flags['dry-run']) throw new UsageError('--confirm cannot be combined with --dry-run')
    // apply's changes are never pending after it: the flag means something only with --dry-run (tunctl(8) SYNOPSIS)
    if (flags['detailed-exitcode'] && !flags['dry-run']) throw new UsageError('--detailed-exitcode needs --dry-run (or use tunctl plan --detailed-exitcode)')
    const netns = flags.netns
    // The namespace is known before the file is read: its observation and modprobe's dry run for the support check
    // run (children, on another core) while the file is parsed (pipeline.ts observeEarly). Read only: a file that
    // fails to parse changes nothing. An apply uses them only if the namespace lock stayed undisturbed since they
    // began (transaction.ts): the lock is taken now if its file exists and is free (nothing written: the pid once
    // the file parsed), or its file is missing (then no tunctl can hold it until the apply makes it). Only for a
    // regular file in a namespace that exists (base.ts observableEarly): standard input or a pipe is read first,
    // then locked and observed, as are files in a missing namespace (reported after the file's own errors).
    const early = observableEarly(args.file, netns)
    const pre = early && !flags['dry-run'] ? preLock(netns, {hold: true}) : undefined
    const observation = early && pre?.state !== 'busy' ? observeEarly(netns) : undefined
    let desired: DesiredState
    try {
      desired = await loadSpec(args.file)
      mark('spec parsed')
      checkAdopt(desired, flags.adopt)
      requireNetns(netns)
    } catch (e) {
      dropPreLock(pre)
      throw e
    }
    const req = {netns, prune: flags.prune, driver: flags.driver, adopt: flags.adopt, early: observation}
    const show = (plan: Plan) => {
      this.plan = plan
      if (!this.jsonMode) process.stdout.write(renderPlan(plan, {color: useColor(), file: desired.file}))
    }

    if (flags['dry-run']) {
      reportUnfinished(netns)
      const {plan} = await planSpec(desired, req)
      show(plan)
      if (this.jsonMode) this.printJSON({ok: true, dryRun: true, plan: planToJSON(plan), applied: false, verified: false, rolledBack: false})
      if (flags['detailed-exitcode'] && plan.steps.length) this.done(EXIT.CHANGES)
      return
    }

    const {plan, result, confirmWait} = await applySpec(desired, {...req, verbose: flags.verbose, lockTimeout: flags['lock-timeout'], confirm: flags.confirm, preLock: pre}, show)
    mark('executed')
    if (result.interrupted) process.stderr.write(`tunctl: ${result.interrupted} arrived while the batch ran: the apply finished and was verified; it stands\n`)
    if (confirmWait) {
      if (!this.jsonMode) {
        const c = plan.counts
        process.stdout.write(`Applied: ${c.create} created, ${c.update} updated, ${c.replace} replaced, ${c.delete} deleted; verified.\n`)
      }
      const confirmed = await awaitConfirmation(netns, confirmWait, flags.confirm!)
      if (confirmed.outcome !== 'confirmed') {
        this.failure = {applied: true, verified: true}
        throw notConfirmedError(confirmed)
      }
    }
    if (this.jsonMode) {
      const {interrupted, ...rest} = result
      this.printJSON({ok: true, plan: planToJSON(plan), ...rest, ...(interrupted ? {interrupted} : {}), ...(confirmWait ? {confirmed: true} : {})})
      return
    }
    if (confirmWait) {
      process.stdout.write('Confirmed: the change stays.\n')
      return
    }
    if (result.applied) {
      const c = plan.counts
      process.stdout.write(
        `Applied: ${c.create} created, ${c.update} updated, ${c.replace} replaced, ${c.delete} deleted (${result.lines ? `${result.lines} ip line${result.lines === 1 ? '' : 's'} in one batch` : 'userspace encapsulator actions only'}); verified.\n`,
      )
    }
  }

  protected override async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    const json = this.jsonMode || this.argv.includes('--json')
    if (json && err instanceof TunctlError && this.plan) {
      this.printJSON({
        ok: false,
        plan: planToJSON(this.plan),
        applied: Boolean(this.failure.applied ?? err.applied),
        verified: Boolean(this.failure.verified),
        rolledBack: Boolean(err.rolledBack),
        error: err.toJSON(),
      })
      throw err
    }
    return super.catch(err)
  }
}
