/* The fuzz input's tunnel table, shared by fuzz/dispatch_fuzzer.c and fuzz/twin_fuzzer.c: byte 0 gives the table
 * size (1–8) and the receiving ifindex; 4 bytes per tunnel (mode, inner families, local/remote from a small address
 * set so that tunnels and packets collide, key, csum/seq, link, up, fallback); then one address-selector byte; the
 * rest is the packet, returned as a malloc'd copy of *len bytes (the caller frees it). Returns NULL when the input is
 * too short or the packet longer than 65535 bytes. */
#ifndef TUNCTL_FUZZ_TABLE_H
#define TUNCTL_FUZZ_TABLE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../native/dispatch.h"

static uint32_t be(uint32_t v) { return __builtin_bswap32(v); }

/* any, two unicast, a multicast group */
static const uint32_t ADDRS[4] = {0, 0xc6336401u, 0xc6336402u, 0xe0010203u};

static uint8_t *fuzz_table(const uint8_t *data, size_t size, struct tunctl_entry tab[8], int *n_out, int *ifindex,
                           uint8_t *addrsel, size_t *len) {
  if (size < 2) return NULL;
  int n = 1 + (data[0] & 7);
  *ifindex = 1 + (data[0] >> 3 & 3);
  size_t need = 1 + (size_t)n * 4 + 1;
  if (size < need || size - need > 65535) return NULL;
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
  *n_out = n;
  *addrsel = data[need - 1];
  *len = size - need;
  uint8_t *base = malloc(*len ? *len : 1);
  if (base) memcpy(base, data + need, *len);
  return base;
}

#endif
