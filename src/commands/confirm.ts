// `tunctl confirm`: keeps an apply made with --confirm SECONDS before its watchdog rolls it back.
import {BaseCommand, commonFlags} from '../lib/base.js'
import {TunctlError} from '../lib/errors.js'
import {ownerAlive, readJournal} from '../lib/journal.js'
import {withLock} from '../lib/lock.js'
import {readResult, removeConfirmRequest, requestConfirm} from '../execute/confirm.js'
import {recoverUnfinished} from '../execute/recover.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export default class Confirm extends BaseCommand {
  static override summary = 'Keep an apply made with --confirm SECONDS (otherwise it is rolled back when the time runs out).'
  static override description = `\`tunctl apply FILE --confirm SECONDS\` leaves a detached watchdog holding the namespace lock; unless this command (or Enter in the waiting apply, on a terminal) reaches it within SECONDS, it rolls the namespace back to the state before that apply. This command tells the watchdog to keep the change and waits (up to 10 s) for its answer. It fails (exit 1) when nothing awaits confirmation in the namespace, or when it came too late (the change was rolled back). If the watchdog died (SIGKILL, crash), the confirmation can no longer be trusted to be timely: this command then rolls the unfinished apply back, like any mutating command would, and exits 1.

--json prints {ok, confirmed, id, file} (schemas/confirm-output.schema.json).

${BaseCommand.exitCodesHelp}`

  static override examples = [
    {description: 'Keep the change just applied with --confirm', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'In a namespace, as JSON', command: '<%= config.bin %> <%= command.id %> --netns blue --json'},
  ]

  static override flags = {
    netns: commonFlags.netns,
    json: commonFlags.json,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Confirm)
    this.jsonMode = flags.json
    const netns = flags.netns
    const j = readJournal(netns)
    if (!j) {
      const last = readResult(netns)
      const about = last && last.outcome !== 'confirmed' ? ` (the last apply with --confirm was rolled back at ${last.at}: ${last.reason ?? 'not confirmed in time'})` : ''
      throw new TunctlError(`nothing awaits confirmation${netns ? ` in namespace ${netns}` : ''}${about}`)
    }
    if (!ownerAlive(j)) {
      // the apply or its watchdog died: the change was never confirmed in time; converge like any mutating command
      await withLock(netns, 30, async () => recoverUnfinished({netns}))
      throw new TunctlError(`the apply${j.file ? ` of ${j.file}` : ''} (pid ${j.pid}) ${j.phase === 'confirm' ? 'lost its confirmation watchdog' : 'did not finish'}; it was rolled back instead`)
    }
    if (j.phase !== 'confirm') throw new TunctlError(`the apply${j.file ? ` of ${j.file}` : ''} (pid ${j.pid}) is still running; nothing awaits confirmation yet`)
    requestConfirm(netns, j.id)
    const deadline = Date.now() + 10_000
    for (;;) {
      const r = readResult(netns, j.id)
      if (r?.outcome === 'confirmed') break
      if (r) {
        removeConfirmRequest(netns, j.id)
        throw new TunctlError(`too late: the apply${j.file ? ` of ${j.file}` : ''} was rolled back at ${r.at} (${r.reason ?? 'not confirmed in time'})${r.outcome === 'rollback-incomplete' ? `; the rollback is incomplete:\n  ${(r.leftovers ?? []).join('\n  ')}` : ''}`)
      }
      if (Date.now() > deadline) throw new TunctlError(`the confirmation watchdog (pid ${j.pid}) did not answer within 10 s; the request stays in place`)
      await sleep(50)
    }
    if (this.jsonMode) this.printJSON({ok: true, confirmed: true, id: j.id, ...(j.file ? {file: j.file} : {}), ...(netns ? {netns} : {})})
    else process.stdout.write(`Confirmed: the apply${j.file ? ` of ${j.file}` : ''} stays.\n`)
  }
}
