// test/run.mjs sweeps what an interrupted earlier run left (its own namespace names, with a dead pid) and
// nothing else: a leftover namespace with a process inside is removed, a live run's namespace is kept.
import {spawn, spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {suite} from '#test/uvu'
import * as assert from 'uvu/assert'
import {processRuns, waitForSync} from '../lib/wait.js'

const repo = join(import.meta.dirname, '..', '..')
const nsList = () => (spawnSync('ip', ['netns', 'list'], {encoding: 'utf8'}).stdout ?? '').split('\n').map((l) => l.split(' ')[0])
const t = suite('test/run.mjs sweeps leftovers of earlier runs')

t('a dead run\'s namespace and its process are removed; a live run\'s namespace is kept', () => {
  // a pid that is not running: spawn and reap a process, then use its pid
  const gone = spawnSync('true').pid!
  const dead = `tunctl-t-sweep-p${gone}-a${Math.random().toString(16).slice(2, 8).padEnd(6, '0')}`
  const live = `tunctl-t-sweep-p${process.pid}-b${Math.random().toString(16).slice(2, 8).padEnd(6, '0')}`
  let holder: ReturnType<typeof spawn> | undefined
  try {
    for (const ns of [dead, live]) assert.is(spawnSync('ip', ['netns', 'add', ns]).status, 0)
    holder = spawn('ip', ['netns', 'exec', dead, 'sleep', '300'], {stdio: 'ignore'})
    waitForSync(() => spawnSync('ip', ['netns', 'pids', dead], {encoding: 'utf8'}).stdout.trim(), (p) => p !== '', {what: 'a process inside the leftover namespace'})
    const r = spawnSync(process.execPath, [join(repo, 'test', 'run.mjs'), 'no-such-suite'], {cwd: repo, encoding: 'utf8'})
    assert.is(r.status, 64, r.stdout + r.stderr) // the sweep runs before the suites are chosen
    assert.match(r.stdout, new RegExp(`swept the namespace ${dead}`))
    assert.not.ok(nsList().includes(dead), 'leftover namespace removed')
    assert.ok(nsList().includes(live), 'the namespace of a live run is kept')
    waitForSync(() => processRuns(holder!.pid!), (running) => !running, {what: 'the process inside the leftover namespace killed'})
  } finally {
    holder?.kill('SIGKILL')
    for (const ns of [dead, live]) spawnSync('ip', ['netns', 'del', ns])
  }
})

t.run()
