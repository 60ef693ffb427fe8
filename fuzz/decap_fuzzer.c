/* libFuzzer harness for the userspace encapsulator codecs (native/codec.c).
 * The first 4 input bytes choose the tunnel config (mode, key/csum/seq flags, addresses any or fixed, 6rd,
 * routers); the rest is a received outer packet for tunctl_decap and an inner packet for tunctl_encap.
 * Built and run by fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../native/tunctl.h"
#include "../native/offload.h"

static uint32_t htonl_(uint32_t v) { return __builtin_bswap32(v); }

static void make_cfg(struct tunctl_cfg *c, const uint8_t *sel) {
  tunctl_cfg_init(c);
  c->mode = 1 + (sel[0] & 3);
  uint8_t f = sel[1];
  c->local = (f & 1) ? htonl_(0xc6336402u) : 0;
  c->remote = (f & 2) ? htonl_(0xc6336401u) : 0;
  c->has_ikey = c->has_okey = !!(f & 4);
  c->ikey = c->okey = 42;
  c->icsum = c->ocsum = !!(f & 8);
  c->iseq = c->oseq = !!(f & 16);
  c->pmtudisc = !!(f & 32);
  c->ignore_df = !!(f & 64);
  c->inner = 1 + (sel[2] % 3);
  c->ttl = (sel[2] & 0x80) ? 0 : 64;
  c->tos = sel[3];
  c->mtu = (f & 128) ? 1280 + sel[3] : 0;
  if (sel[2] & 0x40) {
    /* 6rd prefix of varying length with a relay prefix */
    static const uint8_t pfx[16] = {0x20, 0x01, 0x0d, 0xb8};
    memcpy(c->sixrd_prefix, pfx, 16);
    c->sixrd_plen = 8 + (sel[3] % 57);
    c->relay_plen = sel[3] % 33;
    c->relay_prefix = htonl_(0xc6330000u);
  }
  if (sel[2] & 0x20) {
    c->nrouters = 2;
    c->routers[0] = htonl_(0xc6336401u);
    c->routers[1] = htonl_(0xc0000201u);
    c->router_default[1] = 1;
  }
}

/* byte-wise RFC 1071 reference for the word-at-a-time tunctl_sum */
static uint16_t ref_csum(const uint8_t *p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)((p[i] << 8) | p[i + 1]);
  if (len & 1) sum += (uint32_t)(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (tunctl_csum(data, size, 0) != ref_csum(data, size)) __builtin_trap();
  if (size < 4) return 0;
  struct tunctl_cfg cfg;
  make_cfg(&cfg, data);
  const uint8_t *pkt = data + 4;
  size_t len = size - 4;
  if (len > TUNCTL_MAX_PKT) return 0;

  /* decap on an exact-size heap copy so ASan catches any over-read */
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, pkt, len);
  struct tunctl_rxstate rx = {data[1]};
  uint8_t *inner = NULL;
  size_t ilen = 0;
  int r = tunctl_decap(&cfg, &rx, copy, len, &inner, &ilen);
  if (r == DR_OK) {
    if (inner < copy || inner + ilen > copy + len) __builtin_trap();
    /* touch the result */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < ilen; i++) sink ^= inner[i];
    (void)sink;
  } else if (r < 0 || r >= DR__COUNT) {
    __builtin_trap();
  }
  free(copy);

  /* encap of the same bytes as an inner packet */
  uint8_t *buf = malloc(TUNCTL_HEADROOM + len + 1);
  memcpy(buf + TUNCTL_HEADROOM, pkt, len);
  static uint8_t icmp[2048];
  struct tunctl_txstate tx = {0};
  uint8_t *out;
  size_t outlen;
  uint32_t dst;
  int why;
  int e = tunctl_encap(&cfg, &tx, buf, len, &out, &outlen, &dst, icmp, &why);
  if (e == TX_SEND) {
    if (out < buf || out + outlen > buf + TUNCTL_HEADROOM + len) __builtin_trap();
    /* what we send must decapsulate at a matching peer to exactly the inner packet */
    struct tunctl_cfg peer = cfg;
    peer.local = dst;
    peer.remote = cfg.remote ? cfg.local : 0;
    peer.nrouters = 0;
    if (cfg.local && cfg.mode != TM_ISATAP && !(cfg.mode == TM_SIT && !cfg.remote)) {
      uint8_t *o2 = malloc(outlen);
      memcpy(o2, out, outlen);
      struct tunctl_rxstate prx = {0};
      uint8_t *in2;
      size_t il2;
      int d = tunctl_decap(&peer, &prx, o2, outlen, &in2, &il2);
      /* the peer may refuse an ill-formed inner packet, but what it accepts is exactly what was sent */
      if (d == DR_OK && (il2 != len || memcmp(in2, pkt, len) != 0)) __builtin_trap();
      free(o2);
    }
  } else if (e == TX_ICMP) {
    if (outlen > 1280 + 48 || outlen < 28) __builtin_trap();
  }
  free(buf);

  /* offloads: TSO segmentation of the input as a TCP packet, then coalescing the segments back */
  struct tunctl_tso t;
  uint8_t *tso = malloc(len ? len : 1);
  memcpy(tso, pkt, len);
  if (len <= 65535 && tunctl_tso_parse(tso, len, &t) == 0) {
    unsigned mss = 1 + (unsigned)data[3] * 8u;
    static uint8_t seg[65536 + 64];
    static struct tunctl_gro g;
    tunctl_gro_reset(&g);
    size_t total = 0;
    for (unsigned i = 0; i < 256; i++) {
      size_t sl = tunctl_tso_segment(tso, &t, mss, i, seg);
      if (!sl) break;
      if (sl > t.hl + mss) __builtin_trap();
      total += sl - t.hl;
      int r = tunctl_gro_add(&g, seg, sl);
      if (r == -1) {
        struct virtio_net_hdr vh;
        tunctl_gro_finish(&g, &vh);
        tunctl_gro_reset(&g);
        tunctl_gro_add(&g, seg, sl);
      }
      if (g.len > TUNCTL_GRO_MAX) __builtin_trap();
    }
    struct virtio_net_hdr vh;
    size_t glen = tunctl_gro_finish(&g, &vh);
    if (glen > TUNCTL_GRO_MAX) __builtin_trap();
    (void)total;
  }
  if (len > 4) tunctl_finish_csum(tso, len, data[2], data[3]);
  free(tso);
  return 0;
}
