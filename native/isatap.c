/* isatap next hop from the route (isatap.h). */
#include "isatap.h"
#include "tunctl.h"

#include <string.h>

static int prefix_match(const uint8_t *a, const uint8_t *p, int plen) {
  int full = plen / 8, rest = plen % 8;
  if (memcmp(a, p, (size_t)full)) return 0;
  if (!rest) return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (a[full] & mask) == (p[full] & mask);
}

int tunctl_isatap_nexthop(const struct tunctl_v6route *routes, int n, const uint8_t dst6[16], uint32_t *v4) {
  /* a multicast destination: its route (ff00::/8, local table) has no gateway, so the neighbour is the multicast
   * address, not unicast → tx_error, whatever the main table holds */
  if (dst6[0] == 0xff) return ISATAP_NH_ERROR;
  const struct tunctl_v6route *best = NULL;
  for (int i = 0; i < n; i++) {
    const struct tunctl_v6route *r = &routes[i];
    if (r->plen < 0 || r->plen > 128 || !prefix_match(dst6, r->dst, r->plen)) continue;
    if (!best || r->plen > best->plen || (r->plen == best->plen && r->metric < best->metric)) best = r;
  }
  if (!best) return ISATAP_NH_NONE;
  const uint8_t *nb = best->has_gw ? best->gw : dst6; /* rt6_nexthop */
  static const uint8_t zero[16];
  if (!memcmp(nb, zero, 16) || nb[0] == 0xff || !tunctl_is_isatap_addr(nb)) return ISATAP_NH_ERROR;
  memcpy(v4, nb + 12, 4);
  return ISATAP_NH_OK;
}
