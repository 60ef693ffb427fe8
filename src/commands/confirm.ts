// `tunctl confirm`: keeps an apply made with --confirm SECONDS before its watchdog rolls it back.
import {accessSync, constants} from 'node:fs'
import {BaseCommand, nsJsonFlags, requireNetns} from '../lib/base.js'
import {PermissionError} from '../lib/errors.js'
import {readJournal} from '../lib/journal.js'
import {runDir} from '../lib/rundir.js'
import {confirmApply} from '../execute/confirm.js'

export default class Confirm extends BaseCommand {
  static override summary = 'Keep an apply made with --confirm SECONDS (otherwise it is rolled back when the time runs out).'
  static override description = `\`tunctl apply FILE --confirm SECONDS\` leaves a detached watchdog holding the namespace lock; unless this command (or Enter in the waiting apply, on a terminal) reaches it within SECONDS, it rolls the namespace back to the state before that apply. This command tells the watchdog to keep the change and waits (up to 10 s) for its answer. It fails (exit 1) when nothing awaits confirmation in the namespace, or when it came too late (the change was rolled back). If the watchdog died (SIGKILL, crash), the confirmation can no longer be trusted to be timely: this command then rolls the unfinished apply back, like any mutating command would, and exits 1.

--json prints {ok, confirmed, id, file} (schemas/confirm-output.schema.json).

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Keep the change just applied with --confirm', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'In a namespace, as JSON', command: '<%= config.bin %> <%= command.id %> --netns blue --json'},
  ]

  static override flags = nsJsonFlags

  async run(): Promise<void> {
    const {flags} = await this.parse(Confirm)
    this.jsonMode = flags.json
    const netns = flags.netns
    // the journal is in tunctl's state folder (root's, 0700): unreadable means no privilege, not "nothing to confirm"
    try {
      accessSync(runDir(netns), constants.R_OK | constants.X_OK)
    } catch (e: any) {
      if (e?.code === 'EACCES' || e?.code === 'EPERM') throw new PermissionError(`cannot read ${runDir(netns)}: ${e.message} (tunctl needs root / CAP_NET_ADMIN)`)
    }
    // nothing to confirm in a namespace that does not exist is a usage error (64) like in every other command
    if (!readJournal(netns)) requireNetns(netns)
    const j = await confirmApply(netns)
    if (this.jsonMode) this.printJSON({ok: true, confirmed: true, id: j.id, ...(j.file ? {file: j.file} : {}), ...(netns ? {netns} : {})})
    else process.stdout.write(`Confirmed: the apply${j.file ? ` of ${j.file}` : ''} stays.\n`)
  }
}
