// Which key file each tunnel's SAs came from, recorded in the run directory (runDir/ipsec-keyfiles.json, 0600)
// after a verified apply, so that `export` can write the ipsec block back with its key-file reference. The kernel
// cannot hold that path; like the SAs themselves, the record does not survive a reboot. It holds paths and SPIs
// only, never key material.
import {existsSync, readFileSync} from 'node:fs'
import {resolve} from 'node:path'
import {RUN_DIR_FILES, ensureRunDir, runDir, writeAtomic} from '../lib/rundir.js'
import type {DesiredState} from '../model/types.js'
import {keyFilePath} from './keyfile.js'

export interface KeyFileRecord {
  keyFile: string
  spiOut: number
  spiIn: number
}

/** in the run directory beside the userspace state files (never taken for a tunnel's: userspace/paths.ts tunnelFileOf) */
const FILE = RUN_DIR_FILES.keyFileRecords

export function readKeyFileRecords(netns?: string): Map<string, KeyFileRecord> {
  try {
    const f = `${runDir(netns)}/${FILE}`
    if (!existsSync(f)) return new Map()
    return new Map(Object.entries(JSON.parse(readFileSync(f, 'utf8')) as Record<string, KeyFileRecord>))
  } catch {
    return new Map()
  }
}

/** After a verified apply: the file's ipsec tunnels recorded (absolute key-file paths), others of the record kept. */
export function recordKeyFiles(netns: string | undefined, state: DesiredState, stdinName: string): void {
  const present = state.tunnels.filter((t) => t.state === 'present' && t.ipsec?.keyFile)
  const rec = readKeyFileRecords(netns)
  const before = JSON.stringify([...rec])
  for (const t of state.tunnels) if (!t.ipsec || t.state === 'absent') rec.delete(t.name)
  for (const t of present) rec.set(t.name, {keyFile: resolve(keyFilePath(state.file, t.ipsec!.keyFile!, stdinName)), spiOut: t.ipsec!.spiOut, spiIn: t.ipsec!.spiIn})
  if (JSON.stringify([...rec]) === before) return
  ensureRunDir(netns)
  writeAtomic(`${runDir(netns)}/${FILE}`, Object.fromEntries(rec))
}
