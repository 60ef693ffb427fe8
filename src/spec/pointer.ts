// JSON pointers (RFC 6901) and their human labels ("routes[0].via") used in spec diagnostics.

// (most segments have neither character: a test is cheaper than two replaces, thousands of times per spec)
export function escapeSegment(s: string): string {
  return s.includes('~') || s.includes('/') ? s.replace(/~/g, '~0').replace(/\//g, '~1') : s
}

export function unescapeSegment(s: string): string {
  return s.includes('~') ? s.replace(/~1/g, '/').replace(/~0/g, '~') : s
}

export function joinPointer(...segments: Array<string | number>): string {
  let out = ''
  for (const s of segments) out += '/' + escapeSegment(String(s))
  return out
}

export function splitPointer(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return []
  return pointer.replace(/^\//, '').split('/').map(unescapeSegment)
}

/** `/tunnels/gre1/routes/0/via` → {tunnel: 'gre1', label: 'routes[0].via'}; top level → {label: 'version'}. */
export function describePointer(pointer: string): {tunnel?: string; label: string} {
  const segs = splitPointer(pointer)
  let rest = segs
  let tunnel: string | undefined
  if (segs[0] === 'tunnels' && segs.length >= 2) {
    tunnel = segs[1]
    rest = segs.slice(2)
  }
  let label = ''
  for (const s of rest) {
    if (/^\d+$/.test(s)) label += `[${s}]`
    else label += (label ? '.' : '') + s
  }
  if (!tunnel && segs[0] === 'tunnels' && segs.length === 1) label = 'tunnels'
  return {tunnel, label}
}
