// The CLI in one module (bundled by scripts/bundle.mjs into dist/bundle/tunctl.cjs): oclif's run/flush, the
// error → exit-code mapping, and every command for oclif's explicit command strategy (package.json oclif.commands).
// tunctl has no topics: a command is always the first word, so package.json says oclif.topicSeparator ":" (with
// " ", oclif joins the words after a command without arguments into one id: `tunctl export extra` was "command
// export:extra not found" instead of "Unexpected argument: extra").
import Apply from './commands/apply.js'
import Confirm from './commands/confirm.js'
import Del from './commands/del.js'
import Doctor from './commands/doctor.js'
import Export from './commands/export.js'
import Help from './commands/help.js'
import Plan from './commands/plan.js'
import Show from './commands/show.js'
import Validate from './commands/validate.js'

export {flush, run} from '@oclif/core'
export {handleError} from './lib/errors.js'
export {mark} from './lib/timing.js'

export const COMMANDS = {apply: Apply, confirm: Confirm, del: Del, doctor: Doctor, export: Export, help: Help, plan: Plan, show: Show, validate: Validate}
