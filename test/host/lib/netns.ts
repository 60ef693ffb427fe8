// Host e2e helpers: namespace pairs joined by veth (198.51.100.1/24 ↔ 198.51.100.2/24), commands inside them,
// and a teardown that stops the userspace engines before deleting the namespaces (runs on failure too).
import {execFileSync, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {legacyRunDir} from '../../../src/lib/rundir.js'
import {nsDir} from '../../../src/userspace/paths.js'
import {addonAvailable} from '../../../src/userspace/addon.js'
import {waitForSync} from '../../lib/wait.js'

export const A_ADDR = '198.51.100.1'
export const B_ADDR = '198.51.100.2'

export interface Pair {
  a: string
  b: string
}

const live = new Set<string>()

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, {encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe']})
}

export function run(cmd: string, args: string[]): {code: number; out: string; err: string} {
  const r = spawnSync(cmd, args, {encoding: 'utf8'})
  return {code: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? ''}
}

export function ipn(ns: string, ...args: string[]): string {
  return sh('ip', ['-n', ns, ...args])
}

export function nsExec(ns: string, cmd: string, args: string[]): {code: number; out: string; err: string} {
  return run('ip', ['netns', 'exec', ns, cmd, ...args])
}

export function makePair(tag: string): Pair {
  const id = randomBytes(3).toString('hex')
  // the test process's pid is in the name, so test/run.mjs can sweep what a dead run left (and only that)
  const a = `tunctl-t-${tag}-p${process.pid}-a${id}`
  const b = `tunctl-t-${tag}-p${process.pid}-b${id}`
  for (const ns of [a, b]) {
    sh('ip', ['netns', 'add', ns])
    live.add(ns)
    ipn(ns, 'link', 'set', 'lo', 'up')
  }
  ipn(a, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', b)
  ipn(a, 'addr', 'add', `${A_ADDR}/24`, 'dev', 'ul0')
  ipn(b, 'addr', 'add', `${B_ADDR}/24`, 'dev', 'ul0')
  ipn(a, 'link', 'set', 'ul0', 'up')
  ipn(b, 'link', 'set', 'ul0', 'up')
  return {a, b}
}

/** Kills the userspace engine recorded for the namespace (its pid in the state files and .engine.json), removes its state directory, deletes the namespace. Never throws. */
export function removeNs(ns: string): void {
  const dir = nsDir(ns)
  try {
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.json') || f.endsWith('.stats.json')) continue
      try {
        const st = JSON.parse(readFileSync(join(dir, f), 'utf8'))
        if (st.pid) process.kill(st.pid, 'SIGKILL')
      } catch {}
    }
  } catch {}
  run('ip', ['netns', 'del', ns])
  rmSync(dir, {recursive: true, force: true})
  rmSync(legacyRunDir(ns), {recursive: true, force: true}) // the lock's directory (src/lib/lock.ts)
  live.delete(ns)
}

export function removePair(p: Pair | undefined): void {
  if (!p) return
  removeNs(p.a)
  removeNs(p.b)
}

process.on('exit', () => {
  for (const ns of [...live]) removeNs(ns)
})

/** Sends a raw IPv4 packet (header included) from inside `ns` with python3 (IPPROTO_RAW implies IP_HDRINCL). */
export function rawSendFrom(ns: string, packet: Buffer): void {
  const dst = [...packet.subarray(16, 20)].join('.')
  const code = 'import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)\ns.sendto(bytes.fromhex(sys.argv[1]),(sys.argv[2],0))'
  const r = nsExec(ns, 'python3', ['-c', code, packet.toString('hex'), dst])
  if (r.code !== 0) throw new Error(`raw send failed: ${r.err}`)
}

export function ping(ns: string, addr: string, count = 3): {ok: boolean; out: string} {
  const r = nsExec(ns, 'ping', [addr.includes(':') ? '-6' : '-4', '-c', String(count), '-i', '0.2', '-W', '2', addr])
  return {ok: r.code === 0, out: r.out + r.err}
}

/** iperf3 for `seconds` from a to b's addr; returns bits per second received. */
export function iperf(a: string, b: string, addr: string, seconds = 2): number {
  const srv = nsExec(b, 'iperf3', ['-s', '-D', '-1', '-B', addr])
  if (srv.code !== 0) throw new Error(`iperf3 server: ${srv.err}`)
  // -D returns before the daemon listens: wait for its socket
  waitForSync(() => nsExec(b, 'ss', ['-Hltn', 'sport = :5201']).out, (o) => o.trim() !== '', {what: `iperf3 listening in ${b}`})
  const r = nsExec(a, 'iperf3', ['-c', addr, '-t', String(seconds), '-J'])
  if (r.code !== 0) throw new Error(`iperf3 client: ${r.out.slice(-500)} ${r.err}`)
  const j = JSON.parse(r.out)
  return j.end.sum_received.bits_per_second as number
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Why the CLI with the userspace driver cannot be tested here (root, tools, the native addon, the built CLI), or undefined. */
export function whyNoUserspaceCli(): string | undefined {
  return whyNoHost() ?? (!addonAvailable() ? 'native addon not built (node scripts/build-native.mjs)' : undefined) ??
    (!existsSync(join(import.meta.dirname, '..', '..', '..', 'dist', 'bundle', 'tunctl.cjs')) ? 'CLI not built (npm run build)' : undefined)
}

export function whyNoHost(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root'
  for (const c of ['iperf3', 'python3', 'ping']) if (run('sh', ['-c', `command -v ${c}`]).code !== 0) return `${c} missing`
  return undefined
}

/**
 * Sends `bytes` random bytes over TCP from ns `from` to `addr` (listening in ns `to`) and returns the SHA-256 of
 * what was sent and of what arrived (payload integrity through offloads, segmentation and coalescing).
 */
export function tcpTransfer(from: string, to: string, addr: string, bytes: number): {sent: string; received: string} {
  const fam = addr.includes(':') ? 'AF_INET6' : 'AF_INET'
  const server = `import socket,hashlib,sys
s=socket.socket(socket.${fam},socket.SOCK_STREAM);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('${addr}',5201));s.listen(1);s.settimeout(20);c,_=s.accept();h=hashlib.sha256()
while True:
  d=c.recv(1<<20)
  if not d: break
  h.update(d)
print(h.hexdigest())`
  const client = `import socket,hashlib,os,time
data=os.urandom(${bytes});h=hashlib.sha256(data).hexdigest()
for i in range(50):
  try:
    c=socket.create_connection(('${addr}',5201),timeout=10);break
  except OSError: time.sleep(0.1)
c.sendall(data);c.shutdown(socket.SHUT_WR);c.recv(1);c.close();print(h)`
  const srv = spawnSync('sh', ['-c', `ip netns exec ${to} python3 -c "$S" & ip netns exec ${from} python3 -c "$C"; wait`], {
    encoding: 'utf8',
    env: {...process.env, S: server, C: client},
    timeout: 60_000,
  })
  const lines = (srv.stdout ?? '').trim().split('\n')
  // the client prints after the server finished hashing; order the two by who printed what
  if (lines.length < 2) throw new Error(`transfer failed: ${srv.stdout} ${srv.stderr}`)
  return {received: lines[0]!, sent: lines[1]!}
}
