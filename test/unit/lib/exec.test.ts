// The one runner of system commands (src/lib/exec.ts): exit codes, stdin, timeouts, the --verbose echo, error classes.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {CommandError, PermissionError, UsageError} from '../../../src/lib/errors.js'
import {commandError, run, runSync, runWithFds} from '../../../src/lib/exec.js'

/** stderr written while fn runs (the echo goes there). */
async function stderrOf(fn: () => Promise<unknown>): Promise<string> {
  const write = process.stderr.write.bind(process.stderr)
  let got = ''
  process.stderr.write = ((chunk: string | Uint8Array) => {
    got += String(chunk)
    return true
  }) as typeof process.stderr.write
  try {
    await fn()
  } finally {
    process.stderr.write = write
  }
  return got
}

test('exit code, stdout, stderr and standard input; a failing exit does not throw', async () => {
  const r = await run('sh', ['-c', 'cat; echo oops >&2; exit 3'], {input: 'hello'})
  assert.equal([r.exitCode, r.stdout, r.stderr, r.timedOut], [3, 'hello', 'oops', false])
  assert.equal([...r.stdoutBytes], [...Buffer.from('hello')])
})

test('a program that is not installed → exit 127, not an exception', async () => {
  const r = await run('tunctl-no-such-program', [])
  assert.is(r.exitCode, 127)
  assert.match(r.stderr, /tunctl-no-such-program/)
})

test('timeout: the command is killed and the result says so', async () => {
  const t0 = Date.now()
  const r = await run('sleep', ['10'], {timeoutMs: 200})
  assert.is(r.timedOut, true)
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`)
})

test('--verbose echoes "[#] " and the words (quoted like a batch line, control characters escaped); reads are silent', async () => {
  assert.is(await stderrOf(() => run('true', ['a b', 'c'], {verbose: true})), '[#] true "a b" c\n')
  assert.is(await stderrOf(() => run('true', ['x'], {verbose: true, shown: ['ip', 'xfrm', '<key hidden>']})), '[#] ip xfrm "<key hidden>"\n')
  assert.is(await stderrOf(() => run('true', ['x\u001b[31m'], {verbose: true})), '[#] true x\\e[31m\n')
  assert.is(await stderrOf(() => run('true', ['x'])), '')
})

test('failures map to the error classes: missing namespace 64, no privilege 77, anything else CommandError', () => {
  const ns = commandError(['ip', '-n', 'nope', 'link'], 'Cannot open network namespace "nope": No such file or directory\n')
  assert.instance(ns, UsageError)
  assert.is(ns.exitCode, 64)
  const perm = commandError(['ip', 'link', 'add'], 'RTNETLINK answers: Operation not permitted\n')
  assert.instance(perm, PermissionError)
  assert.is(perm.exitCode, 77)
  const other = commandError(['ip', 'link', 'del', 'dev', 'x'], 'Cannot find device "x"\n', 2)
  assert.instance(other, CommandError)
  assert.equal([other.exitCode, other.argv, other.batchLine, other.message], [1, ['ip', 'link', 'del', 'dev', 'x'], 2, 'ip link del dev x: Cannot find device "x"'])
})

test('runWithFds hands our fd to the child as fd 3', async () => {
  const {openSync, closeSync, readFileSync, mkdtempSync, rmSync} = await import('node:fs')
  const {join} = await import('node:path')
  const {tmpdir} = await import('node:os')
  const dir = mkdtempSync(join(tmpdir(), 'tunctl-exec-'))
  try {
    const fd = openSync(join(dir, 'f'), 'w')
    const r = await runWithFds('sh', ['-c', 'echo via-fd3 >&3'], [fd])
    closeSync(fd)
    assert.is(r.exitCode, 0)
    assert.is(readFileSync(join(dir, 'f'), 'utf8'), 'via-fd3\n')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('runSync: the same result as run, synchronously (stdin, exit code, not installed, timeout, echo)', async () => {
  const r = runSync('sh', ['-c', 'cat; echo oops >&2; exit 3'], {input: 'hello'})
  assert.equal([r.exitCode, r.stdout, r.stderr.trim(), r.timedOut], [3, 'hello', 'oops', false])
  assert.equal([...r.stdoutBytes], [...Buffer.from('hello')])
  assert.is(runSync('tunctl-no-such-program', []).exitCode, 127)
  const slow = runSync('sleep', ['5'], {timeoutMs: 200})
  assert.ok(slow.timedOut, 'timed out')
  assert.is.not(slow.exitCode, 0)
  const echoed = await stderrOf(async () => runSync('true', [], {verbose: true}))
  assert.is(echoed, '[#] true\n')
})

test.run()
