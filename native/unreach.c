/* tunctl kernel twin: ICMP port unreachable for a packet no tunnel takes (see unreach.h), as Linux 6.1 sends it.
 *
 * __icmp_send (net/ipv4/icmp.c): nothing for a packet routed as broadcast or multicast, for a fragment other than
 * the first; icmpv4_global_allow (unless the input device is loopback) then icmpv4_xrlim_allow (unless the output
 * device is loopback), each only for the types of icmp_ratemask. The error: saddr = the outer destination (a local
 * address: RTCF_LOCAL), daddr = the outer source, tos = RT_TOS(tos) | IPTOS_PREC_INTERNETCONTROL, the icmp socket's
 * TTL (ip_default_ttl) and IP_PMTUDISC_DONT (no DF; the id is left 0 for the raw socket's ip_select_ident), the quote
 * the outer packet from its IP header on, as much as fits in 576 bytes (room = min(mtu, 576) - 20 - 8). */
#include "unreach.h"

#include <string.h>

#include "tunctl.h"

#define XRLIM_BURST_FACTOR 6 /* include/net/inetpeer.h */

void tunctl_unreach_init(struct tunctl_unreach *u, const struct tunctl_unreach_cfg *cfg, uint64_t now) {
  memset(u, 0, sizeof *u);
  u->cfg = *cfg;
  /* icmp_global starts with no credit and stamp 0, long ago: the first call refills a whole second's worth */
  u->stamp = now - 1000;
  u->credit = 0;
}

/* icmp_global_allow: a token bucket of msgs_per_sec, at most msgs_burst, refilled at most every HZ/50 */
static int global_allow(struct tunctl_unreach *u, uint64_t now, uint32_t rnd) {
  uint64_t delta = now - u->stamp;
  if (delta > 1000) delta = 1000;
  uint32_t incr = 0;
  if (delta >= 20) {
    incr = (uint32_t)((uint64_t)u->cfg.msgs_per_sec * delta / 1000);
    if (incr) u->stamp = now;
  }
  uint64_t credit = (uint64_t)u->credit + incr;
  if (credit > u->cfg.msgs_burst) credit = u->cfg.msgs_burst;
  int rc = 0;
  if (credit) {
    uint32_t take = rnd % 3; /* prandom_u32_max(3) */
    credit = credit > take ? credit - take : 0;
    rc = 1;
  }
  u->credit = (uint32_t)credit;
  return rc;
}

/* inet_getpeer_v4 (create) + inet_peer_xrlim_allow: a new peer's rate_last is 60 s ago (6.1 inet_getpeer) */
static int peer_allow(struct tunctl_unreach *u, uint32_t dst, uint64_t now) {
  struct tunctl_unreach_peer *p = NULL, *lru = NULL;
  for (int i = 0; i < u->n; i++) {
    if (u->peers[i].addr == dst) {
      p = &u->peers[i];
      break;
    }
    if (!lru || u->peers[i].last < lru->last) lru = &u->peers[i];
  }
  if (!p) {
    p = u->n < TUNCTL_UNREACH_PEERS ? &u->peers[u->n++] : lru;
    *p = (struct tunctl_unreach_peer){.addr = dst, .last = now - 60000, .tokens = 0};
  }
  uint64_t timeout = u->cfg.ratelimit_ms;
  uint64_t token = p->tokens + (now - p->last);
  p->last = now;
  if (token > XRLIM_BURST_FACTOR * timeout) token = XRLIM_BURST_FACTOR * timeout;
  int rc = 0;
  if (token >= timeout) {
    token -= timeout;
    rc = 1;
  }
  p->tokens = token;
  return rc;
}

int tunctl_unreach_allow(struct tunctl_unreach *u, uint32_t dst, int loopback, uint64_t now, uint32_t rnd) {
  /* icmpv4_mask_allow: a type outside icmp_ratemask is never limited */
  if (!(u->cfg.ratemask & (1u << 3))) return 1;
  if (loopback) return 1;
  if (!global_allow(u, now, rnd)) return 0;
  return peer_allow(u, dst, now);
}

static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

size_t tunctl_unreach_build(const uint8_t *in, size_t len, int ttl, uint8_t *o) {
  if (len < 20 || (in[0] >> 4) != 4) return 0;
  size_t ihl = (size_t)(in[0] & 15) * 4;
  if (ihl < 20 || ihl > len) return 0;
  if (((in[6] << 8) | in[7]) & 0x1fff) return 0; /* a fragment other than the first */
  /* a multicast or limited-broadcast destination (RTCF_MULTICAST / RTCF_BROADCAST) */
  if (in[16] >= 224 || !memcmp(in + 16, "\xff\xff\xff\xff", 4)) return 0;
  /* a source ip_route_input never lets in: zero, multicast, limited broadcast, loopback net */
  if (!memcmp(in + 12, "\0\0\0\0", 4) || in[12] >= 224 || in[12] == 127) return 0;
  size_t quote = len < 548 ? len : 548;
  size_t tot = 28 + quote;
  memset(o, 0, 28);
  o[0] = 0x45;
  o[1] = (uint8_t)((in[1] & 0x1e) | 0xc0); /* RT_TOS | IPTOS_PREC_INTERNETCONTROL */
  wr16(o + 2, (uint16_t)tot);
  /* id 0: the raw socket's ip_select_ident picks it; frag_off 0: the icmp socket's IP_PMTUDISC_DONT */
  o[8] = (uint8_t)ttl;
  o[9] = 1;
  memcpy(o + 12, in + 16, 4);
  memcpy(o + 16, in + 12, 4);
  wr16(o + 10, tunctl_csum(o, 20, 0));
  uint8_t *ic = o + 20;
  ic[0] = 3; /* ICMP_DEST_UNREACH */
  ic[1] = 3; /* ICMP_PORT_UNREACH */
  memcpy(ic + 8, in, quote);
  wr16(ic + 2, tunctl_csum(ic, 8 + quote, 0));
  return tot;
}

int tunctl_unreach_gre_parses(const uint8_t *in, size_t len) {
  if (len < 20) return 0;
  size_t ihl = (size_t)(in[0] & 15) * 4;
  if (ihl < 20 || len < ihl + 12) return 0;
  const uint8_t *g = in + ihl;
  size_t rem = len - ihl;
  if ((g[1] & 0x7f) != 0) return 0;  /* gre_demux: GREPROTO_CISCO (0) is ip_gre's */
  if (g[0] & 0x40) return 0;         /* GRE_ROUTING */
  size_t hlen = 4 + ((g[0] & 0x80) ? 4 : 0) + ((g[0] & 0x20) ? 4 : 0) + ((g[0] & 0x10) ? 4 : 0);
  if (rem < hlen) return 0;
  if ((g[0] & 0x80) && tunctl_csum(g, rem, 0) != 0) return 0; /* GRE_CSUM: skb_checksum_simple_validate */
  return 1;
}
