/* isatap: the IPv4 next hop of an outgoing packet from the IPv6 route, as net/ipv6/sit.c ipip6_tunnel_xmit takes it
 * (dst_neigh_lookup: the route's gateway, or the destination itself on an on-link route; it must be a unicast ISATAP
 * address, whose last 32 bits are the next hop). Pure: the engine keeps the routes out of each isatap TUN device
 * (engroute.c) and asks here; the ISATAP address test is codec.c's (tunctl_is_isatap_addr). Unit-tested: test/unit/userspace/c/route_test.c. */
#ifndef TUNCTL_ISATAP_H
#define TUNCTL_ISATAP_H

#include <stdint.h>

/* one IPv6 route out of the tunnel's device (main table, unicast) */
struct tunctl_v6route {
  uint8_t dst[16];
  int plen;
  int has_gw;
  uint8_t gw[16];
  uint32_t metric;
};

enum tunctl_isatap_nh {
  ISATAP_NH_NONE = -1,  /* no route of the table matches: not modelled (the caller keeps its own choice) */
  ISATAP_NH_ERROR = 0,  /* the neighbour is not a unicast ISATAP address (or dst6 is multicast): the kernel's tx_error */
  ISATAP_NH_OK = 1,     /* *v4 (network order) is the next hop */
};

/* the longest prefix match of dst6 among the n routes (equal prefixes: the lowest metric, then the first), its
 * neighbour (gateway, else dst6) and that neighbour's IPv4 address */
int tunctl_isatap_nexthop(const struct tunctl_v6route *routes, int n, const uint8_t dst6[16], uint32_t *v4);

#endif
