/* Unit tests of native/unreach.c: the ICMP port unreachable Linux 6.1's tunnel receive handlers send for a packet
 * no tunnel takes (__icmp_send), and its rate limits (icmp_global_allow, inet_peer_xrlim_allow).
 * Built and run by test/unit/userspace/unreach.test.ts; prints `ok NAME` / `not ok NAME: ...` per case. */
#include "unreach.h"
#include "harness.h"
#include "tunctl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



/* an outer IPv4 packet src → dst of protocol proto, total length len (payload bytes i & 0xff) */
static size_t outer(uint8_t *p, const char *src, const char *dst, int proto, size_t len, uint8_t tos, uint16_t frag) {
  memset(p, 0, len);
  p[0] = 0x45, p[1] = tos, p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
  p[4] = 0x12, p[5] = 0x34, p[6] = (uint8_t)(frag >> 8), p[7] = (uint8_t)frag, p[8] = 61, p[9] = (uint8_t)proto;
  uint32_t s = ip4(src), d = ip4(dst);
  memcpy(p + 12, &s, 4), memcpy(p + 16, &d, 4);
  uint16_t c = tunctl_csum(p, 20, 0);
  p[10] = (uint8_t)(c >> 8), p[11] = (uint8_t)c;
  for (size_t i = 20; i < len; i++) p[i] = (uint8_t)i;
  return len;
}

static void test_build(void) {
  uint8_t in[2000], out[600];
  size_t n = outer(in, "198.51.100.2", "192.0.2.1", 47, 108, 0xb9, 0x4000);
  size_t m = tunctl_unreach_build(in, n, 64, out);
  EXPECT("build: 20 + 8 + the whole packet when it fits", m == 28 + 108, "%zu", m);
  EXPECT("build: IPv4, ihl 5, total length", out[0] == 0x45 && ((out[2] << 8) | out[3]) == 136, "%02x %d", out[0], (out[2] << 8) | out[3]);
  EXPECT("build: tos = RT_TOS(0xb9) | 0xc0 = 0xd8", out[1] == 0xd8, "%02x", out[1]);
  EXPECT("build: id 0 (the raw socket picks it), no DF (IP_PMTUDISC_DONT)", !out[4] && !out[5] && !out[6] && !out[7], "%02x%02x %02x%02x", out[4], out[5], out[6], out[7]);
  EXPECT("build: ttl as given (ip_default_ttl), protocol 1", out[8] == 64 && out[9] == 1, "%d %d", out[8], out[9]);
  EXPECT("build: source = the outer destination, destination = the outer source",
        !memcmp(out + 12, in + 16, 4) && !memcmp(out + 16, in + 12, 4), "addresses");
  EXPECT("build: IP checksum", tunctl_csum(out, 20, 0) == 0, "%04x", tunctl_csum(out, 20, 0));
  EXPECT("build: type 3 code 3, unused 0", out[20] == 3 && out[21] == 3 && !out[24] && !out[25] && !out[26] && !out[27], "%d %d", out[20], out[21]);
  EXPECT("build: ICMP checksum", tunctl_csum(out + 20, m - 20, 0) == 0, "%04x", tunctl_csum(out + 20, m - 20, 0));
  EXPECT("build: the quote is the outer packet from its IP header", !memcmp(out + 28, in, n), "quote");
  EXPECT("build: ttl 255", tunctl_unreach_build(in, n, 255, out) && out[8] == 255, "%d", out[8]);

  n = outer(in, "198.51.100.2", "192.0.2.1", 4, 1400, 0, 0);
  m = tunctl_unreach_build(in, n, 64, out);
  EXPECT("build: at most 576 bytes (548 quoted)", m == 576 && ((out[2] << 8) | out[3]) == 576 && !memcmp(out + 28, in, 548), "%zu", m);
  EXPECT("build: ICMP checksum of a cut quote", tunctl_csum(out + 20, m - 20, 0) == 0, "csum");
  n = outer(in, "198.51.100.2", "192.0.2.1", 4, 548, 0, 0);
  EXPECT("build: 548 bytes exactly fit", tunctl_unreach_build(in, n, 64, out) == 576, "size");

  n = outer(in, "198.51.100.2", "192.0.2.1", 47, 100, 0, 0x2000);
  EXPECT("build: a first fragment (MF) is answered", tunctl_unreach_build(in, n, 64, out) == 128, "mf");
  n = outer(in, "198.51.100.2", "192.0.2.1", 47, 100, 0, 0x0001);
  EXPECT("build: no answer to a fragment other than the first", tunctl_unreach_build(in, n, 64, out) == 0, "offset");
  n = outer(in, "198.51.100.2", "239.1.1.1", 47, 100, 0, 0);
  EXPECT("build: no answer to a multicast destination", tunctl_unreach_build(in, n, 64, out) == 0, "mcast");
  n = outer(in, "198.51.100.2", "255.255.255.255", 47, 100, 0, 0);
  EXPECT("build: no answer to the limited broadcast", tunctl_unreach_build(in, n, 64, out) == 0, "bcast");
  const char *bad[] = {"0.0.0.0", "224.0.0.1", "255.255.255.255", "127.0.0.1"};
  for (int i = 0; i < 4; i++) {
    n = outer(in, bad[i], "192.0.2.1", 47, 100, 0, 0);
    char name[96];
    snprintf(name, sizeof name, "build: no answer to source %s", bad[i]);
    EXPECT(name, tunctl_unreach_build(in, n, 64, out) == 0, "answered");
  }
  n = outer(in, "198.51.100.2", "192.0.2.1", 47, 100, 0, 0);
  in[0] = 0x65;
  EXPECT("build: not IPv4 → nothing", tunctl_unreach_build(in, n, 64, out) == 0, "v6");
  in[0] = 0x44;
  EXPECT("build: ihl < 5 → nothing", tunctl_unreach_build(in, n, 64, out) == 0, "ihl");
  in[0] = 0x45;
  EXPECT("build: shorter than an IPv4 header → nothing", tunctl_unreach_build(in, 19, 64, out) == 0, "short");
}

static void test_limits(void) {
  struct tunctl_unreach *u = malloc(sizeof *u);
  struct tunctl_unreach_cfg def = TUNCTL_UNREACH_DEFAULT_CFG;
  uint64_t t0 = 5000000;
  uint32_t p = ip4("198.51.100.2"), q = ip4("198.51.100.3");
  char name[96];

  /* a new peer starts with 60 s of tokens, capped at 6 × 1000 ms: 6 at once, then one per second */
  tunctl_unreach_init(u, &def, t0);
  int sent = 0;
  for (int i = 0; i < 10; i++) sent += tunctl_unreach_allow(u, p, 0, t0, 0);
  EXPECT("peer: a burst of XRLIM_BURST_FACTOR (6) for a new peer", sent == 6, "%d", sent);
  EXPECT("peer: another destination has its own bucket", tunctl_unreach_allow(u, q, 0, t0, 0) == 1, "refused");
  EXPECT("peer: 999 ms later still nothing", tunctl_unreach_allow(u, p, 0, t0 + 999, 0) == 0, "sent");
  EXPECT("peer: 1000 ms later one", tunctl_unreach_allow(u, p, 0, t0 + 1000, 0) == 1, "refused");
  EXPECT("peer: and not two", tunctl_unreach_allow(u, p, 0, t0 + 1000, 0) == 0, "sent");
  sent = 0;
  for (int i = 0; i < 10; i++) sent += tunctl_unreach_allow(u, p, 0, t0 + 61000, 0);
  EXPECT("peer: refilled to the burst after a minute, not more", sent == 6, "%d", sent);

  /* icmp_ratelimit 0: no peer limit; the global limit remains (burst 50, rnd 0 takes no credit → always) */
  struct tunctl_unreach_cfg c0 = def;
  c0.ratelimit_ms = 0;
  tunctl_unreach_init(u, &c0, t0);
  sent = 0;
  for (int i = 0; i < 100; i++) sent += tunctl_unreach_allow(u, p, 0, t0, 0);
  EXPECT("peer: icmp_ratelimit 0 never limits", sent == 100, "%d", sent);

  /* the raised ratelimit of the differential proof's kernel run: a new peer never gets one */
  struct tunctl_unreach_cfg big = def;
  big.ratelimit_ms = 2147483;
  tunctl_unreach_init(u, &big, t0);
  EXPECT("peer: icmp_ratelimit above 10 s: a new peer gets none", tunctl_unreach_allow(u, p, 0, t0, 0) == 0, "sent");

  /* icmp_ratemask without type 3: no limit at all */
  struct tunctl_unreach_cfg nm = big;
  nm.ratemask = 0x1810;
  tunctl_unreach_init(u, &nm, t0);
  EXPECT("ratemask without type 3: unlimited", tunctl_unreach_allow(u, p, 0, t0, 0) == 1, "refused");
  tunctl_unreach_init(u, &big, t0);
  EXPECT("loopback: unlimited", tunctl_unreach_allow(u, p, 1, t0, 0) == 1, "refused");

  /* global: burst 50, each answer takes prandom_u32_max(3) credits; refills msgs_per_sec × delta, not before 20 ms */
  tunctl_unreach_init(u, &c0, t0);
  sent = 0;
  for (int i = 0; i < 100; i++) sent += tunctl_unreach_allow(u, p, 0, t0, 2);
  EXPECT("global: 2 credits each: 25 of a burst of 50", sent == 25, "%d", sent);
  EXPECT("global: empty, 19 ms later still nothing", tunctl_unreach_allow(u, p, 0, t0 + 19, 2) == 0, "sent");
  sent = 0;
  for (int i = 0; i < 100; i++) sent += tunctl_unreach_allow(u, p, 0, t0 + 20, 2);
  EXPECT("global: 20 ms → 20 credits → 10 answers", sent == 10, "%d", sent);
  struct tunctl_unreach_cfg g0 = c0;
  g0.msgs_burst = 0;
  tunctl_unreach_init(u, &g0, t0);
  EXPECT("global: icmp_msgs_burst 0 answers nothing", tunctl_unreach_allow(u, p, 0, t0, 0) == 0, "sent");
  tunctl_unreach_init(u, &c0, t0);
  sent = 0;
  for (int i = 0; i < 100; i++) sent += tunctl_unreach_allow(u, p, 0, t0, 1);
  EXPECT("global: 1 credit each: 50 of a burst of 50", sent == 50, "%d", sent);

  /* the global limit is taken before the peer's: a refused peer still spends a credit (icmpv4_global_allow first) */
  tunctl_unreach_init(u, &def, t0);
  sent = 0;
  for (int i = 0; i < 60; i++) sent += tunctl_unreach_allow(u, p, 0, t0, 1);
  EXPECT("order: 6 sent, the global credit spent by all 50 tries", sent == 6 && tunctl_unreach_allow(u, q, 0, t0, 1) == 0, "%d", sent);

  /* the bounded peer table: full, it forgets the least recently used peer, which then starts full again */
  tunctl_unreach_init(u, &c0, t0);
  u->cfg.ratelimit_ms = 1000;
  for (uint32_t i = 0; i < TUNCTL_UNREACH_PEERS; i++) tunctl_unreach_allow(u, htonl(0x0a000000 + i), 0, t0 + i, 0);
  EXPECT("table: bounded", u->n == TUNCTL_UNREACH_PEERS, "%d", u->n);
  sent = 0;
  for (int i = 0; i < 10; i++) sent += tunctl_unreach_allow(u, htonl(0x0a000000 + TUNCTL_UNREACH_PEERS - 1), 0, t0 + 5000, 0);
  snprintf(name, sizeof name, "table: a known peer keeps its bucket (5 of %d s refilled + 5 left)", 6);
  EXPECT(name, sent == 6, "%d", sent);
  tunctl_unreach_allow(u, htonl(0x0b000000), 0, t0 + 5000, 0);
  int found0 = 0;
  for (int i = 0; i < u->n; i++) found0 |= u->peers[i].addr == htonl(0x0a000000);
  EXPECT("table: the least recently used peer is forgotten", !found0 && u->n == TUNCTL_UNREACH_PEERS, "still there");
  free(u);
}

static void test_gre(void) {
  uint8_t in[200];
  size_t n = outer(in, "198.51.100.2", "192.0.2.1", 47, 20 + 4 + 4 + 20, 0, 0);
  memset(in + 20, 0, 28);
  in[20] = 0x20, in[22] = 0x08; /* key, IPv4 */
  EXPECT("gre: keyed version 0 parses", tunctl_unreach_gre_parses(in, n) == 1, "no");
  EXPECT("gre: fewer than 12 bytes after the IP header: dropped", tunctl_unreach_gre_parses(in, 31) == 0, "parses");
  in[21] = 1;
  EXPECT("gre: version 1 (pptp): dropped", tunctl_unreach_gre_parses(in, n) == 0, "parses");
  in[21] = 0, in[20] = 0x60;
  EXPECT("gre: routing bit: dropped", tunctl_unreach_gre_parses(in, n) == 0, "parses");
  in[20] = 0x80; /* checksum, no key: csum(2) reserved(2) */
  in[24] = in[25] = 0;
  uint16_t c = tunctl_csum(in + 20, n - 20, 0);
  in[24] = (uint8_t)(c >> 8), in[25] = (uint8_t)c;
  EXPECT("gre: a valid checksum parses", tunctl_unreach_gre_parses(in, n) == 1, "no");
  in[30] ^= 1;
  EXPECT("gre: a bad checksum: dropped (csum_err)", tunctl_unreach_gre_parses(in, n) == 0, "parses");
}

int main(void) {
  test_build();
  test_gre();
  test_limits();
  return summary();
}
