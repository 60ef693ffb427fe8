/* TUN offloads in user space: finishing partial checksums and segmenting TSO packets read from a TUN device
 * with IFF_VNET_HDR (TX), coalescing consecutive TCP segments into one GSO write (RX). Pure functions. */
#include "offload.h"
#include "tunctl.h"

#include <string.h>

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum) { return tunctl_sum(p, len, sum); }
static uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/* pseudo-header sum for TCP over IPv4/IPv6 with the given L4 length */
static uint32_t pseudo(const uint8_t *ip, int v6, size_t l4len) {
  uint32_t s = 0;
  if (v6) s = sum16(ip + 8, 32, 0);
  else s = sum16(ip + 12, 8, 0);
  s += 6;
  s += (uint32_t)(l4len & 0xffff) + (uint32_t)(l4len >> 16);
  return s;
}

int tunctl_finish_csum(uint8_t *pkt, size_t len, unsigned start, unsigned off) {
  if ((size_t)start + off + 2 > len) return -1;
  uint16_t c = (uint16_t)~fold(sum16(pkt + start, len - start, 0));
  if (c == 0) c = 0xffff;
  wr16(pkt + start + off, c);
  return 0;
}

int tunctl_tso_parse(const uint8_t *pkt, size_t len, struct tunctl_tso *t) {
  if (len < 20) return -1;
  int v6 = (pkt[0] >> 4) == 6;
  size_t iphl;
  if (v6) {
    if (len < 60 || pkt[6] != 6) return -1; /* extension headers not supported */
    iphl = 40;
  } else {
    if ((pkt[0] >> 4) != 4 || pkt[9] != 6) return -1;
    iphl = (size_t)(pkt[0] & 15) * 4;
    if (iphl < 20) return -1;
  }
  if (len < iphl + 20) return -1;
  size_t thl = (size_t)(pkt[iphl + 12] >> 4) * 4;
  if (thl < 20 || len < iphl + thl) return -1;
  t->v6 = v6;
  t->iphl = iphl;
  t->hl = iphl + thl;
  t->payload = len - t->hl;
  return 0;
}

size_t tunctl_tso_segment(const uint8_t *pkt, const struct tunctl_tso *t, unsigned mss, unsigned i, uint8_t *out) {
  size_t off = (size_t)i * mss;
  if (off >= t->payload) return 0;
  size_t seglen = t->payload - off < mss ? t->payload - off : mss;
  int last = off + seglen >= t->payload;
  memcpy(out, pkt, t->hl);
  memcpy(out + t->hl, pkt + t->hl + off, seglen);
  size_t tot = t->hl + seglen;
  if (t->v6) {
    wr16(out + 4, (uint16_t)(tot - 40));
  } else {
    wr16(out + 2, (uint16_t)tot);
    wr16(out + 4, (uint16_t)(rd16(pkt + 4) + i));
    wr16(out + 10, 0);
    wr16(out + 10, (uint16_t)~fold(sum16(out, t->iphl, 0)));
  }
  uint8_t *tcp = out + t->iphl;
  wr32(tcp + 4, rd32(pkt + t->iphl + 4) + (uint32_t)off);
  uint8_t fl = tcp[13];
  if (!last) fl &= (uint8_t)~0x09; /* FIN, PSH only on the last segment */
  if (i > 0) fl &= (uint8_t)~0x80; /* CWR only on the first */
  tcp[13] = fl;
  wr16(tcp + 16, 0);
  size_t l4 = tot - t->iphl;
  uint16_t c = (uint16_t)~fold(sum16(tcp, l4, pseudo(out, t->v6, l4)));
  wr16(tcp + 16, c);
  return tot;
}

/* ---- RX coalescing ---- */

void tunctl_gro_reset(struct tunctl_gro *g) { g->len = 0; g->nseg = 0; }

/* Can pkt (a complete inner IPv4/IPv6 TCP segment) start a coalesced packet? Returns hl or 0. */
static size_t gro_eligible(const uint8_t *pkt, size_t len, int *v6, size_t *iphl) {
  if (len < 40) return 0;
  if ((pkt[0] >> 4) == 4) {
    if (pkt[0] != 0x45 || pkt[9] != 6) return 0; /* no IP options */
    if (rd16(pkt + 6) & 0x3fff) return 0;        /* fragment */
    if (rd16(pkt + 2) != len) return 0;
    *v6 = 0;
    *iphl = 20;
  } else if ((pkt[0] >> 4) == 6) {
    if (len < 60 || pkt[6] != 6 || (size_t)rd16(pkt + 4) + 40 != len) return 0;
    *v6 = 1;
    *iphl = 40;
  } else {
    return 0;
  }
  const uint8_t *tcp = pkt + *iphl;
  size_t thl = (size_t)(tcp[12] >> 4) * 4;
  if (thl < 20 || *iphl + thl >= len) return 0; /* needs payload */
  if (tcp[13] & 0x27) return 0;                  /* FIN, SYN, RST, URG */
  /* merged segments get one partial checksum the kernel trusts: verify each segment's own first */
  size_t l4 = len - *iphl;
  if (fold(sum16(tcp, l4, pseudo(pkt, *v6, l4))) != 0xffff) return 0;
  return *iphl + thl;
}

int tunctl_gro_add(struct tunctl_gro *g, const uint8_t *pkt, size_t len) {
  int v6;
  size_t iphl;
  size_t hl = gro_eligible(pkt, len, &v6, &iphl);
  if (!hl) return 0;
  size_t plen = len - hl;
  if (g->len) {
    const uint8_t *h = g->buf;
    int same = v6 == g->v6 && hl == g->hl && plen <= g->mss && g->len + plen <= TUNCTL_GRO_MAX &&
               !g->closed;
    if (same) {
      if (v6) same = memcmp(h, pkt, 4) == 0 && h[7] == pkt[7] && memcmp(h + 8, pkt + 8, 32) == 0;
      else same = h[1] == pkt[1] && h[8] == pkt[8] && memcmp(h + 12, pkt + 12, 8) == 0;
    }
    const uint8_t *ht = h + iphl, *pt = pkt + iphl;
    if (same) {
      same = memcmp(ht, pt, 4) == 0                                 /* ports */
             && rd32(pt + 4) == g->next_seq                         /* in order */
             && memcmp(ht + 8, pt + 8, 4) == 0                      /* ack */
             && (ht[13] & ~0x08) == (pt[13] & ~0x08)                /* flags but PSH */
             && memcmp(ht + 14, pt + 14, 2) == 0                    /* window */
             && memcmp(ht + 20, pt + 20, hl - iphl - 20) == 0;      /* options (timestamps) */
    }
    if (same) {
      memcpy(g->buf + g->len, pkt + hl, plen);
      g->len += plen;
      g->next_seq += (uint32_t)plen;
      g->nseg++;
      if (pt[13] & 0x08) g->buf[iphl + 13] |= 0x08;
      if (plen < g->mss || (pt[13] & 0x08)) g->closed = 1; /* a short or pushed segment ends the train */
      return 1;
    }
    return -1; /* caller flushes and retries */
  }
  memcpy(g->buf, pkt, len);
  g->len = len;
  g->hl = hl;
  g->iphl = iphl;
  g->v6 = v6;
  g->mss = (unsigned)plen;
  g->next_seq = rd32(pkt + iphl + 4) + (uint32_t)plen;
  g->nseg = 1;
  g->closed = (pkt[iphl + 13] & 0x08) != 0;
  return 1;
}

size_t tunctl_gro_finish(struct tunctl_gro *g, struct virtio_net_hdr *vh) {
  memset(vh, 0, sizeof *vh);
  if (!g->len) return 0;
  if (g->nseg == 1) return g->len; /* a plain packet: the kernel checks its checksum */
  uint8_t *p = g->buf;
  if (g->v6) {
    wr16(p + 4, (uint16_t)(g->len - 40));
  } else {
    wr16(p + 2, (uint16_t)g->len);
    wr16(p + 10, 0);
    wr16(p + 10, (uint16_t)~fold(sum16(p, 20, 0)));
  }
  size_t l4 = g->len - g->iphl;
  /* CHECKSUM_PARTIAL: the field holds the pseudo-header sum; the segments' checksums were verified
   * individually by nobody, so let the kernel see them as to-be-computed (it trusts partial checksums) */
  wr16(p + g->iphl + 16, fold(pseudo(p, g->v6, l4)));
  vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  vh->gso_type = g->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
  vh->hdr_len = (uint16_t)g->hl;
  vh->gso_size = (uint16_t)g->mss;
  vh->csum_start = (uint16_t)g->iphl;
  vh->csum_offset = 16;
  return g->len;
}
