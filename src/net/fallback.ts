// The kernel's per-namespace fallback devices: each tunnel module creates one in every namespace (never reported
// as a tunnel, never a name tunctl can create, and its presence says the module is loaded).

/** Fallback device name → the module that creates it and its link kind. */
export const FALLBACK_DEVICES: Readonly<Record<string, {module: string; kind: string}>> = {
  tunl0: {module: 'ipip', kind: 'ipip'},
  gre0: {module: 'ip_gre', kind: 'gre'},
  gretap0: {module: 'ip_gre', kind: 'gretap'},
  erspan0: {module: 'ip_gre', kind: 'erspan'},
  sit0: {module: 'sit', kind: 'sit'},
  ip_vti0: {module: 'ip_vti', kind: 'vti'},
  ip6tnl0: {module: 'ip6_tunnel', kind: 'ip6tnl'},
  ip6gre0: {module: 'ip6_gre', kind: 'ip6gre'},
  ip6_vti0: {module: 'ip6_vti', kind: 'vti6'},
}

export function isFallbackDevice(name: string): boolean {
  return Object.hasOwn(FALLBACK_DEVICES, name)
}

/** The fallback device of a link kind (ipip → tunl0, gre → gre0, sit → sit0, vti → ip_vti0). */
export function fallbackOf(kind: string): {name: string; module: string} {
  for (const [name, f] of Object.entries(FALLBACK_DEVICES)) if (f.kind === kind) return {name, module: f.module}
  throw new Error(`no fallback device for link kind ${kind}`)
}
