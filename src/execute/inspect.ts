// The read-only commands' library calls: the tunnels `show` lists and `export` writes (an unfinished apply or del
// is reported on stderr first, never rolled back: these commands change nothing).
import {TunctlError} from '../lib/errors.js'
import type {ObservedTunnel} from '../model/types.js'
import {readKeyFileRecords, type KeyFileRecord} from '../ipsec/record.js'
import {observe} from '../observe/index.js'
import {reportUnfinished} from './recover.js'

export interface ListOptions {
  netns?: string
  /** also the tunnels tunctl does not own */
  all?: boolean
}

/** `show [NAME]`: the named tunnel (any owner; TunctlError if there is none), or the owned ones (all: every one). */
export async function listTunnels(opts: ListOptions & {name?: string}): Promise<ObservedTunnel[]> {
  reportUnfinished(opts.netns)
  const observed = await observe({netns: opts.netns})
  if (opts.name) {
    const t = observed.tunnels.find((x) => x.name === opts.name)
    if (!t) throw new TunctlError(`no tunnel named ${opts.name}${observed.links.includes(opts.name) ? ` (${opts.name} is a ${observed.kinds[opts.name] ?? 'non-tunnel'} link)` : ''}`)
    return [t]
  }
  return opts.all ? observed.tunnels : observed.tunnels.filter((t) => t.owned)
}

/** `export`: the tunnels to write and, for vti ipsec blocks, the key-file references recorded at apply. */
export async function exportTunnels(opts: ListOptions): Promise<{tunnels: ObservedTunnel[]; keyFiles: Map<string, KeyFileRecord>}> {
  const tunnels = await listTunnels({netns: opts.netns, all: opts.all})
  return {tunnels, keyFiles: readKeyFileRecords(opts.netns)}
}
