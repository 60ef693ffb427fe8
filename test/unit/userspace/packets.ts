// Builds small inner packets (IPv4/IPv6 ICMP echo) for codec and injection tests.

export function csum(buf: Buffer, sum = 0): number {
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i)
  if (buf.length % 2) sum += buf[buf.length - 1]! << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

function v4(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number))
}

function v6(addr: string): Buffer {
  // expand "::" and embedded dotted quads
  let a = addr
  const dq = /(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (dq) {
    const b = v4(dq[1]!)
    a = a.slice(0, -dq[1]!.length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`
  }
  const [head, tail] = a.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail !== undefined && tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

/** IPv4 ICMP echo request; DF set, TTL/TOS as given. */
export function icmp4(src: string, dst: string, opts: {ttl?: number; tos?: number; df?: boolean; payload?: number; id?: number} = {}): Buffer {
  const payload = Buffer.alloc(opts.payload ?? 32, 0xab)
  const icmp = Buffer.concat([Buffer.from([8, 0, 0, 0, 0, opts.id ?? 1, 0, 1]), payload])
  icmp.writeUInt16BE(csum(icmp), 2)
  const h = Buffer.alloc(20)
  h[0] = 0x45
  h[1] = opts.tos ?? 0
  h.writeUInt16BE(20 + icmp.length, 2)
  h.writeUInt16BE(opts.id ?? 0x1234, 4)
  h.writeUInt16BE(opts.df === false ? 0 : 0x4000, 6)
  h[8] = opts.ttl ?? 64
  h[9] = 1
  v4(src).copy(h, 12)
  v4(dst).copy(h, 16)
  h.writeUInt16BE(csum(h), 10)
  return Buffer.concat([h, icmp])
}

/** IPv6 ICMPv6 echo request. */
export function icmp6(src: string, dst: string, opts: {hop?: number; tclass?: number; payload?: number} = {}): Buffer {
  const payload = Buffer.alloc(opts.payload ?? 32, 0xcd)
  const icmp = Buffer.concat([Buffer.from([128, 0, 0, 0, 0, 1, 0, 1]), payload])
  const s = v6(src)
  const d = v6(dst)
  const pseudo = Buffer.concat([s, d, Buffer.from([0, 0, icmp.length >> 8, icmp.length & 0xff, 0, 0, 0, 58])])
  icmp.writeUInt16BE(csum(Buffer.concat([pseudo, icmp])), 2)
  const h = Buffer.alloc(40)
  const tc = opts.tclass ?? 0
  h.writeUInt32BE(((6 << 28) | (tc << 20)) >>> 0, 0)
  h.writeUInt16BE(icmp.length, 4)
  h[6] = 58
  h[7] = opts.hop ?? 64
  s.copy(h, 8)
  d.copy(h, 24)
  return Buffer.concat([h, icmp])
}

export {v4 as v4bytes, v6 as v6bytes}

/** IPv4 or IPv6 TCP segment with a valid checksum. */
export function tcp(
  src: string,
  dst: string,
  payload: Buffer,
  opts: {seq?: number; ack?: number; flags?: number; options?: Buffer; id?: number; tos?: number} = {},
): Buffer {
  const six = src.includes(':')
  const options = opts.options ?? Buffer.alloc(0)
  const th = Buffer.alloc(20 + options.length)
  th.writeUInt16BE(40000, 0)
  th.writeUInt16BE(5201, 2)
  th.writeUInt32BE((opts.seq ?? 1000) >>> 0, 4)
  th.writeUInt32BE(opts.ack ?? 2000, 8)
  th[12] = (th.length / 4) << 4
  th[13] = opts.flags ?? 0x10
  th.writeUInt16BE(502, 14)
  options.copy(th, 20)
  const seg = Buffer.concat([th, payload])
  const s = six ? v6(src) : v4(src)
  const d = six ? v6(dst) : v4(dst)
  const len = Buffer.alloc(4)
  len.writeUInt32BE(seg.length)
  const pseudo = six ? Buffer.concat([s, d, len, Buffer.from([0, 0, 0, 6])]) : Buffer.concat([s, d, Buffer.from([0, 6]), len.subarray(2)])
  seg.writeUInt16BE(csum(Buffer.concat([pseudo, seg])), 16)
  if (six) {
    const h = Buffer.alloc(40)
    h.writeUInt32BE((6 << 28) >>> 0, 0)
    h.writeUInt16BE(seg.length, 4)
    h[6] = 6
    h[7] = 64
    s.copy(h, 8)
    d.copy(h, 24)
    return Buffer.concat([h, seg])
  }
  const h = Buffer.alloc(20)
  h[0] = 0x45
  h[1] = opts.tos ?? 0
  h.writeUInt16BE(20 + seg.length, 2)
  h.writeUInt16BE(opts.id ?? 7, 4)
  h.writeUInt16BE(0x4000, 6)
  h[8] = 64
  h[9] = 6
  s.copy(h, 12)
  d.copy(h, 16)
  h.writeUInt16BE(csum(h), 10)
  return Buffer.concat([h, seg])
}

/** 0 when the TCP checksum of an IPv4/IPv6 TCP packet verifies */
export function tcpCsum(pkt: Buffer): number {
  const isV6 = pkt[0]! >> 4 === 6
  const iphl = isV6 ? 40 : (pkt[0]! & 15) * 4
  const seg = pkt.subarray(iphl)
  const len = Buffer.alloc(4)
  len.writeUInt32BE(seg.length)
  const pseudo = isV6
    ? Buffer.concat([pkt.subarray(8, 40), len, Buffer.from([0, 0, 0, 6])])
    : Buffer.concat([pkt.subarray(12, 20), Buffer.from([0, 6]), len.subarray(2)])
  return csum(Buffer.concat([pseudo, seg]))
}
