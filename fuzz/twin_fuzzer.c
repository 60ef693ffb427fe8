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
#define TRAP() (fprintf(stderr, "twin_fuzzer: invariant at line %d broken\n", __LINE__), abort())

static uint32_t be(uint32_t v) { return __builtin_bswap32(v); }

/* a small address set so that tunnels and packets collide: any, two unicast, a multicast group */
static const uint32_t ADDRS[4] = {0, 0xc6336401u, 0xc6336402u, 0xe0010203u};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  int n = 1 + (data[0] & 7);
  int ifindex = 1 + (data[0] >> 3 & 3);
  size_t need = 1 + (size_t)n * 4 + 1;
  if (size < need) return 0;
  struct tunctl_entry tab[8];
  for (int i = 0; i < n; i++) {
    const uint8_t *s = data + 1 + i * 4;
    memset(&tab[i], 0, sizeof tab[i]);
    tunctl_cfg_init(&tab[i].cfg);
    tab[i].cfg.mode = 1 + (s[0] & 3);
    tab[i].cfg.inner = 1 + (s[0] >> 2 & 1) + (s[0] >> 3 & 1);
    if (tab[i].cfg.inner > 3) tab[i].cfg.inner = 3;
    tab[i].cfg.local = be(ADDRS[s[1] & 3]);
    tab[i].cfg.remote = be(ADDRS[s[1] >> 2 & 3]);
    if (tab[i].cfg.local == be(ADDRS[3])) tab[i].cfg.local = be(ADDRS[1]);
    if (s[2] & 1) tab[i].cfg.has_ikey = 1, tab[i].cfg.ikey = s[2] >> 1 & 3;
    tab[i].cfg.icsum = !!(s[2] & 8);
    tab[i].cfg.iseq = !!(s[2] & 16);
    tab[i].link = s[3] & 3;
    tab[i].up = !(s[3] & 4);
    tab[i].fallback = (s[3] & 0x18) == 0x18 && !tab[i].cfg.local && !tab[i].cfg.remote && !tab[i].cfg.has_ikey;
    if (s[0] & 0x10 && tab[i].cfg.mode == TM_ISATAP) tab[i].cfg.remote = 0;
  }
  uint8_t addrsel = data[need - 1];
  const uint8_t *pkt = data + need;
  size_t len = size - need;
  if (len > 65535) return 0;
  uint8_t *base = malloc(len ? len : 1);
  memcpy(base, pkt, len);
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
