// The only way tests reach uvu (imported as '#test/uvu'): the same `test`/`suite` API, but every hook error,
// skip, `.only` and test registered after `run()` is recorded where test/lib/runner.mjs can count it.
// uvu 0.5 itself swallows an exception thrown by a before-hook (its runner returns from `finally`) and leaves
// `test.skip` out of its Total; the runner makes both visible.
import {suite as uvuSuite} from 'uvu'

/** Shared with test/lib/runner.mjs through globalThis (test files and the runner share one process). */
export const registry = (globalThis.__tunctlTests ??= {file: '', suites: [], hookErrors: [], skips: [], onlys: []})

function wrap(inner, name) {
  const rec = {file: registry.file, name, pending: 0, runs: 0}
  registry.suites.push(rec)
  const t = (title, fn) => {
    rec.pending++
    return inner(title, fn)
  }
  const hook = (kind, add) => (fn) =>
    add(async (ctx) => {
      try {
        return await fn(ctx)
      } catch (error) {
        registry.hookErrors.push({file: rec.file, suite: name, kind, error})
        throw error
      }
    })
  t.before = hook('before', inner.before)
  t.before.each = hook('before.each', inner.before.each)
  t.after = hook('after', inner.after)
  t.after.each = hook('after.each', inner.after.each)
  t.skip = (title) => {
    registry.skips.push({file: rec.file, suite: name, title: String(title ?? '')})
    return inner.skip(title)
  }
  t.only = (title, fn) => {
    registry.onlys.push({file: rec.file, suite: name, title: String(title)})
    rec.pending++
    return inner.only(title, fn)
  }
  t.run = () => {
    rec.pending = 0
    rec.runs++
    return inner.run()
  }
  return t
}

export const suite = (name = '', state = {}) => wrap(uvuSuite(name, state), name)
/** The unnamed suite of the current file: each file gets its own (uvu's `test` is one object for all files). */
export const test = new Proxy(function () {}, {
  apply: (_t, _this, args) => currentDefault()(...args),
  get: (_t, key) => currentDefault()[key],
})

let defaults = new Map()
function currentDefault() {
  let t = defaults.get(registry.file)
  if (!t) defaults.set(registry.file, (t = wrap(uvuSuite(''), '')))
  return t
}
