/* libFuzzer harness for the receive dispatch (native/dispatch.c) together with the decap codec (codec.c):
 * the input describes a namespace's tunnel table and one received outer packet; every tunnel of the table runs its
 * receive path (tunctl_receive) on its own exact-size copy, as every daemon's raw socket gets a copy.
 * Invariants: at most one tunnel delivers or drops the packet (the one tunctl_select picks, which is up and whose
 * addresses the packet carries); a packet nobody takes is counted by exactly one listening tunnel; the inner packet
 * lies inside the outer one.
 * Input: byte 0 → number of tunnels (1..8) and the receiving ifindex; 4 bytes per tunnel (mode, addresses, key,
 * link/up/fallback); 1 byte choosing the packet's outer addresses from the same small set (or keeping its own);
 * the rest is the outer packet. Built and run by fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../native/dispatch.h"

#include <stdio.h>
#include "table.h"
#define TRAP() (fprintf(stderr, "dispatch_fuzzer: invariant at line %d broken\n", __LINE__), abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tunctl_entry tab[8];
  int n, ifindex;
  uint8_t addrsel;
  size_t len;
  uint8_t *base = fuzz_table(data, size, tab, &n, &ifindex, &addrsel, &len);
  if (!base) return 0;
  if (len >= 20 && (addrsel & 0x80)) {
    uint32_t src = be(ADDRS[addrsel & 3]), dst = be(ADDRS[addrsel >> 2 & 3]);
    memcpy(base + 12, &src, 4);
    memcpy(base + 16, &dst, 4);
  }
  struct tunctl_table t = {tab, n};
  int why;
  int sel = tunctl_select(&t, base, len, ifindex, &why);
  if (sel != TUNCTL_SEL_NONE) {
    if (sel < 0 || sel >= n || why != SEL_OK || !tab[sel].up) TRAP();
    uint32_t saddr, daddr;
    memcpy(&saddr, base + 12, 4);
    memcpy(&daddr, base + 16, 4);
    const struct tunctl_cfg *c = &tab[sel].cfg;
    /* ip_tunnel_lookup: a multicast remote matches the destination (sit has no such rule) */
    int mcast = (be(c->remote) >> 28) == 0xe && (c->mode == TM_GRE || c->mode == TM_IPIP);
    if (mcast ? daddr != c->remote : ((c->remote && saddr != c->remote) || (c->local && daddr != c->local))) TRAP();
  } else if (why <= SEL_OK || why > SEL_NO_TUNNEL) {
    TRAP();
  }
  if (tunctl_select(&t, base, len, ifindex, NULL) != sel) TRAP(); /* pure */

  int takers = 0, counters = 0, listeners = 0;
  for (int self = 0; self < n; self++) {
    if (len >= 20 && !tunctl_uses_proto(&tab[self].cfg, base[9])) continue; /* no raw socket of that protocol */
    listeners++;
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, base, len);
    struct tunctl_rxstate rx = {0};
    uint8_t *inner = NULL;
    size_t ilen = 0;
    int drop = -1;
    int v = tunctl_receive(&t, self, &rx, copy, len, ifindex, &inner, &ilen, &drop);
    switch (v) {
    case RXV_DELIVER:
      if (self != sel || drop != DR_OK || inner < copy || inner + ilen > copy + len) TRAP();
      takers++;
      break;
    case RXV_DROP:
      if (self != sel || drop <= DR_OK || drop >= DR__COUNT || drop == DR_NO_TUNNEL) TRAP();
      takers++;
      break;
    case RXV_SIBLING:
      if (sel == TUNCTL_SEL_NONE || sel == self) TRAP();
      break;
    case RXV_NO_TUNNEL:
      if (sel != TUNCTL_SEL_NONE || drop <= DR_OK || drop >= DR__COUNT) TRAP();
      counters++;
      break;
    case RXV_IGNORE:
      if (sel != TUNCTL_SEL_NONE) TRAP();
      break;
    default: TRAP();
    }
    free(copy);
  }
  if (takers > 1 || counters > 1) TRAP();
  if (sel == TUNCTL_SEL_NONE && listeners && counters != 1) TRAP();
  free(base);
  return 0;
}
