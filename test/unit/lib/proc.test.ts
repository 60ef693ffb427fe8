// The one process-identity check (src/lib/proc.ts): pid + start time + command line; never a reused pid or a zombie.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {spawn} from 'node:child_process'
import {cmdline, processAlive, startTicks} from '../../../src/lib/proc.js'
import {waitFor} from '../../lib/wait.js'

test('this process: alive, with its start time and command line', () => {
  const t = startTicks(process.pid)
  assert.type(t, 'number')
  assert.ok(processAlive({pid: process.pid}))
  assert.ok(processAlive({pid: process.pid, startTicks: t}))
  assert.ok(processAlive({pid: process.pid, startTicks: t, cmdline: (argv) => argv[0] === process.argv0 || argv.some((a) => a.endsWith('node'))}))
  assert.equal(cmdline(process.pid)?.at(-1) === '', false, 'no empty trailing word')
})

test('another start time (a reused pid), another command line, no pid, a dead pid → not alive', () => {
  const t = startTicks(process.pid)!
  assert.not.ok(processAlive({pid: process.pid, startTicks: t + 1}))
  assert.not.ok(processAlive({pid: process.pid, cmdline: () => false}))
  assert.not.ok(processAlive({pid: undefined}))
  assert.not.ok(processAlive({pid: 0}))
  assert.not.ok(processAlive({pid: 2 ** 22 + 17}))
  assert.is(startTicks(-1), undefined)
})

test('a child that exited (zombie, then reaped) is not alive', async () => {
  const c = spawn('sh', ['-c', 'exit 0'], {stdio: 'ignore'})
  const pid = c.pid!
  c.removeAllListeners()
  // until node reaps it the exited child is a zombie, then its pid is gone: startTicks is undefined either way
  await waitFor(() => startTicks(pid), (v) => v === undefined, {what: `pid ${pid} gone or a zombie`, timeoutMs: 5000})
  assert.not.ok(processAlive({pid}))
})

test.run()
