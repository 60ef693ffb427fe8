/* libFuzzer harness for the engine's routing-derived state, pure parts: native/isatap.c (the isatap next hop from
 * the route) and native/mcast.c (multicast gre memberships by reference count).
 * Input: byte 0 = number of routes (mod 9), then per route 34 bytes (prefix 16, prefix length, has gateway, gateway
 * 16 ... metric low byte reused), then a 16-byte destination; the rest drives ref/unref operations on 4 groups x 3
 * devices. Invariants: OK only with a neighbour that is an ISATAP address and a matching route whose prefix is the
 * longest among the matching ones, and *v4 its last 32 bits; a multicast destination is never OK; NONE only when no
 * route matches; the membership table's reference counts equal a reference model, fds come back exactly once.
 * Built and run by fuzz/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../native/isatap.h"
#include "../native/mcast.h"

#define TRAP() (fprintf(stderr, "route_fuzzer: invariant at line %d broken\n", __LINE__), abort())

static int match(const uint8_t *a, const uint8_t *p, int plen) {
  for (int i = 0; i < plen; i++)
    if (((a[i / 8] ^ p[i / 8]) >> (7 - i % 8)) & 1) return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int n = data[0] % 9;
  size_t need = 1 + (size_t)n * 34 + 16;
  if (size < need) return 0;
  struct tunctl_v6route r[8];
  const uint8_t *p = data + 1;
  for (int i = 0; i < n; i++, p += 34) {
    memcpy(r[i].dst, p, 16);
    r[i].plen = p[16] % 140; /* some out of range: ignored */
    r[i].has_gw = p[17] & 1;
    memcpy(r[i].gw, p + 18, 16);
    r[i].metric = p[17] >> 1;
  }
  uint8_t dst[16];
  memcpy(dst, p, 16);
  uint32_t v4 = 0xdeadbeef;
  int res = tunctl_isatap_nexthop(r, n, dst, &v4);
  int best = -1;
  for (int i = 0; i < n; i++)
    if (r[i].plen <= 128 && match(dst, r[i].dst, r[i].plen) && (best < 0 || r[i].plen > r[best].plen)) best = i;
  if (res == ISATAP_NH_NONE && (best >= 0 || dst[0] == 0xff)) TRAP();
  if (res != ISATAP_NH_NONE && best < 0 && dst[0] != 0xff) TRAP();
  if (res == ISATAP_NH_OK) {
    if (dst[0] == 0xff) TRAP();
    /* the neighbour: some longest-prefix route's gateway, or the destination */
    int ok = 0;
    for (int i = 0; i < n; i++) {
      if (r[i].plen > 128 || r[i].plen != r[best].plen || !match(dst, r[i].dst, r[i].plen)) continue;
      const uint8_t *nb = r[i].has_gw ? r[i].gw : dst;
      if (tunctl_is_isatap_addr(nb) && !memcmp(nb + 12, &v4, 4)) ok = 1;
    }
    if (!ok) TRAP();
  }
  /* memberships */
  struct tunctl_mcast t = {0};
  int model[4][3] = {{0}};
  for (size_t k = need; k < size; k++) {
    int g = data[k] & 3, d = (data[k] >> 2) % 3, ref = data[k] & 0x80;
    uint32_t group = 0xe0000001u + (uint32_t)g;
    if (ref) {
      struct tunctl_mc_member *m = tunctl_mcast_ref(&t, group, d + 1);
      if (!m) TRAP();
      if (++model[g][d] != m->users) TRAP();
      if (m->users == 1) m->fd = 100 + g * 3 + d;
    } else {
      int fd = tunctl_mcast_unref(&t, group, d + 1);
      if (model[g][d] == 1 && fd != 100 + g * 3 + d) TRAP();
      if (model[g][d] != 1 && fd != -1) TRAP();
      if (model[g][d]) model[g][d]--;
    }
    for (int a = 0; a < 4; a++)
      for (int b = 0; b < 3; b++)
        if (tunctl_mcast_users(&t, 0xe0000001u + (uint32_t)a, b + 1) != model[a][b]) TRAP();
  }
  tunctl_mcast_free(&t);
  return 0;
}
