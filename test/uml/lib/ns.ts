// Two network namespaces joined by a veth (A 198.51.100.1/24 ↔ B 198.51.100.2/24), removed again in teardown.
import {randomBytes} from 'node:crypto'
import {ipn, ipnJson, must, nsExec, run} from './sh.js'

export const A_ADDR = '198.51.100.1'
export const B_ADDR = '198.51.100.2'

export interface Pair {
  a: string
  b: string
}

const live = new Set<string>()

function newName(tag: string): string {
  return `tunctl-t-${tag}-${randomBytes(3).toString('hex')}`
}

/** One empty namespace with lo up. */
export function makeNs(tag: string): string {
  const ns = newName(tag)
  must('ip', ['netns', 'add', ns])
  live.add(ns)
  // no IPv6 duplicate address detection: addresses would otherwise flip from "tentative" to final
  // between two snapshots, and pings right after an apply could find them unusable
  must('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'])
  ipn(ns, 'link', 'set', 'lo', 'up')
  return ns
}

/** Two namespaces and a veth between them (underlay for the tunnels). */
export function makePair(tag: string): Pair {
  const a = makeNs(`${tag}-a`)
  const b = makeNs(`${tag}-b`)
  ipn(a, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', b)
  ipn(a, 'addr', 'add', `${A_ADDR}/24`, 'dev', 'ul0')
  ipn(b, 'addr', 'add', `${B_ADDR}/24`, 'dev', 'ul0')
  ipn(a, 'link', 'set', 'ul0', 'up')
  ipn(b, 'link', 'set', 'ul0', 'up')
  return {a, b}
}

/** Deletes namespaces (their tunnels and the veth go with them); never throws. */
export function removeNs(...names: Array<string | undefined>): void {
  for (const ns of names) {
    if (!ns) continue
    run('ip', ['netns', 'del', ns])
    live.delete(ns)
  }
}

export function removePair(p: Pair | undefined): void {
  if (p) removeNs(p.a, p.b)
}

// a crashed test file must not leave namespaces behind for the next one in the same boot
process.on('exit', () => {
  for (const ns of live) run('ip', ['netns', 'del', ns])
})

export function ifindex(ns: string, name: string): number | undefined {
  const r = run('ip', ['-n', ns, '-j', 'link', 'show', 'dev', name])
  if (r.code !== 0) return undefined
  return JSON.parse(r.stdout)[0]?.ifindex
}

export function linkExists(ns: string, name: string): boolean {
  return ifindex(ns, name) !== undefined
}

/** `ip -j -d link show dev NAME` entry. */
export function linkDetails(ns: string, name: string): any {
  return ipnJson(ns, '-d', 'link', 'show', 'dev', name)[0]
}

/** Pings until one reply arrives or the deadline passes (IPv6 addresses may still be tentative). */
export function pingOk(ns: string, addr: string, deadlineSec = 8): boolean {
  const six = addr.includes(':')
  const end = Date.now() + deadlineSec * 1000
  for (;;) {
    const r = nsExec(ns, 'ping', [...(six ? ['-6'] : []), '-c', '1', '-W', '1', addr])
    if (r.code === 0) return true
    if (Date.now() > end) return false
  }
}
