/* Unit tests of tunctl_select (native/dispatch.c), one case per rule of the kernel's lookups:
 * net/ipv4/ip_tunnel.c ip_tunnel_lookup (ipip, gre), net/ipv6/sit.c ipip6_tunnel_lookup (sit, isatap),
 * net/ipv4/tunnel4.c handler priorities (ipip.c before sit.c for protocol 4).
 * Built and run by test/unit/userspace/dispatch.test.ts; prints `ok NAME` / `not ok NAME: ...` per case. */
#include "dispatch.h"
#include "harness.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>



/* a tunnel: mode, local, remote (NULL = any), key (-1 = none), link, up */
static struct tunctl_entry T(int mode, const char *local, const char *remote, long key, int link, int up) {
  struct tunctl_entry e;
  memset(&e, 0, sizeof e);
  tunctl_cfg_init(&e.cfg);
  e.cfg.mode = mode;
  e.cfg.local = ip4(local);
  e.cfg.remote = ip4(remote);
  if (key >= 0) e.cfg.has_ikey = 1, e.cfg.ikey = (uint32_t)key;
  e.link = link;
  e.up = up;
  return e;
}
static struct tunctl_entry FB(int mode, int up) {
  struct tunctl_entry e = T(mode, NULL, NULL, -1, 0, up);
  e.fallback = 1;
  return e;
}

/* an outer packet: protocol, source (the tunnel's remote), destination (its local), GRE flags/key */
static size_t P(uint8_t *b, int proto, const char *src, const char *dst, uint16_t greflags, uint32_t key) {
  memset(b, 0, 128);
  b[0] = 0x45;
  b[8] = 64;
  b[9] = (uint8_t)proto;
  uint32_t s = ip4(src), d = ip4(dst);
  memcpy(b + 12, &s, 4);
  memcpy(b + 16, &d, 4);
  size_t len = 20;
  if (proto == 47) {
    b[20] = (uint8_t)(greflags >> 8);
    b[21] = (uint8_t)greflags;
    b[22] = 0x08;
    len = 24;
    if (greflags & 0x8000) len += 4;
    if (greflags & 0x2000) {
      b[len] = (uint8_t)(key >> 24), b[len + 1] = (uint8_t)(key >> 16), b[len + 2] = (uint8_t)(key >> 8), b[len + 3] = (uint8_t)key;
      len += 4;
    }
    if (greflags & 0x1000) len += 4;
  }
  len += 40; /* some payload */
  b[2] = (uint8_t)(len >> 8);
  b[3] = (uint8_t)len;
  return len;
}

#define N(arr) ((int)(sizeof(arr) / sizeof(arr)[0]))

static void expect(const char *name, const struct tunctl_entry *e, int n, const uint8_t *pkt, size_t len, int ifindex,
                   int want, int want_why) {
  struct tunctl_table tab = {e, n};
  int why = -1;
  int got = tunctl_select(&tab, pkt, len, ifindex, &why);
  ncases++;
  if (got != want || (want_why >= 0 && why != want_why)) {
    nfailed++;
    printf("not ok %s: selected %d (why %d), want %d (why %d)\n", name, got, why, want, want_why);
  } else {
    printf("ok %s\n", name);
  }
}

#define L "192.0.2.1"
#define R "198.51.100.2"
#define R2 "198.51.100.3"
#define L2 "192.0.2.9"
#define OTHER "203.0.113.7"

int main(void) {
  uint8_t b[128];
  size_t n;
  const int IPIP = TM_IPIP, GRE = TM_GRE, SIT = TM_SIT, ISATAP = TM_ISATAP;

  /* ---- ip_tunnel_lookup: the four passes, most specific first, whatever the creation order ---- */
  {
    struct tunctl_entry e[] = {T(IPIP, NULL, NULL, -1, 0, 1), T(IPIP, L, NULL, -1, 0, 1), T(IPIP, NULL, R, -1, 0, 1),
                               T(IPIP, L, R, -1, 0, 1)};
    n = P(b, 4, R, L, 0, 0);
    expect("ip_tunnel pass 1: local and remote exact win", e, N(e), b, n, 2, 3, SEL_OK);
    expect("ip_tunnel pass 2: remote exact, local any", e, 3, b, n, 2, 2, SEL_OK);
    n = P(b, 4, OTHER, L, 0, 0);
    expect("ip_tunnel pass 3: local exact, remote any", e, N(e), b, n, 2, 1, SEL_OK);
    n = P(b, 4, OTHER, L2, 0, 0);
    expect("ip_tunnel pass 4: wildcard takes the rest", e, N(e), b, n, 2, 0, SEL_OK);
    struct tunctl_entry rev[] = {T(IPIP, L, R, -1, 0, 1), T(IPIP, NULL, R, -1, 0, 1), T(IPIP, L, NULL, -1, 0, 1),
                                 T(IPIP, NULL, NULL, -1, 0, 1)};
    n = P(b, 4, R, L, 0, 0);
    expect("ip_tunnel pass 1 wins in reverse creation order too", rev, N(rev), b, n, 2, 0, SEL_OK);
  }
  /* the symptom of issue #6: ipip with a fixed remote beside ipip remote any on one local address */
  {
    struct tunctl_entry e[] = {T(IPIP, L, R, -1, 0, 1), T(IPIP, L, NULL, -1, 0, 1)};
    n = P(b, 4, R, L, 0, 0);
    expect("ipip fixed remote takes its remote's packets, not remote any", e, N(e), b, n, 2, 0, SEL_OK);
    n = P(b, 4, R2, L, 0, 0);
    expect("ipip remote any takes the other sources", e, N(e), b, n, 2, 1, SEL_OK);
    n = P(b, 4, R, L2, 0, 0);
    expect("ipip: another local address → no tunnel", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
  }
  /* IFF_UP */
  {
    struct tunctl_entry e[] = {T(IPIP, L, R, -1, 0, 0), T(IPIP, L, NULL, -1, 0, 1)};
    n = P(b, 4, R, L, 0, 0);
    expect("ip_tunnel: a down tunnel is skipped, the next pass takes it", e, N(e), b, n, 2, 1, SEL_OK);
    e[1].up = 0;
    expect("ip_tunnel: all down → no tunnel", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
  }
  /* link preference */
  {
    struct tunctl_entry e[] = {T(IPIP, L, R, -1, 7, 1), T(IPIP, L, R, -1, 2, 1), T(IPIP, L, R, -1, 0, 1)};
    n = P(b, 4, R, L, 0, 0);
    expect("ip_tunnel pass 1: the tunnel on the receiving link wins", e, N(e), b, n, 2, 1, SEL_OK);
    expect("ip_tunnel pass 1: no link matches → the last walked (the oldest)", e, N(e), b, n, 9, 0, SEL_OK);
    struct tunctl_entry f[] = {T(IPIP, NULL, R, -1, 7, 1), T(IPIP, NULL, R, -1, 0, 1)};
    expect("ip_tunnel pass 2: no link matches → the first walked (the newest)", f, N(f), b, n, 9, 1, SEL_OK);
    struct tunctl_entry g[] = {T(IPIP, L, R, -1, 7, 1), T(IPIP, L, NULL, -1, 2, 1)};
    expect("ip_tunnel: a link match in a later pass beats an earlier pass's candidate", g, N(g), b, n, 2, 1, SEL_OK);
    expect("ip_tunnel: without a link match the earlier pass's candidate stays", g, N(g), b, n, 3, 0, SEL_OK);
    struct tunctl_entry h[] = {T(IPIP, NULL, NULL, -1, 5, 1), T(IPIP, L, NULL, -1, 7, 1)};
    n = P(b, 4, OTHER, L, 0, 0);
    expect("ip_tunnel: wildcard on the receiving link beats local-only elsewhere", h, N(h), b, n, 5, 0, SEL_OK);
    expect("ip_tunnel: link is a preference, not a requirement", h, N(h), b, n, 9, 1, SEL_OK);
  }
  /* the fallback device (tunl0 / gre0) */
  {
    struct tunctl_entry e[] = {FB(GRE, 1), T(GRE, L, R, 5, 0, 1)};
    n = P(b, 47, R, L, 0x2000, 6);
    expect("ip_tunnel: fallback device up takes what no tunnel matches", e, N(e), b, n, 2, 0, SEL_OK);
    e[0].up = 0;
    expect("ip_tunnel: fallback device down → no tunnel", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
    n = P(b, 47, R, L, 0x2000, 5);
    expect("ip_tunnel: a matching tunnel beats the fallback device", e, N(e), b, n, 2, 1, SEL_OK);
    struct tunctl_entry f[] = {FB(IPIP, 1), T(IPIP, L, R, -1, 0, 1)};
    n = P(b, 4, OTHER, L2, 0, 0);
    expect("ipip: tunl0 up takes unmatched packets (pass 4: it is a wildcard tunnel)", f, N(f), b, n, 2, 0, SEL_OK);
  }
  /* GRE keys: ip_tunnel_key_match */
  {
    struct tunctl_entry e[] = {T(GRE, L, R, -1, 0, 1), T(GRE, L, R, 5, 0, 1), T(GRE, L, R, 6, 0, 1)};
    n = P(b, 47, R, L, 0x2000, 5);
    expect("gre: a keyed packet goes to the tunnel with its key", e, N(e), b, n, 2, 1, SEL_OK);
    n = P(b, 47, R, L, 0x2000, 6);
    expect("gre: key 6 → the key-6 tunnel", e, N(e), b, n, 2, 2, SEL_OK);
    n = P(b, 47, R, L, 0, 0);
    expect("gre: an unkeyed packet goes to the unkeyed tunnel", e, N(e), b, n, 2, 0, SEL_OK);
    n = P(b, 47, R, L, 0x2000, 7);
    expect("gre: an unknown key → no tunnel (no unkeyed fall-through)", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
    n = P(b, 47, R, L, 0xa000, 6);
    expect("gre: the key after a checksum is read at offset 8", e, N(e), b, n, 2, 2, SEL_OK);
    n = P(b, 47, R, L, 0xb000, 5);
    expect("gre: checksum and sequence flags do not change the choice", e, N(e), b, n, 2, 1, SEL_OK);
    struct tunctl_entry k0[] = {T(GRE, L, R, 0, 0, 1)};
    n = P(b, 47, R, L, 0, 0);
    expect("gre pass 1: a tunnel with key 0 does not take unkeyed packets (TUNNEL_KEY flag)", k0, N(k0), b, n, 2,
           TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
    struct tunctl_entry w[] = {T(GRE, NULL, NULL, -1, 0, 1)};
    n = P(b, 47, R, L, 0x2000, 0);
    expect("gre pass 4: the wildcard compares key values only: key 0 reaches an unkeyed tunnel", w, N(w), b, n, 2, 0,
           SEL_OK);
    n = P(b, 47, R, L, 0x2000, 3);
    expect("gre pass 4: key 3 does not reach an unkeyed wildcard", w, N(w), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
    struct tunctl_entry wk[] = {T(GRE, NULL, NULL, 0, 0, 1)};
    n = P(b, 47, R, L, 0, 0);
    expect("gre pass 4: a wildcard with key 0 takes unkeyed packets", wk, N(wk), b, n, 2, 0, SEL_OK);
    struct tunctl_entry lk[] = {T(GRE, L, NULL, 9, 0, 1), T(GRE, NULL, R, -1, 0, 1)};
    n = P(b, 47, R, L, 0x2000, 9);
    expect("gre: key mismatch skips a more specific pass (remote-only unkeyed vs local-only key 9)", lk, N(lk), b, n,
           2, 0, SEL_OK);
  }
  /* multicast remote (pass 3) */
  {
    struct tunctl_entry e[] = {T(GRE, L, "239.1.2.3", -1, 0, 1), T(GRE, L, NULL, -1, 0, 1)};
    n = P(b, 47, OTHER, "239.1.2.3", 0, 0);
    expect("gre pass 3: a multicast remote takes packets sent to the group", e, N(e), b, n, 2, 0, SEL_OK);
    n = P(b, 47, "239.1.2.3", L, 0, 0);
    expect("gre: a multicast remote is not a source", e, N(e), b, n, 2, 1, SEL_OK);
  }
  /* protocol 4: ipip.c's handler before sit.c's (tunnel4.c priorities 1 and 2) */
  {
    struct tunctl_entry e[] = {T(SIT, L, R, -1, 0, 1), T(IPIP, L, NULL, -1, 0, 1)};
    n = P(b, 4, R, L, 0, 0);
    expect("protocol 4: an ipip tunnel (even less specific) before any sit tunnel", e, N(e), b, n, 2, 1, SEL_OK);
    e[1].up = 0;
    expect("protocol 4: ipip finds none → sit's handler", e, N(e), b, n, 2, 0, SEL_OK);
    struct tunctl_entry s[] = {T(SIT, L, R, -1, 0, 1)};
    expect("protocol 4 without ipip tunnels → sit", s, N(s), b, n, 2, 0, SEL_OK);
    struct tunctl_entry g[] = {T(GRE, L, R, -1, 0, 1)};
    expect("protocol 4 with only gre tunnels → no handler", g, N(g), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_HANDLER);
    n = P(b, 41, R, L, 0, 0);
    expect("protocol 41 → sit, never ipip", e, N(e), b, n, 2, 0, SEL_OK);
    expect("protocol 41 with only gre tunnels → no handler", g, N(g), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_HANDLER);
    n = P(b, 17, R, L, 0, 0);
    expect("protocol 17 → no handler", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_HANDLER);
  }
  /* ---- ipip6_tunnel_lookup (sit, isatap) ---- */
  {
    /* the symptom of issue #6: sit and isatap on one local address */
    struct tunctl_entry e[] = {T(SIT, L, R, -1, 0, 1), T(ISATAP, L, NULL, -1, 0, 1)};
    n = P(b, 41, R, L, 0, 0);
    expect("sit: local and remote exact (tunnels_r_l) before isatap (tunnels_l)", e, N(e), b, n, 2, 0, SEL_OK);
    n = P(b, 41, R2, L, 0, 0);
    expect("isatap takes the other sources to its local", e, N(e), b, n, 2, 1, SEL_OK);
    struct tunctl_entry f[] = {T(ISATAP, L, NULL, -1, 0, 1), T(SIT, NULL, R, -1, 0, 1), T(SIT, NULL, NULL, -1, 0, 1)};
    n = P(b, 41, R, L, 0, 0);
    expect("sit: remote only (tunnels_r) before local only (tunnels_l)", f, N(f), b, n, 2, 1, SEL_OK);
    n = P(b, 41, OTHER, L2, 0, 0);
    expect("sit: wildcard (tunnels_wc) takes the rest", f, N(f), b, n, 2, 2, SEL_OK);
    f[0].up = 0;
    n = P(b, 41, OTHER, L, 0, 0);
    expect("sit: a down tunnel is skipped", f, N(f), b, n, 2, 2, SEL_OK);
  }
  {
    /* link is strict for sit */
    struct tunctl_entry e[] = {T(SIT, L, NULL, -1, 0, 1), T(SIT, L, R, -1, 5, 1)};
    n = P(b, 41, R, L, 0, 0);
    expect("sit: a tunnel bound to the receiving link is taken", e, N(e), b, n, 5, 1, SEL_OK);
    expect("sit: a tunnel bound to another link is not a candidate (strict link)", e, N(e), b, n, 3, 0, SEL_OK);
    struct tunctl_entry s[] = {T(SIT, L, R, -1, 5, 1)};
    expect("sit: bound elsewhere and nothing else → no tunnel", s, N(s), b, n, 3, TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
    struct tunctl_entry nf[] = {T(SIT, L, NULL, -1, 0, 1), T(SIT, L, NULL, -1, 4, 1)};
    n = P(b, 41, OTHER, L, 0, 0);
    expect("sit: first match wins, newest first", nf, N(nf), b, n, 4, 1, SEL_OK);
    expect("sit: the newest is skipped off its link, the older unbound one is taken", nf, N(nf), b, n, 3, 0, SEL_OK);
  }
  {
    /* tunnels_wc[0]: only its head */
    struct tunctl_entry e[] = {FB(SIT, 1), T(SIT, NULL, NULL, -1, 3, 0)};
    n = P(b, 41, OTHER, L, 0, 0);
    expect("sit: only the newest wildcard is looked at: down → no tunnel, sit0 not tried", e, N(e), b, n, 2,
           TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
    e[1].up = 1;
    expect("sit: the newest wildcard is taken whatever its link", e, N(e), b, n, 2, 1, SEL_OK);
    struct tunctl_entry f[] = {FB(SIT, 1)};
    expect("sit: sit0 up takes unmatched packets", f, N(f), b, n, 2, 0, SEL_OK);
    f[0].up = 0;
    expect("sit: sit0 down → no tunnel", f, N(f), b, n, 2, TUNCTL_SEL_NONE, SEL_NO_TUNNEL);
  }
  /* ---- malformed outer packets ---- */
  {
    struct tunctl_entry e[] = {T(GRE, NULL, NULL, -1, 0, 1), T(IPIP, NULL, NULL, -1, 0, 1)};
    n = P(b, 47, R, L, 0x2000, 5);
    expect("short: 19 bytes", e, N(e), b, 19, 2, TUNCTL_SEL_NONE, SEL_MALFORMED);
    expect("gre: key announced but cut off", e, N(e), b, 26, 2, TUNCTL_SEL_NONE, SEL_MALFORMED);
    b[2] = 0, b[3] = 26; /* total length says so too */
    expect("gre: total length ends inside the key", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_MALFORMED);
    n = P(b, 4, R, L, 0, 0);
    b[0] = 0x65;
    expect("not IPv4", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_MALFORMED);
    b[0] = 0x44;
    expect("ihl below 5", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_MALFORMED);
    b[0] = 0x45, b[2] = 0xff;
    expect("total length beyond the packet", e, N(e), b, n, 2, TUNCTL_SEL_NONE, SEL_MALFORMED);
    struct tunctl_table empty = {NULL, 0};
    n = P(b, 4, R, L, 0, 0);
    ncases++;
    if (tunctl_select(&empty, b, n, 2, NULL) != TUNCTL_SEL_NONE) nfailed++, printf("not ok empty table\n");
    else printf("ok empty table → none (why may be NULL)\n");
  }
  return summary();
}
