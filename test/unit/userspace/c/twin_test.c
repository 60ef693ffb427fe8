/* Unit tests of the kernel twin's pure modules: native/pmtu.c (route exceptions: __ip_rt_update_pmtu, expiry,
 * min_pmtu; tnl_update_pmtu / ipip6_tunnel_xmit; __ip_select_ident) and
 * native/icmperr.c (ipip_err, gre_err / ipgre_err, ipip6_err, err_count / IPTUNNEL_ERR_TIMEO, dst_link_failure).
 * Built and run by test/unit/userspace/twin.test.ts; prints `ok NAME` / `not ok NAME: ...` per case. */
#include "icmperr.h"
#include "harness.h"
#include "pmtu.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>


static struct tunctl_entry T(int mode, const char *local, const char *remote, long key, int link) {
  struct tunctl_entry e;
  memset(&e, 0, sizeof e);
  tunctl_cfg_init(&e.cfg);
  e.cfg.mode = mode;
  e.cfg.local = ip4(local);
  e.cfg.remote = ip4(remote);
  if (key >= 0) e.cfg.has_ikey = e.cfg.has_okey = 1, e.cfg.ikey = e.cfg.okey = (uint32_t)key;
  e.link = link;
  e.up = 1;
  return e;
}
static void wr16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static void ipv4(uint8_t *h, int proto, const char *src, const char *dst, size_t tot, int df) {
  memset(h, 0, 20);
  h[0] = 0x45;
  wr16(h + 2, (unsigned)tot);
  if (df) h[6] = 0x40;
  h[8] = 64;
  h[9] = (uint8_t)proto;
  uint32_t s = ip4(src), d = ip4(dst);
  memcpy(h + 12, &s, 4);
  memcpy(h + 16, &d, 4);
  wr16(h + 10, tunctl_csum(h, 20, 0));
}
/* an inner IPv6 packet (UDP) of 48 bytes at p */
static void ipv6(uint8_t *p, const char *src, const char *dst, int nh) {
  memset(p, 0, 48);
  p[0] = 0x60;
  wr16(p + 4, 8);
  p[6] = (uint8_t)nh;
  p[7] = 64;
  inet_pton(AF_INET6, src, p + 8);
  inet_pton(AF_INET6, dst, p + 24);
}

/* An ICMP error from `router` to our `local` about our outer packet local → remote of protocol proto, quoting
 * the outer header, `greh` (GRE header, glen bytes) and `inner` (ilen bytes). Returns the packet's length. */
static size_t icmp(uint8_t *b, const char *router, int type, int code, unsigned mtu, int proto, const char *local,
                   const char *remote, const uint8_t *greh, size_t glen, const uint8_t *inner, size_t ilen) {
  size_t qlen = 20 + glen + ilen, tot = 28 + qlen;
  ipv4(b, 1, router, local, tot, 0);
  uint8_t *ic = b + 20;
  memset(ic, 0, 8);
  ic[0] = (uint8_t)type;
  ic[1] = (uint8_t)code;
  wr16(ic + 6, mtu);
  ipv4(ic + 8, proto, local, remote, 20 + glen + ilen + 100 /* the original was longer */, 1);
  if (glen) memcpy(ic + 28, greh, glen);
  memcpy(ic + 28 + glen, inner, ilen);
  wr16(ic + 2, tunctl_csum(ic, 8 + qlen, 0));
  return tot;
}

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define L "192.0.2.1"
#define R "192.0.2.2"
#define RT "198.51.100.254"

static int action(struct tunctl_entry *e, int n, const uint8_t *b, size_t len, struct tunctl_icmperr *res,
                  uint8_t *out, size_t *olen) {
  struct tunctl_table tab = {e, n};
  return tunctl_icmperr(&tab, b, len, 2, res, out, olen);
}

static void test_pmtu(void) {
  struct tunctl_pmtu p;
  tunctl_pmtu_init(&p);
  uint32_t d = ip4(R), d2 = ip4("192.0.2.3");
  int locked;
  EXPECT("pmtu: nothing learnt → the route's MTU", tunctl_pmtu_get(&p, d, 1500, 0, NULL) == 1500, "got %d",
        tunctl_pmtu_get(&p, d, 1500, 0, NULL));
  EXPECT("pmtu: frag needed 1300 is learnt", tunctl_pmtu_update(&p, d, 1300, 1500, 1000) == 1 &&
                                                tunctl_pmtu_get(&p, d, 1500, 1000, &locked) == 1300 && !locked,
        "mtu %d", tunctl_pmtu_get(&p, d, 1500, 1000, NULL));
  EXPECT("pmtu: per destination", tunctl_pmtu_get(&p, d2, 1500, 1000, NULL) == 1500, "other dst");
  EXPECT("pmtu: a larger MTU is ignored (old_mtu < mtu)", tunctl_pmtu_update(&p, d, 1400, 1500, 2000) == 0 &&
                                                             tunctl_pmtu_get(&p, d, 1500, 2000, NULL) == 1300,
        "mtu %d", tunctl_pmtu_get(&p, d, 1500, 2000, NULL));
  EXPECT("pmtu: the same MTU within half the lifetime is not refreshed", tunctl_pmtu_update(&p, d, 1300, 1500, 3000) == 0,
        "refreshed");
  EXPECT("pmtu: the same MTU after half the lifetime is refreshed",
        tunctl_pmtu_update(&p, d, 1300, 1500, 1000 + 300001) == 1 && p.e[0].expires == 1000 + 300001 + 600000,
        "expires %llu", (unsigned long long)p.e[0].expires);
  EXPECT("pmtu: a smaller MTU lowers it", tunctl_pmtu_update(&p, d, 1200, 1500, 400000) == 1 &&
                                             tunctl_pmtu_get(&p, d, 1500, 400000, NULL) == 1200,
        "mtu");
  EXPECT("pmtu: still valid 1 ms before ip_rt_mtu_expires (600 s)",
        tunctl_pmtu_get(&p, d, 1500, 400000 + 599999, NULL) == 1200, "expired early");
  EXPECT("pmtu: expired after 600 s → the route's MTU again", tunctl_pmtu_get(&p, d, 1500, 400000 + 600000, NULL) == 1500,
        "not expired");
  EXPECT("pmtu: the expired entry was removed", p.e[0].dst == 0 && p.e[1].dst == 0, "slot kept");
  EXPECT("pmtu: below min_pmtu 552 → 552, locked",
        tunctl_pmtu_update(&p, d, 500, 1500, 0) == 1 && tunctl_pmtu_get(&p, d, 1500, 0, &locked) == 552 && locked,
        "mtu %d locked %d", tunctl_pmtu_get(&p, d, 1500, 0, NULL), locked);
  tunctl_pmtu_init(&p);
  EXPECT("pmtu: below min_pmtu with a route MTU already below it keeps the route's (min(old_mtu, min_pmtu))",
        tunctl_pmtu_update(&p, d, 300, 500, 0) == 1 && tunctl_pmtu_get(&p, d, 500, 0, &locked) == 500 && locked, "mtu %d",
        tunctl_pmtu_get(&p, d, 500, 0, NULL));
  EXPECT("pmtu: an MTU of 0 (pre-RFC 1191 router) locks at 552", tunctl_pmtu_update(&p, d2, 0, 1500, 0) == 1 &&
                                                                     tunctl_pmtu_get(&p, d2, 1500, 0, &locked) == 552 && locked,
        "mtu");
  EXPECT("pmtu: the route's MTU when smaller than the learnt one", tunctl_pmtu_get(&p, d2, 400, 0, NULL) == 400, "mtu");
  tunctl_pmtu_init(&p);
  for (int i = 0; i < TUNCTL_PMTU_SLOTS + 1; i++) tunctl_pmtu_update(&p, htonl(0xc0000200u + (uint32_t)i + 1), 1400, 1500, (uint64_t)i);
  EXPECT("pmtu: a full table replaces the entry closest to expiry",
        tunctl_pmtu_get(&p, htonl(0xc0000201u), 1500, 100, NULL) == 1500 &&
            tunctl_pmtu_get(&p, htonl(0xc0000202u), 1500, 100, NULL) == 1400 &&
            tunctl_pmtu_get(&p, htonl(0xc0000200u + TUNCTL_PMTU_SLOTS + 1), 1500, 100, NULL) == 1400,
        "eviction");
  EXPECT("pmtu: destination 0 is never learnt", tunctl_pmtu_update(&p, 0, 1000, 1500, 0) == 0, "learnt");
}

static void test_tnl_check(void) {
  uint8_t in[1500];
  int clr;
  ipv4(in, 17, "10.0.0.1", "10.0.0.2", 1400, 1);
  EXPECT("tnl_update_pmtu: IPv4 DF 1400 over path 1300 gre (hlen 4) → frag needed 1276",
        tunctl_tnl_pmtu_check(0, 4, 1, in, 1400, 1300, 1476, &clr) == 1276 && !clr, "got %d",
        tunctl_tnl_pmtu_check(0, 4, 1, in, 1400, 1300, 1476, &clr));
  EXPECT("tnl_update_pmtu: ipip (hlen 0) → 1280", tunctl_tnl_pmtu_check(0, 0, 1, in, 1400, 1300, 1480, &clr) == 1280, "got");
  EXPECT("tnl_update_pmtu: fits exactly → sent", tunctl_tnl_pmtu_check(0, 0, 1, in, 1400, 1420, 1480, &clr) == 0, "refused");
  in[6] = 0;
  EXPECT("tnl_update_pmtu: IPv4 without DF is sent (fragmented outside)", tunctl_tnl_pmtu_check(0, 4, 1, in, 1400, 1300, 1476, &clr) == 0,
        "refused");
  EXPECT("tnl_update_pmtu: no outer DF → the device MTU is the limit", tunctl_tnl_pmtu_check(0, 4, 0, in, 1400, 1300, 1476, &clr) == 0,
        "refused");
  ipv6(in, "2001:db8::1", "2001:db8::2", 17);
  EXPECT("tnl_update_pmtu: IPv6 1450 over path 1400 gre → packet too big 1376",
        tunctl_tnl_pmtu_check(0, 4, 1, in, 1450, 1400, 1476, &clr) == 1376, "got");
  EXPECT("tnl_update_pmtu: IPv6 with the tunnel MTU below 1280 (path 1300, gre: 1276) → sent, no ICMP",
        tunctl_tnl_pmtu_check(0, 4, 1, in, 1400, 1300, 1476, &clr) == 0, "refused");
  EXPECT("ipip6_tunnel_xmit: sit IPv6 1400 over path 1300 → packet too big 1280",
        tunctl_tnl_pmtu_check(1, 0, 1, in, 1400, 1300, 1480, &clr) == 1280 && !clr, "got");
  EXPECT("ipip6_tunnel_xmit: path 1000 → 1280, sent without DF",
        tunctl_tnl_pmtu_check(1, 0, 1, in, 1280, 1000, 1480, &clr) == 0 && clr, "got");
  EXPECT("ipip6_tunnel_xmit: path 1000, 1300 bytes → packet too big 1280",
        tunctl_tnl_pmtu_check(1, 0, 1, in, 1300, 1000, 1480, &clr) == 1280 && clr, "got");
  EXPECT("ipip6_tunnel_xmit: path below 88 (mtu < 68) → dropped", tunctl_tnl_pmtu_check(1, 0, 1, in, 100, 80, 1480, &clr) == -1,
        "got");
  EXPECT("ipip6_tunnel_xmit: nopmtudisc → no check", tunctl_tnl_pmtu_check(1, 0, 0, in, 1400, 1000, 1480, &clr) == 0, "got");
}

static void test_ident(void) {
  struct tunctl_ident s;
  memset(&s, 0, sizeof s);
  s.key = 12345;
  uint16_t a = tunctl_ident_next(&s, ip4(R), ip4(L), 47, 0, 0x80000000u);
  uint16_t b = tunctl_ident_next(&s, ip4(R), ip4(L), 47, 0, 0x80000000u);
  EXPECT("ident: same ms → consecutive", (uint16_t)(b - a) == 1, "%u %u", a, b);
  uint16_t c = tunctl_ident_next(&s, ip4(R), ip4(L), 47, 1000, 0x80000000u);
  EXPECT("ident: after 1000 ms idle → advanced by a random amount below 1000 (here 500)", (uint16_t)(c - b) == 501,
        "%u %u", b, c);
  uint16_t d = tunctl_ident_next(&s, ip4(R), ip4(L), 47, 1000, 0);
  EXPECT("ident: then consecutive again", (uint16_t)(d - c) == 1, "%u %u", c, d);
  int same = 0;
  struct tunctl_ident s2;
  memset(&s2, 0, sizeof s2);
  s2.key = 1;
  for (uint32_t i = 0; i < 64; i++)
    if ((tunctl_ident_next(&s2, htonl(0xc0000200u + i), ip4(L), 47, 0, 0) % TUNCTL_IDENT_SLOTS) == 0) same++;
  EXPECT("ident: destinations spread over buckets", same < 64, "all in one bucket");
  uint8_t o[20];
  ipv4(o, 47, L, R, 100, 1);
  tunctl_outer_fixup(o, 0x1234, 1);
  EXPECT("outer fixup: id, DF cleared, checksum valid", o[4] == 0x12 && o[5] == 0x34 && !(o[6] & 0x40) && tunctl_csum(o, 20, 0) == 0,
        "header");
}

static void test_icmperr(void) {
  uint8_t b[2048], out[2048], in4[64], in6[48], gre[16];
  size_t n, olen;
  struct tunctl_icmperr r;
  ipv4(in4, 1, "10.0.0.1", "10.0.0.2", 64, 1);
  ipv6(in6, "2001:db8:1::1", "2001:db8:2::1", 17);
  /* ---- ipip_err ---- */
  {
    struct tunctl_entry e[] = {T(TM_IPIP, L, R, -1, 0), T(TM_IPIP, L, NULL, -1, 0)};
    n = icmp(b, RT, 3, 1, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("ipip_err: host unreachable → err_count of the tunnel with that remote",
          action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT && r.tunnel == 0, "action %d tunnel %d", r.action, r.tunnel);
    n = icmp(b, RT, 3, 4, 1300, 4, L, R, NULL, 0, in4, 28);
    EXPECT("ipip_err: frag needed → path MTU of the remote", action(e, N(e), b, n, &r, out, &olen) == IEA_PMTU &&
                                                               r.mtu == 1300 && r.dst == ip4(R) && r.tunnel == 0,
          "action %d mtu %d", r.action, r.mtu);
    n = icmp(b, RT, 3, 1, 0, 4, L, "192.0.2.7", NULL, 0, in4, 28);
    EXPECT("ipip_err: the remote-any tunnel found → -ENOENT, nothing", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE &&
                                                                          r.tunnel == -1,
          "action %d", r.action);
    n = icmp(b, RT, 3, 4, 1300, 4, L, "192.0.2.7", NULL, 0, in4, 28);
    EXPECT("ipip_err: frag needed through a remote-any tunnel → path MTU", action(e, N(e), b, n, &r, out, &olen) == IEA_PMTU,
          "action %d", r.action);
    n = icmp(b, RT, 11, 0, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("ipip_err: time exceeded with ttl inherit → ignored", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action %d",
          r.action);
    e[0].cfg.ttl = 64;
    EXPECT("ipip_err: time exceeded with a fixed ttl → err_count", action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT,
          "action %d", r.action);
    n = icmp(b, RT, 11, 1, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("ipip_err: time exceeded in reassembly → ignored", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action");
    n = icmp(b, RT, 3, 5, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("ipip_err: source route failed → ignored", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action");
    n = icmp(b, RT, 3, 3, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("ipip_err: port unreachable → err_count (only gre ignores it)", action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT,
          "action %d", r.action);
    n = icmp(b, RT, 12, 0, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("ipip_err: parameter problem → ignored", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action");
    n = icmp(b, RT, 5, 1, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("ipip_err: redirect → the host kernel's", action(e, N(e), b, n, &r, out, &olen) == IEA_REDIRECT, "action");
    n = icmp(b, RT, 3, 1, 0, 4, "192.0.2.9", R, NULL, 0, in4, 28);
    EXPECT("ipip_err: another local address → no tunnel", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action");
    n = icmp(b, RT, 3, 1, 0, 4, L, R, NULL, 0, in4, 28);
    b[20 + 2] ^= 1;
    EXPECT("icmp_rcv: bad ICMP checksum → ignored", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action");
    n = icmp(b, RT, 3, 1, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("icmp_unreach: quote shorter than the header + 8 → ignored", action(e, N(e), b, 20 + 8 + 27, &r, out, &olen) == IEA_NONE,
          "action");
    n = icmp(b, RT, 3, 16, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("icmp_unreach: code above NR_ICMP_UNREACH → ignored", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action");
  }
  /* ---- tunnel4: ipip first, then sit ---- */
  {
    struct tunctl_entry e[] = {T(TM_IPIP, L, NULL, -1, 0), T(TM_SIT, L, R, -1, 0)};
    n = icmp(b, RT, 3, 1, 0, 4, L, R, NULL, 0, in4, 28);
    EXPECT("tunnel4_err: ipip's lookup finds remote-any → -ENOENT → sit's ipip6_err counts on the sit tunnel",
          action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT && r.tunnel == 1, "action %d tunnel %d", r.action, r.tunnel);
    struct tunctl_entry f[] = {T(TM_IPIP, L, R, -1, 0), T(TM_SIT, L, R, -1, 0)};
    EXPECT("tunnel4_err: ipip's tunnel wins", action(f, N(f), b, n, &r, out, &olen) == IEA_ERR_COUNT && r.tunnel == 0, "tunnel %d",
          r.tunnel);
  }
  /* ---- gre ---- */
  {
    struct tunctl_entry e[] = {T(TM_GRE, L, R, -1, 0), T(TM_GRE, L, R, 5, 0), T(TM_GRE, L, "239.1.1.1", -1, 0),
                               T(TM_GRE, L, NULL, 7, 0)};
    memset(gre, 0, sizeof gre);
    wr16(gre + 2, 0x0800);
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 4, in4, 28);
    EXPECT("ipgre_err: unkeyed → the unkeyed tunnel", action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT && r.tunnel == 0,
          "action %d tunnel %d", r.action, r.tunnel);
    wr16(gre, 0x2000);
    gre[7] = 5;
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 8, in4, 28);
    EXPECT("ipgre_err: key 5 → the keyed tunnel", action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT && r.tunnel == 1,
          "tunnel %d", r.tunnel);
    gre[7] = 6;
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 8, in4, 28);
    EXPECT("ipgre_err: unknown key → no tunnel", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE && r.tunnel == -1, "tunnel %d",
          r.tunnel);
    n = icmp(b, RT, 3, 4, 1200, 47, L, R, gre, 8, in4, 28);
    EXPECT("gre_err: frag needed → path MTU even when no tunnel matches", action(e, N(e), b, n, &r, out, &olen) == IEA_PMTU &&
                                                                              r.mtu == 1200,
          "action %d", r.action);
    gre[7] = 5;
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 6, in4, 0);
    EXPECT("gre_parse_header: the key cut off in the quote → ignored", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action");
    n = icmp(b, RT, 3, 3, 0, 47, L, R, gre, 8, in4, 28);
    EXPECT("ipgre_err: port unreachable → ignored", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action %d", r.action);
    wr16(gre, 0);
    n = icmp(b, RT, 3, 1, 0, 47, L, "239.1.1.1", gre, 4, in4, 28);
    EXPECT("ipgre_err: multicast remote → not found (pass 3 compares the quoted source with a multicast remote)",
          action(e, N(e), b, n, &r, out, &olen) == IEA_NONE && r.tunnel == -1,
          "action %d tunnel %d", r.action, r.tunnel);
    wr16(gre, 0x2000);
    gre[7] = 7;
    n = icmp(b, RT, 3, 1, 0, 47, L, "192.0.2.50", gre, 8, in4, 28);
    EXPECT("ipgre_err: remote any → not counted", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE && r.tunnel == 3, "action %d",
          r.action);
    wr16(gre, 0x0001);
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 4, in4, 28);
    EXPECT("gre_err: version 1 (PPTP) → not ip_gre's", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action");
    wr16(gre, 0x8000);
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 8, in4, 28);
    EXPECT("gre_parse_header: the quoted checksum is not verified", action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT && r.tunnel == 0,
          "action %d", r.action);
    wr16(gre, 0);
    wr16(gre + 2, 0x86dd);
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 4, in6, 48);
    EXPECT("ipgre_err: IPv6 payload → ip6_err_gen_icmpv6_unreach, whose ::ffff:router source cannot be routed to a "
          "plain IPv6 sender (ip6_dst_lookup_tail): nothing, not counted",
          action(e, N(e), b, n, &r, out, &olen) == IEA_NONE && r.tunnel == 0 && olen == 0, "action %d len %zu", r.action, olen);
    uint8_t m6[48];
    ipv6(m6, "::ffff:10.0.0.1", "2001:db8:2::1", 17);
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 4, m6, 48);
    EXPECT("ipgre_err: a v4-mapped inner source gets ICMPv6 address unreachable from ::ffff:router",
          action(e, N(e), b, n, &r, out, &olen) == IEA_ICMPV6 && olen == 40 + 8 + 48 && out[40] == 1 && out[41] == 3 &&
              out[6] == 58 && !memcmp(out + 24, m6 + 8, 16) && out[18] == 0xff && out[19] == 0xff && out[20] == 198 &&
              !memcmp(out + 48, m6, 48),
          "action %d len %zu", r.action, olen);
    n = icmp(b, RT, 3, 1, 0, 47, L, R, gre, 4, in6, 47);
    EXPECT("ipgre_err: IPv6 quote too short → err_count", action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT, "action %d",
          r.action);
    struct tunctl_entry none[] = {T(TM_IPIP, L, R, -1, 0)};
    n = icmp(b, RT, 3, 4, 1200, 47, L, R, gre, 4, in4, 28);
    EXPECT("gre: no gre tunnel → no handler", action(none, 1, b, n, &r, out, &olen) == IEA_NONE, "action");
  }
  /* ---- ipip6_err ---- */
  {
    struct tunctl_entry e[] = {T(TM_SIT, L, R, -1, 0), T(TM_ISATAP, L, NULL, -1, 0)};
    n = icmp(b, RT, 3, 1, 0, 41, L, R, NULL, 0, in6, 48);
    EXPECT("ipip6_err: a plain IPv6 sender hears nothing (the relay's source cannot be routed), not counted",
          action(e, N(e), b, n, &r, out, &olen) == IEA_NONE && r.tunnel == 0, "action %d", r.action);
    uint8_t m6[48];
    ipv6(m6, "::ffff:10.0.0.1", "2001:db8:2::1", 17);
    n = icmp(b, RT, 3, 1, 0, 41, L, R, NULL, 0, m6, 48);
    EXPECT("ipip6_err: → ICMPv6 to a v4-mapped inner sender from ::ffff:router", action(e, N(e), b, n, &r, out, &olen) == IEA_ICMPV6 &&
                                                                            r.tunnel == 0 && out[40] == 1 && out[41] == 3,
          "action %d", r.action);
    n = icmp(b, RT, 11, 0, 0, 41, L, R, NULL, 0, m6, 48);
    EXPECT("ipip6_err: time exceeded → ICMPv6 time exceeded (hop limit)", action(e, N(e), b, n, &r, out, &olen) == IEA_ICMPV6 &&
                                                                            out[40] == 3 && out[41] == 0,
          "action %d", r.action);
    n = icmp(b, RT, 3, 1, 0, 41, L, R, NULL, 0, in6, 40);
    EXPECT("ipip6_err: short quote → err_count", action(e, N(e), b, n, &r, out, &olen) == IEA_ERR_COUNT, "action %d", r.action);
    n = icmp(b, RT, 3, 1, 0, 41, L, "192.0.2.44", NULL, 0, in6, 40);
    EXPECT("ipip6_err: isatap (remote any) → not counted", action(e, N(e), b, n, &r, out, &olen) == IEA_NONE && r.tunnel == 1,
          "action %d", r.action);
    n = icmp(b, RT, 3, 4, 1300, 41, L, R, NULL, 0, in6, 48);
    EXPECT("ipip6_err: frag needed → path MTU", action(e, N(e), b, n, &r, out, &olen) == IEA_PMTU && r.mtu == 1300, "action");
    e[0].link = 9;
    n = icmp(b, RT, 3, 1, 0, 41, L, R, NULL, 0, in6, 48);
    EXPECT("ipip6_err: a tunnel bound to another link is not found (strict link): the isatap one handles it",
          action(e, N(e), b, n, &r, out, &olen) == IEA_NONE && r.tunnel == 1, "action %d tunnel %d", r.action, r.tunnel);
    e[0].link = 0;
    uint8_t icmp6in[48];
    ipv6(icmp6in, "2001:db8:1::1", "2001:db8:2::1", 58);
    icmp6in[40] = 1;
    n = icmp(b, RT, 3, 1, 0, 41, L, R, NULL, 0, icmp6in, 48);
    EXPECT("icmp6_send declines an error about an ICMPv6 error: handled, not counted (the kernel's gen returns 0)",
          action(e, N(e), b, n, &r, out, &olen) == IEA_NONE && r.tunnel == 0 && olen == 0, "action %d", r.action);
    ipv6(icmp6in, "::", "ff02::16", 58);
    icmp6in[40] = 143; /* an MLD report from the unspecified address, as a tunnel sends when it comes up */
    n = icmp(b, RT, 3, 1, 0, 41, L, R, NULL, 0, icmp6in, 48);
    EXPECT("icmp6_send declines a quote from :: (MLD report at link up): not counted",
          action(e, N(e), b, n, &r, out, &olen) == IEA_NONE, "action %d", r.action);
  }
}

static void test_loop(void) {
  uint8_t o[40];
  struct tunctl_cfg c;
  tunctl_cfg_init(&c);
  c.mode = TM_GRE;
  c.local = ip4(L);
  c.remote = ip4(R);
  ipv4(o, 47, L, R, 40, 1);
  EXPECT("routing loop: our own gre packet back in the TUN device", tunctl_routing_loop(&c, o, 40) == 1, "not seen");
  ipv4(o, 47, L, "192.0.2.9", 40, 1);
  EXPECT("routing loop: another remote is nested traffic", tunctl_routing_loop(&c, o, 40) == 0, "loop");
  ipv4(o, 4, L, R, 40, 1);
  EXPECT("routing loop: another protocol", tunctl_routing_loop(&c, o, 40) == 0, "loop");
  c.mode = TM_SIT;
  EXPECT("routing loop: sit carrying IPv4 sends protocol 4", tunctl_routing_loop(&c, o, 40) == 1, "not seen");
  c.remote = 0;
  ipv4(o, 41, L, "192.0.2.77", 40, 1);
  EXPECT("routing loop: remote any, local set: any destination", tunctl_routing_loop(&c, o, 40) == 1, "not seen");
  c.local = 0;
  EXPECT("routing loop: local and remote any cannot tell", tunctl_routing_loop(&c, o, 40) == 0, "loop");
}

static void test_errstate(void) {
  struct tunctl_errstate s = {0, 0};
  EXPECT("err: nothing noted → no link failure", tunctl_err_xmit(&s, 0) == 0, "fired");
  tunctl_err_note(&s, 1000);
  tunctl_err_note(&s, 2000);
  EXPECT("err: two errors within 30 s → count 2", s.err_count == 2, "count %d", s.err_count);
  int fired = tunctl_err_xmit(&s, 3000) + tunctl_err_xmit(&s, 3001) + tunctl_err_xmit(&s, 3002);
  EXPECT("err: the next two transmits report a link failure, the third not", fired == 2 && s.err_count == 0, "fired %d", fired);
  tunctl_err_note(&s, 10000);
  tunctl_err_note(&s, 10000 + 30000);
  EXPECT("err: an error 30 s after the last restarts the count at 1", s.err_count == 1, "count %d", s.err_count);
  EXPECT("err: 30 s after the last error the count lapses", tunctl_err_xmit(&s, 40000 + 30000) == 0 && s.err_count == 0, "count %d",
        s.err_count);
  uint8_t in[600], out[1400];
  ipv4(in, 17, "10.0.0.1", "10.0.0.2", 600, 1);
  size_t n = tunctl_icmp_link_failure(in, 600, out);
  EXPECT("link failure IPv4: host unreachable quoting 548 bytes, to the inner source",
        n == 20 + 8 + 548 && out[20] == 3 && out[21] == 1 && !memcmp(out + 16, in + 12, 4) && tunctl_csum(out, 20, 0) == 0 &&
            tunctl_csum(out + 20, 8 + 548, 0) == 0,
        "len %zu", n);
  in[6] = 0x20, in[7] = 0x10;
  EXPECT("link failure IPv4: not for a later fragment", tunctl_icmp_link_failure(in, 600, out) == 0, "sent");
  ipv4(in, 1, "10.0.0.1", "10.0.0.2", 60, 1);
  in[20] = 3;
  EXPECT("link failure IPv4: not about an ICMP error", tunctl_icmp_link_failure(in, 60, out) == 0, "sent");
  in[20] = 8;
  EXPECT("link failure IPv4: about an echo request", tunctl_icmp_link_failure(in, 60, out) > 0, "not sent");
  ipv4(in, 17, "10.0.0.1", "224.0.0.5", 60, 1);
  EXPECT("link failure IPv4: not for multicast", tunctl_icmp_link_failure(in, 60, out) == 0, "sent");
  ipv6(in, "2001:db8:1::1", "2001:db8:2::1", 17);
  n = tunctl_icmp_link_failure(in, 48, out);
  EXPECT("link failure IPv6: address unreachable", n == 96 && out[40] == 1 && out[41] == 3 && !memcmp(out + 24, in + 8, 16), "len %zu",
        n);
  ipv6(in, "::", "2001:db8:2::1", 17);
  EXPECT("link failure IPv6: not from the unspecified address", tunctl_icmp_link_failure(in, 48, out) == 0, "sent");
}

int main(void) {
  test_pmtu();
  test_tnl_check();
  test_ident();
  test_icmperr();
  test_errstate();
  test_loop();
  return summary();
}
