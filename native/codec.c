/* Pure packet codecs of the userspace encapsulator: GRE / IPIP / SIT / ISATAP encap and decap,
 * byte-compatible with the Linux kernel (net/ipv4/ip_gre.c, ip_tunnel.c, ipip.c, net/ipv6/sit.c). */
#include "tunctl.h"

#include <string.h>

const char *const tunctl_drop_names[DR__COUNT] = {
    "ok",        "malformed", "truncated",  "bad_proto", "bad_source", "bad_dest",          "bad_key", "bad_csum",
    "csum_flags", "seq",      "gre_flags", "inner_proto", "inner_malformed", "ecn", "spoofed", "no_tunnel",
};

const char *const tunctl_txdrop_names[TXD__COUNT] = {"none", "tx_malformed", "tx_inner_proto", "tx_no_route",
                                                     "tx_too_big"};

#define GRE_CSUM 0x8000
#define GRE_ROUTING 0x4000
#define GRE_KEY 0x2000
#define GRE_SEQ 0x1000
#define GRE_VERSION 0x0007

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
/* network-order 32-bit value as stored in memory */
static inline uint32_t ld32n(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* ones-complement sum of data added to sum (both as big-endian 16-bit words); word-at-a-time in native
 * order (RFC 1071: the sum is byte-order independent), swapped once at the end */
uint32_t tunctl_sum(const void *data, size_t len, uint32_t sum) {
  const uint8_t *p = data;
  uint64_t acc = 0;
  while (len >= 16) {
    uint32_t w[4];
    memcpy(w, p, 16);
    acc += (uint64_t)w[0] + w[1] + w[2] + w[3];
    p += 16;
    len -= 16;
  }
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    acc += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    acc += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint16_t w = 0;
    memcpy(&w, p, 1);
    acc += w;
  }
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  uint16_t v = (uint16_t)acc;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  v = (uint16_t)((v >> 8) | (v << 8));
#endif
  return sum + v;
}
#define csum_add tunctl_sum

static uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}
/* Internet checksum (RFC 1071) in host order; 0 over data including a correct checksum field */
uint16_t tunctl_csum(const void *data, size_t len, uint32_t sum) { return csum_fold(csum_add(data, len, sum)); }

void tunctl_cfg_init(struct tunctl_cfg *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->tos = 1;
  cfg->pmtudisc = 1;
  cfg->inner = TP_IPV4 | TP_IPV6;
  cfg->sixrd_prefix[0] = 0x20;
  cfg->sixrd_prefix[1] = 0x02;
  cfg->sixrd_plen = 16;
}

int tunctl_default_mtu(const struct tunctl_cfg *cfg) {
  if (cfg->mode == TM_GRE) return 1476 - 4 * (!!cfg->has_okey + !!cfg->ocsum + !!cfg->oseq);
  return 1480;
}

int tunctl_outer_proto(const struct tunctl_cfg *cfg) {
  switch (cfg->mode) {
  case TM_GRE: return 47;
  case TM_IPIP: return 4;
  default: return 41;
  }
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, int plen) {
  int full = plen / 8, rest = plen % 8;
  if (memcmp(a, b, (size_t)full) != 0) return 0;
  if (rest) {
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    if ((a[full] & m) != (b[full] & m)) return 0;
  }
  return 1;
}

/* kernel check_6rd / try_6rd: IPv4 address embedded in a 6rd (or 6to4) IPv6 address */
static int check_6rd(const struct tunctl_cfg *cfg, const uint8_t *v6, uint32_t *v4) {
  if (cfg->sixrd_plen <= 0 && cfg->relay_plen <= 0) return 0;
  if (!prefix_equal(v6, cfg->sixrd_prefix, cfg->sixrd_plen)) return 0;
  unsigned pbw0 = (unsigned)cfg->sixrd_plen >> 5, pbi0 = (unsigned)cfg->sixrd_plen & 0x1f;
  uint32_t d = 0;
  if (pbw0 > 3) return 0;
  if (cfg->relay_plen < 32) d = (rd32(v6 + 4 * pbw0) << pbi0) >> cfg->relay_plen;
  int pbi1 = (int)pbi0 - cfg->relay_plen;
  if (pbi1 > 0 && pbw0 + 1 <= 3) d |= rd32(v6 + 4 * (pbw0 + 1)) >> (32 - pbi1);
  uint32_t out = cfg->relay_prefix;
  uint8_t b[4];
  wr32(b, d);
  out |= ld32n(b);
  *v4 = out;
  return 1;
}

/* ipv6_addr_is_isatap: the ::0:5efe:a.b.c.d or ::200:5efe:a.b.c.d interface identifier (tunctl.h) */
int tunctl_is_isatap_addr(const uint8_t v6[16]) { return (v6[8] | 0x02) == 0x02 && v6[9] == 0 && v6[10] == 0x5e && v6[11] == 0xfe; }

static int set_ce_v4(uint8_t *ip) {
  /* RFC 6040: mark CE and patch the header checksum incrementally (as the kernel's IP_ECN_set_ce) */
  uint8_t old = ip[1];
  uint8_t nw = (uint8_t)(old | 3);
  if (old == nw) return 1;
  ip[1] = nw;
  ip[10] = ip[11] = 0;
  uint16_t c = tunctl_csum(ip, (size_t)(ip[0] & 15) * 4, 0);
  wr16(ip + 10, c);
  return 1;
}

static void set_ecn(uint8_t *inner, int v6, uint8_t ecn) {
  if (v6) {
    inner[1] = (uint8_t)((inner[1] & ~0x30) | (ecn << 4));
  } else {
    inner[1] = (uint8_t)((inner[1] & ~3) | ecn);
    inner[10] = inner[11] = 0;
    wr16(inner + 10, tunctl_csum(inner, (size_t)(inner[0] & 15) * 4, 0));
  }
}

static uint8_t inner_ecn(const uint8_t *inner, int v6) { return v6 ? (uint8_t)((inner[1] >> 4) & 3) : (uint8_t)(inner[1] & 3); }

int tunctl_decap(const struct tunctl_cfg *cfg, struct tunctl_rxstate *rx, uint8_t *pkt, size_t len,
                 uint8_t **inner, size_t *inner_len) {
  if (len < 20) return DR_TRUNCATED;
  if ((pkt[0] >> 4) != 4) return DR_MALFORMED;
  size_t ihl = (size_t)(pkt[0] & 15) * 4;
  if (ihl < 20) return DR_MALFORMED;
  if (ihl > len) return DR_TRUNCATED;
  size_t tot = rd16(pkt + 2);
  if (tot < ihl) return DR_MALFORMED;
  if (tot > len) return DR_TRUNCATED;
  len = tot;
  if (tunctl_csum(pkt, ihl, 0) != 0) return DR_MALFORMED;
  if (rd16(pkt + 6) & 0x3fff) return DR_MALFORMED; /* fragments are reassembled before raw delivery */
  uint8_t proto = pkt[9];
  uint32_t saddr = ld32n(pkt + 12), daddr = ld32n(pkt + 16);
  uint8_t outer_ecn = pkt[1] & 3;

  int want_v6;
  switch (cfg->mode) {
  case TM_GRE:
    if (proto != 47) return DR_BAD_PROTO;
    break;
  case TM_IPIP:
    if (proto != 4) return DR_BAD_PROTO;
    break;
  case TM_SIT:
    if (proto == 41 && (cfg->inner & TP_IPV6)) break;
    if (proto == 4 && (cfg->inner & TP_IPV4)) break;
    return DR_BAD_PROTO;
  case TM_ISATAP:
    if (proto != 41) return DR_BAD_PROTO;
    break;
  default: return DR_BAD_PROTO;
  }
  if (!cfg->dispatched && cfg->local && daddr != cfg->local) return DR_BAD_DEST;
  if (!cfg->dispatched && cfg->remote && saddr != cfg->remote) return DR_BAD_SOURCE;

  uint8_t *p = pkt + ihl;
  size_t rem = len - ihl;
  size_t off = 0;

  if (cfg->mode == TM_GRE) {
    if (rem < 4) return DR_TRUNCATED;
    uint16_t flags = rd16(p), ptype = rd16(p + 2);
    if (flags & (GRE_VERSION | GRE_ROUTING)) return DR_GRE_FLAGS;
    size_t hlen = 4 + ((flags & GRE_CSUM) ? 4 : 0) + ((flags & GRE_KEY) ? 4 : 0) + ((flags & GRE_SEQ) ? 4 : 0);
    if (rem < hlen) return DR_TRUNCATED;
    off = 4;
    if (flags & GRE_CSUM) {
      if (tunctl_csum(p, rem, 0) != 0) return DR_BAD_CSUM;
      off += 4;
    }
    uint32_t key = 0, seq = 0;
    if (flags & GRE_KEY) {
      key = rd32(p + off);
      off += 4;
    }
    if (flags & GRE_SEQ) {
      seq = rd32(p + off);
      off += 4;
    }
    /* ip_tunnel_key_match: a keyed tunnel takes only its key, an unkeyed one only unkeyed packets (dispatched:
     * ip_tunnel_lookup matched the key, with its last pass comparing key values only) */
    if (cfg->dispatched) {
    } else if (cfg->has_ikey) {
      if (!(flags & GRE_KEY) || key != cfg->ikey) return DR_BAD_KEY;
    } else if (flags & GRE_KEY) {
      return DR_BAD_KEY;
    }
    if (!!(flags & GRE_CSUM) != !!cfg->icsum) return DR_CSUM_FLAGS;
    if (cfg->iseq) {
      if (!(flags & GRE_SEQ)) return DR_SEQ;
      if (rx->i_seqno && (int32_t)(seq - rx->i_seqno) < 0) return DR_SEQ;
      rx->i_seqno = seq + 1;
    }
    if (ptype == 0x0800) want_v6 = 0;
    else if (ptype == 0x86dd) want_v6 = 1;
    else return DR_INNER_PROTO;
  } else {
    want_v6 = (proto == 41);
  }

  uint8_t *in = p + off;
  size_t ilen = rem - off;
  if (want_v6) {
    if (ilen < 40 || (in[0] >> 4) != 6) return DR_INNER_MALFORMED;
    if ((size_t)rd16(in + 4) + 40 > ilen) return DR_INNER_MALFORMED;
  } else {
    if (ilen < 20 || (in[0] >> 4) != 4 || (in[0] & 15) < 5) return DR_INNER_MALFORMED;
    size_t itot = rd16(in + 2);
    if (itot < (size_t)(in[0] & 15) * 4 || itot > ilen) return DR_INNER_MALFORMED;
  }

  if ((cfg->mode == TM_SIT || cfg->mode == TM_ISATAP) && want_v6) {
    const uint8_t *src6 = in + 8, *dst6 = in + 24;
    if (cfg->mode == TM_ISATAP) {
      /* isatap_chksrc: outer source in the potential router list, or an ISATAP source embedding it */
      int ok = 0;
      for (int i = 0; i < cfg->nrouters; i++)
        if (cfg->routers[i] == saddr) ok = 1;
      if (!ok && tunctl_is_isatap_addr(src6) && ld32n(src6 + 12) == saddr) ok = 1;
      if (!ok) return DR_SPOOFED;
    } else if (!cfg->remote) {
      /* packet_is_spoofed (NBMA sit): 6rd/6to4 addresses must embed the outer addresses */
      uint32_t v4;
      if (check_6rd(cfg, src6, &v4) && v4 != saddr) return DR_SPOOFED;
      if (cfg->local && check_6rd(cfg, dst6, &v4) && v4 != daddr) return DR_SPOOFED;
    }
  }

  /* RFC 6040 ECN decapsulation (IP_ECN_decapsulate) */
  uint8_t iecn = inner_ecn(in, want_v6);
  if (outer_ecn == 3) {
    if (iecn == 0) return DR_ECN;
    if (iecn != 3) {
      if (want_v6) set_ecn(in, 1, 3);
      else set_ce_v4(in);
    }
  } else if (outer_ecn == 1 && iecn == 2) {
    set_ecn(in, want_v6, 1);
  }

  *inner = in;
  *inner_len = ilen;
  return DR_OK;
}

/* ICMP "fragmentation needed" (IPv4) / "packet too big" (IPv6) towards the inner sender, from the inner destination */
static size_t build_icmp(const uint8_t *in, size_t len, int v6, int mtu, uint8_t *o) {
  if (!v6) {
    size_t ihl = (size_t)(in[0] & 15) * 4;
    size_t quote = len < 548 ? len : 548;
    if (quote < ihl + 8 && len >= ihl + 8) quote = ihl + 8;
    size_t tot = 20 + 8 + quote;
    memset(o, 0, 28);
    o[0] = 0x45;
    o[1] = 0xc0;
    wr16(o + 2, (uint16_t)tot);
    o[8] = 64;
    o[9] = 1;
    memcpy(o + 12, in + 16, 4);
    memcpy(o + 16, in + 12, 4);
    wr16(o + 10, tunctl_csum(o, 20, 0));
    uint8_t *ic = o + 20;
    ic[0] = 3;
    ic[1] = 4;
    wr16(ic + 6, (uint16_t)mtu);
    memcpy(ic + 8, in, quote);
    wr16(ic + 2, tunctl_csum(ic, 8 + quote, 0));
    return tot;
  }
  return tunctl_icmp6_build(2, 0, (uint32_t)mtu, in + 24, in, len, o); /* ICMPV6_PKT_TOOBIG */
}

size_t tunctl_icmp6_build(uint8_t type, uint8_t code, uint32_t info, const uint8_t *src6, const uint8_t *inner, size_t len,
                          uint8_t *o) {
  size_t quote = len < 1280 - 48 ? len : 1280 - 48;
  size_t plen = 8 + quote;
  memset(o, 0, 48);
  o[0] = 0x60;
  wr16(o + 4, (uint16_t)plen);
  o[6] = 58;
  o[7] = 64; /* ip6_sk_dst_hoplimit: the default hop limit */
  memcpy(o + 8, src6, 16);
  memcpy(o + 24, inner + 8, 16);
  uint8_t *ic = o + 40;
  ic[0] = type;
  ic[1] = code;
  wr32(ic + 4, info);
  memcpy(ic + 8, inner, quote);
  uint32_t sum = csum_add(o + 8, 32, 0) + (uint32_t)plen + 58;
  wr16(ic + 2, csum_fold(csum_add(ic, plen, sum)));
  return 40 + plen;
}

int tunctl_encap(const struct tunctl_cfg *cfg, struct tunctl_txstate *tx, uint8_t *buf, size_t len,
                 uint8_t **out, size_t *out_len, uint32_t *dst, uint8_t *icmpbuf, int *why) {
  uint8_t *in = buf + TUNCTL_HEADROOM;
  *why = TXD_NONE;
  if (len < 1) return (*why = TXD_MALFORMED), TX_DROP;
  int v6 = (in[0] >> 4) == 6;
  if (v6) {
    if (len < 40) return (*why = TXD_MALFORMED), TX_DROP;
  } else if ((in[0] >> 4) == 4) {
    if (len < 20 || (in[0] & 15) < 5 || (size_t)(in[0] & 15) * 4 > len) return (*why = TXD_MALFORMED), TX_DROP;
  } else {
    return (*why = TXD_MALFORMED), TX_DROP;
  }

  uint8_t proto;
  switch (cfg->mode) {
  case TM_GRE: proto = 47; break;
  case TM_IPIP:
    if (v6 || !(cfg->inner & TP_IPV4)) return (*why = TXD_INNER_PROTO), TX_DROP;
    proto = 4;
    break;
  case TM_SIT:
    if (v6 ? !(cfg->inner & TP_IPV6) : !(cfg->inner & TP_IPV4)) return (*why = TXD_INNER_PROTO), TX_DROP;
    proto = v6 ? 41 : 4;
    break;
  case TM_ISATAP:
    if (!v6) return (*why = TXD_INNER_PROTO), TX_DROP;
    proto = 41;
    break;
  default: return (*why = TXD_INNER_PROTO), TX_DROP;
  }

  uint32_t d = cfg->remote;
  if (!d) {
    if (v6 && (cfg->mode == TM_SIT || cfg->mode == TM_ISATAP)) {
      const uint8_t *dst6 = in + 24;
      uint32_t v4;
      if (check_6rd(cfg, dst6, &v4)) d = v4;
      if (!d && tunctl_is_isatap_addr(dst6)) d = ld32n(dst6 + 12);
      if (!d && cfg->mode == TM_ISATAP && cfg->nrouters) {
        d = cfg->routers[0];
        for (int i = 0; i < cfg->nrouters; i++)
          if (cfg->router_default[i]) {
            d = cfg->routers[i];
            break;
          }
      }
    } else if (!v6) {
      d = ld32n(in + 16); /* NBMA without a neighbour table: the inner destination is the next hop */
    }
    if (!d) return (*why = TXD_NO_ROUTE), TX_DROP;
  }

  int inner_df = !v6 && (in[6] & 0x40);
  int mtu = cfg->mtu > 0 ? cfg->mtu : tunctl_default_mtu(cfg);
  if (len > (size_t)mtu && (inner_df || (v6 && mtu >= 1280))) {
    *out_len = build_icmp(in, len, v6, mtu, icmpbuf);
    *out = icmpbuf;
    return TX_ICMP;
  }

  size_t ghl = 0;
  if (cfg->mode == TM_GRE) ghl = 4 + (cfg->ocsum ? 4 : 0) + (cfg->has_okey ? 4 : 0) + (cfg->oseq ? 4 : 0);
  size_t tot = 20 + ghl + len;
  if (tot > 65535) return (*why = TXD_TOO_BIG), TX_DROP;
  uint8_t *o = in - ghl - 20;

  if (ghl) {
    uint8_t *g = o + 20;
    uint16_t flags = (cfg->ocsum ? GRE_CSUM : 0) | (cfg->has_okey ? GRE_KEY : 0) | (cfg->oseq ? GRE_SEQ : 0);
    wr16(g, flags);
    wr16(g + 2, v6 ? 0x86dd : 0x0800);
    size_t goff = 4;
    if (cfg->ocsum) {
      wr32(g + goff, 0);
      goff += 4;
    }
    if (cfg->has_okey) {
      wr32(g + goff, cfg->okey);
      goff += 4;
    }
    if (cfg->oseq) {
      tx->o_seqno++;
      wr32(g + goff, tx->o_seqno);
      goff += 4;
    }
    if (cfg->ocsum) wr16(g + 4, tunctl_csum(g, ghl + len, 0));
  }

  uint8_t ids = v6 ? (uint8_t)(((in[0] & 0x0f) << 4) | (in[1] >> 4)) : in[1];
  /* ip_tunnel_xmit inherits when bit 0 is set; sit's IPv6 path (ipip6_tunnel_xmit) only for exactly 1 */
  int inherit = (v6 && (cfg->mode == TM_SIT || cfg->mode == TM_ISATAP)) ? cfg->tos == 1 : (cfg->tos & 1);
  uint8_t tos = inherit ? ids : cfg->tos;
  uint8_t iecn = ids & 3;
  tos = (uint8_t)((tos & ~3) | (iecn == 3 ? 2 : iecn)); /* INET_ECN_encapsulate */
  uint8_t ttl = cfg->ttl ? cfg->ttl : (v6 ? in[7] : in[8]);
  int df = cfg->pmtudisc || (!v6 && !cfg->ignore_df && inner_df);

  o[0] = 0x45;
  o[1] = tos;
  wr16(o + 2, (uint16_t)tot);
  wr16(o + 4, 0); /* id: the kernel picks one (0 for DF packets, as its tunnels do) */
  wr16(o + 6, df ? 0x4000 : 0);
  o[8] = ttl;
  o[9] = proto;
  wr16(o + 10, 0);
  memcpy(o + 12, &cfg->local, 4);
  memcpy(o + 16, &d, 4);
  wr16(o + 10, tunctl_csum(o, 20, 0));
  *out = o;
  *out_len = tot;
  *dst = d;
  return TX_SEND;
}

size_t tunctl_icmp_too_big(const uint8_t *inner, size_t len, int mtu, uint8_t *out) {
  if (len < 1) return 0;
  int v6 = (inner[0] >> 4) == 6;
  if (v6) {
    if (len < 40 || mtu < 1280) return 0;
  } else {
    if ((inner[0] >> 4) != 4 || len < 20 || !(inner[6] & 0x40)) return 0; /* only DF packets get "frag needed" */
  }
  return build_icmp(inner, len, v6, mtu, out);
}
