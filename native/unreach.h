/* tunctl kernel twin: the ICMP destination unreachable (port unreachable) the kernel's tunnel receive handlers send
 * for a packet no tunnel takes (net/ipv4/ip_gre.c gre_rcv, net/ipv4/tunnel4.c tunnel4_rcv / tunnel64_rcv:
 * icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0)), built as Linux 6.1's __icmp_send builds it, and the
 * rate limits it passes (icmpv4_global_allow → icmp_global_allow; icmpv4_xrlim_allow → inet_peer_xrlim_allow).
 * Pure (no I/O, no allocation, no clock): the caller reads the sysctls and the clock. */
#ifndef TUNCTL_UNREACH_H
#define TUNCTL_UNREACH_H

#include <stddef.h>
#include <stdint.h>

/* the namespace's sysctls (/proc/sys/net/ipv4/...), read by the engine at start */
struct tunctl_unreach_cfg {
  int ttl;               /* ip_default_ttl (ip_select_ttl of the icmp socket: the route's hoplimit, i.e. this) */
  uint32_t ratelimit_ms; /* icmp_ratelimit (ms; the kernel keeps jiffies) */
  uint32_t ratemask;     /* icmp_ratemask: the types the limits apply to */
  uint32_t msgs_per_sec; /* icmp_msgs_per_sec (icmp_global_allow) */
  uint32_t msgs_burst;   /* icmp_msgs_burst */
};
#define TUNCTL_UNREACH_DEFAULT_CFG {64, 1000, 0x1818, 1000, 50}

#define TUNCTL_UNREACH_PEERS 1024 /* bounded: when full, the least recently used peer is forgotten */

struct tunctl_unreach_peer {
  uint32_t addr;   /* network order; 0: free */
  uint64_t last;   /* rate_last (ms) */
  uint64_t tokens; /* rate_tokens (ms) */
};

struct tunctl_unreach {
  struct tunctl_unreach_cfg cfg;
  uint64_t stamp;  /* icmp_global.stamp (ms) */
  uint32_t credit; /* icmp_global.credit */
  int n;
  struct tunctl_unreach_peer peers[TUNCTL_UNREACH_PEERS];
};

void tunctl_unreach_init(struct tunctl_unreach *u, const struct tunctl_unreach_cfg *cfg, uint64_t now);

/* icmp_send's rate limits for type 3 code 3 towards dst (network order) at `now` (ms); rnd: random bits
 * (icmp_global_allow takes prandom_u32_max(3) credits); loopback: the packet came in on lo (no limit, as the
 * kernel: neither the global limit for a loopback input nor the peer limit for a loopback output). 1: send. */
int tunctl_unreach_allow(struct tunctl_unreach *u, uint32_t dst, int loopback, uint64_t now, uint32_t rnd);

/* the ICMP error for the received outer IPv4 packet pkt (len bytes), as __icmp_send writes it, to out (>= 576
 * bytes); ttl: see tunctl_unreach_cfg. 0 when icmp_send sends nothing for it (not IPv4, a fragment other than the
 * first, a broadcast or multicast destination, a source that is not unicast, IP options (not echoed here)). */
size_t tunctl_unreach_build(const uint8_t *pkt, size_t len, int ttl, uint8_t *out);

/* gre only (gre_demux.c gre_rcv, gre_parse_header): the kernel answers a GRE packet only when it gets to the lookup:
 * 12 bytes after the IP header (pskb_may_pull), version 0 (no handler for the others), no routing bit, a valid
 * checksum when it has one; anything else is dropped silently. 1: it would be answered. */
int tunctl_unreach_gre_parses(const uint8_t *pkt, size_t len);

#endif
