/* libFuzzer harness for the kernel twin (native/icmperr.c, native/pmtu.c) with the dispatch it looks tunnels up
 * with (native/dispatch.c): the input describes a namespace's tunnel table (as fuzz/dispatch_fuzzer.c) and one
 * received packet, handled as an ICMP error (tunctl_icmperr), as an inner packet for a link failure
 * (tunctl_icmp_link_failure), for the path MTU check (tunctl_tnl_pmtu_check) and the routing loop test.
 * Invariants: the action names a tunnel of the table where it must (ICMPv6 relay, err_count) and that tunnel has a
 * fixed unicast remote for err_count; built ICMP errors fit the IPv6 minimum MTU and carry valid lengths; the
 * path MTU cache never reports more than the route MTU nor less than 68 once learnt.
 * Byte `addrsel` bit 6 makes the packet an ICMP message with a valid checksum (protocol 1), to reach the error
 * handlers. Built and run by fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../native/icmperr.h"
#include "../native/pmtu.h"

#include <stdio.h>
#include "table.h"
#define TRAP() (fprintf(stderr, "twin_fuzzer: invariant at line %d broken\n", __LINE__), abort())

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tunctl_entry tab[8];
  int n, ifindex;
  uint8_t addrsel;
  size_t len;
  uint8_t *base = fuzz_table(data, size, tab, &n, &ifindex, &addrsel, &len);
  if (!base) return 0;
  if ((addrsel & 0x40) && len >= 28 && (base[0] >> 4) == 4 && (base[0] & 15) >= 5) {
    size_t ihl = (size_t)(base[0] & 15) * 4;
    if (ihl + 8 <= len) {
      base[2] = (uint8_t)(len >> 8), base[3] = (uint8_t)len;
      base[6] &= 0x40, base[7] = 0;
      base[9] = 1;
      base[ihl + 2] = base[ihl + 3] = 0;
      uint16_t c = tunctl_csum(base + ihl, len - ihl, 0);
      base[ihl + 2] = (uint8_t)(c >> 8), base[ihl + 3] = (uint8_t)c;
    }
  }
  struct tunctl_table t = {tab, n};
  struct tunctl_icmperr r;
  uint8_t *out = malloc(2048);
  size_t olen = 12345;
  int a = tunctl_icmperr(&t, base, len, ifindex, &r, out, &olen);
  if (a != r.action || a < IEA_NONE || a > IEA_ERR_COUNT || r.tunnel < -1 || r.tunnel >= n) TRAP();
  if (a == IEA_ICMPV6) {
    if (r.tunnel < 0 || olen < 48 + 48 || olen > 1280 || (out[0] >> 4) != 6 || (size_t)((out[4] << 8 | out[5]) + 40) != olen) TRAP();
  } else if (olen != 0) {
    TRAP();
  }
  if (a == IEA_ERR_COUNT && (r.tunnel < 0 || !tab[r.tunnel].cfg.remote || (be(tab[r.tunnel].cfg.remote) >> 28) == 0xe)) TRAP();
  if (a == IEA_PMTU && (r.mtu < 0 || r.mtu > 65535)) TRAP();
  if (tunctl_icmperr(&t, base, len, ifindex, &r, out, &olen) != a) TRAP(); /* pure */

  size_t k = tunctl_icmp_link_failure(base, len, out);
  if (k && (k < 28 || k > 1280)) TRAP();

  struct tunctl_pmtu *p = malloc(sizeof *p);
  tunctl_pmtu_init(p);
  uint32_t dst = len >= 20 ? (uint32_t)base[16] | 1u : 1u;
  int route = 576 + (addrsel & 0x3f) * 16;
  for (size_t i = 0; i + 1 < len && i < 16; i += 2) {
    tunctl_pmtu_update(p, dst + (uint32_t)(i & 6), base[i] << 8 | base[i + 1], route, (uint64_t)i * 100000);
    int locked;
    int m = tunctl_pmtu_get(p, dst + (uint32_t)(i & 6), route, (uint64_t)i * 100000, &locked);
    if (m > route || m < 68 || (locked && m > TUNCTL_MIN_PMTU)) TRAP();
  }
  int clr;
  int v = tunctl_tnl_pmtu_check(addrsel & 1, 4 * (addrsel >> 1 & 3), addrsel >> 3 & 1, base, len, route, 1476, &clr);
  if (v < -1 || v > (route > 1476 ? route : 1476)) TRAP();
  (void)tunctl_routing_loop(&tab[0].cfg, base, len);
  free(p);
  free(out);
  free(base);
  return 0;
}
