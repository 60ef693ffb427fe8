/* tunctl kernel twin: ICMP errors about outer packets and the tunnels' error state, as Linux 6.1 handles them.
 *
 * icmp_rcv / icmp_unreach (net/ipv4/icmp.c) validate the ICMP (checksum, a quoted IPv4 header with ihl >= 5 and 8
 * more bytes, destination-unreachable codes <= NR_ICMP_UNREACH) and hand it to the quoted protocol's handler:
 *   47: gre_demux.c gre_err (GRE version 0 only) → ip_gre.c gre_err: gre_parse_header on the quoted packet (its
 *       checksum is not checked: csum_err is NULL); frag-needed → ipv4_update_pmtu and redirect → ipv4_redirect
 *       *before* any tunnel lookup; else ipgre_err: ip_tunnel_lookup(link = receiving device, remote = quoted
 *       daddr, local = quoted saddr, the quoted flags and key).
 *    4: tunnel4.c tunnel4_err: ipip.c ipip_err (ip_tunnel_lookup without key), and when it returns -ENOENT (no
 *       tunnel, or the tunnel's remote is any) sit.c's ipip_handler → ipip6_err.
 *   41: sit.c ipip6_err: ipip6_tunnel_lookup(receiving device, remote = quoted daddr, local = quoted saddr).
 * The lookups are dispatch.c's (tunctl_select on the quoted header with its addresses swapped). */
#include "icmperr.h"

#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static uint32_t ld32n(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static int is_multicast(uint32_t a) { return (((const uint8_t *)&a)[0] & 0xf0) == 0xe0; }

enum { ICMP_DEST_UNREACH = 3, ICMP_SOURCE_QUENCH = 4, ICMP_REDIRECT = 5, ICMP_TIME_EXCEEDED = 11, ICMP_PARAMETERPROB = 12 };
enum { ICMP_PORT_UNREACH = 3, ICMP_FRAG_NEEDED = 4, ICMP_SR_FAILED = 5, NR_ICMP_UNREACH = 15, ICMP_EXC_TTL = 0 };

/* the types ipip_err and ipip6_err act on: unreachable except source route failed, TTL exceeded in transit, redirect */
static int ipip_err_type(int type, int code) {
  if (type == ICMP_DEST_UNREACH) return code != ICMP_SR_FAILED;
  if (type == ICMP_TIME_EXCEEDED) return code == ICMP_EXC_TTL;
  return type == ICMP_REDIRECT;
}

/* the tunnel the kernel's lookup finds for a quoted outer packet (local = its source, remote = its destination):
 * a receive-direction header for tunctl_select, followed by the quoted GRE header when there is one */
static int lookup(const struct tunctl_table *tab, int proto, uint32_t local, uint32_t remote, const uint8_t *greh,
                  size_t greh_len, int ifindex) {
  uint8_t b[20 + 16];
  memset(b, 0, 20);
  b[0] = 0x45;
  wr16(b + 2, (uint16_t)(20 + greh_len));
  b[8] = 64;
  b[9] = (uint8_t)proto;
  memcpy(b + 12, &remote, 4);
  memcpy(b + 16, &local, 4);
  if (greh_len) memcpy(b + 20, greh, greh_len);
  return tunctl_select(tab, b, 20 + greh_len, ifindex, NULL);
}

/* icmp6_send's eligibility: a unicast (not unspecified) source, a destination not multicast, not about an
 * ICMPv6 error (is_ineligible; only a directly following ICMPv6 header is looked at) */
static int icmp6_eligible(const uint8_t *in, size_t len) {
  if (len < 40 || (in[0] >> 4) != 6) return 0;
  static const uint8_t any[16];
  if (!memcmp(in + 8, any, 16) || in[8] == 0xff || in[24] == 0xff) return 0;
  if (in[6] == 58 && (len < 41 || in[40] < 128)) return 0;
  return 1;
}

/* net/ipv6/icmp.c ip6_err_gen_icmpv6_unreach: the inner IPv6 packet quoted at q (avail bytes) gets ICMPv6 address
 * unreachable (time exceeded for an ICMP time exceeded) from ::ffff:router. Returns the length written; 0 when
 * icmp6_send declines or cannot route it (the handler is done all the same: the kernel function returns 0 then);
 * -1 when the quote is
 * shorter than the IPv6 header and 8 bytes (pskb_may_pull fails: the handler goes on to err_count). */
static long gen_icmpv6_unreach(const uint8_t *q, size_t avail, int type, uint32_t router, uint8_t *out) {
  if (avail < 48) return -1;
  if (!icmp6_eligible(q, avail)) return 0;
  /* icmp6_send → icmpv6_route_lookup → ip6_dst_lookup_tail refuses a v4-mapped source towards a destination that is
   * not v4-mapped (-EAFNOSUPPORT): nothing is sent unless the inner source itself is v4-mapped (measured in UML
   * 6.1: the sender of an IPv6 packet through sit hears nothing, Icmp6OutDestUnreachs stays 0) */
  static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(q + 8, v4mapped, 12) != 0) return 0;
  uint8_t src6[16] = {0};
  src6[10] = src6[11] = 0xff; /* ipv6_addr_set_v4mapped */
  memcpy(src6 + 12, &router, 4);
  if (type == ICMP_TIME_EXCEEDED) return (long)tunctl_icmp6_build(3, 0, 0, src6, q, avail, out); /* ICMPV6_EXC_HOPLIMIT */
  return (long)tunctl_icmp6_build(1, 3, 0, src6, q, avail, out);                                  /* ICMPV6_ADDR_UNREACH */
}

int tunctl_icmperr(const struct tunctl_table *tab, const uint8_t *pkt, size_t len, int ifindex,
                   struct tunctl_icmperr *res, uint8_t *out, size_t *out_len) {
  memset(res, 0, sizeof *res);
  res->tunnel = -1;
  *out_len = 0;
  /* the ICMP packet (ip_rcv has validated its header) */
  if (len < 20 || (pkt[0] >> 4) != 4) return IEA_NONE;
  size_t ihl = (size_t)(pkt[0] & 15) * 4, tot = rd16(pkt + 2);
  if (ihl < 20 || tot < ihl || tot > len || pkt[9] != 1 || (rd16(pkt + 6) & 0x3fff)) return IEA_NONE;
  const uint8_t *ic = pkt + ihl;
  size_t ilen = tot - ihl;
  if (ilen < 8 || tunctl_csum(ic, ilen, 0) != 0) return IEA_NONE; /* icmp_rcv: csum_error */
  uint8_t type = ic[0], code = ic[1];
  res->type = type;
  res->code = code;
  if (type != ICMP_DEST_UNREACH && type != ICMP_SOURCE_QUENCH && type != ICMP_REDIRECT && type != ICMP_TIME_EXCEEDED &&
      type != ICMP_PARAMETERPROB)
    return IEA_NONE;
  if (type == ICMP_DEST_UNREACH && code > NR_ICMP_UNREACH) return IEA_NONE;
  /* the quoted outer packet: our own (saddr = a tunnel's local, daddr = its remote) */
  const uint8_t *q = ic + 8;
  size_t qlen = ilen - 8;
  if (qlen < 20) return IEA_NONE;
  size_t qihl = (size_t)(q[0] & 15) * 4;
  if (qihl < 20 || qlen < qihl + 8) return IEA_NONE;
  uint32_t local = ld32n(q + 12), remote = ld32n(q + 16), router = ld32n(pkt + 12);
  int qproto = q[9];
  int frag_needed = type == ICMP_DEST_UNREACH && code == ICMP_FRAG_NEEDED;
  res->dst = remote;
  if (frag_needed) res->mtu = rd16(ic + 6); /* ip_no_pmtu_disc 0 */
  int t;

  if (qproto == 47) {
    const uint8_t *g = q + qihl;
    if ((g[1] & 0x7f) != 0) return IEA_NONE; /* gre_demux: version 1 (PPTP) is not ip_gre's */
    uint16_t flags = rd16(g);
    if (flags & 0x4007) return IEA_NONE; /* gre_parse_header: routing or version */
    size_t hlen = 4 + ((flags & 0x8000) ? 4 : 0) + ((flags & 0x2000) ? 4 : 0) + ((flags & 0x1000) ? 4 : 0);
    if (qlen < qihl + hlen) return IEA_NONE;
    int has_gre = 0;
    for (int i = 0; i < tab->n; i++)
      if (tab->entries[i].cfg.mode == TM_GRE) has_gre = 1;
    if (!has_gre) return IEA_NONE; /* no ip_gre handler */
    t = lookup(tab, 47, local, remote, g, hlen, ifindex);
    res->tunnel = t;
    if (frag_needed) return res->action = IEA_PMTU; /* gre_err: whether or not a tunnel matches */
    if (type == ICMP_REDIRECT) return res->action = IEA_REDIRECT;
    if (t < 0) return IEA_NONE;
    /* ipgre_err */
    if (type == ICMP_DEST_UNREACH) {
      if (code == ICMP_SR_FAILED || code == ICMP_PORT_UNREACH) return IEA_NONE;
    } else if (type == ICMP_TIME_EXCEEDED) {
      if (code != ICMP_EXC_TTL) return IEA_NONE;
    } else {
      return IEA_NONE; /* parameter problem, source quench */
    }
    if (rd16(g + 2) == 0x86dd) {
      long k = gen_icmpv6_unreach(g + hlen, qlen - qihl - hlen, type, router, out);
      if (k > 0) return *out_len = (size_t)k, res->action = IEA_ICMPV6;
      if (k == 0) return IEA_NONE;
    }
    const struct tunctl_cfg *c = &tab->entries[t].cfg;
    if (c->remote == 0 || is_multicast(c->remote)) return IEA_NONE;
    if (c->ttl == 0 && type == ICMP_TIME_EXCEEDED) return IEA_NONE;
    return res->action = IEA_ERR_COUNT;
  }

  if (qproto != 4 && qproto != 41) return IEA_NONE;
  int has_ipip = 0, has_sit = 0;
  for (int i = 0; i < tab->n; i++) {
    if (tab->entries[i].cfg.mode == TM_IPIP) has_ipip = 1;
    if (tab->entries[i].cfg.mode == TM_SIT || tab->entries[i].cfg.mode == TM_ISATAP) has_sit = 1;
  }
  if (qproto == 4 && has_ipip) {
    /* ipip_err: the lookup first; -ENOENT (no tunnel, or remote any) lets sit's handler try */
    t = lookup(tab, 4, local, remote, NULL, 0, ifindex);
    if (t >= 0 && tab->entries[t].cfg.mode == TM_IPIP) {
      res->tunnel = t;
      if (!ipip_err_type(type, code)) return IEA_NONE;
      if (frag_needed) return res->action = IEA_PMTU;
      if (type == ICMP_REDIRECT) return res->action = IEA_REDIRECT;
      const struct tunctl_cfg *c = &tab->entries[t].cfg;
      if (c->remote != 0) {
        if (c->ttl == 0 && type == ICMP_TIME_EXCEEDED) return IEA_NONE;
        return res->action = IEA_ERR_COUNT;
      }
      res->tunnel = -1; /* -ENOENT: on to sit */
    }
  }
  if (!has_sit) return IEA_NONE;
  /* ipip6_err: the type first, then ipip6_tunnel_lookup (a protocol-41 lookup: sit.c's tables whatever the
   * quoted protocol) */
  if (!ipip_err_type(type, code)) return IEA_NONE;
  t = lookup(tab, 41, local, remote, NULL, 0, ifindex);
  if (t < 0) return IEA_NONE;
  res->tunnel = t;
  if (frag_needed) return res->action = IEA_PMTU;
  if (type == ICMP_REDIRECT) return res->action = IEA_REDIRECT;
  if (qproto == 41) {
    long k = gen_icmpv6_unreach(q + qihl, qlen - qihl, type, router, out);
    if (k > 0) return *out_len = (size_t)k, res->action = IEA_ICMPV6;
    if (k == 0) return IEA_NONE;
  }
  const struct tunctl_cfg *c = &tab->entries[t].cfg;
  if (c->remote == 0) return IEA_NONE;
  if (c->ttl == 0 && type == ICMP_TIME_EXCEEDED) return IEA_NONE;
  return res->action = IEA_ERR_COUNT;
}

void tunctl_err_note(struct tunctl_errstate *s, uint64_t now) {
  if (s->err_count > 0 && now < s->err_time + TUNCTL_ERR_TIMEO_MS) s->err_count++;
  else s->err_count = 1;
  s->err_time = now;
}

int tunctl_err_xmit(struct tunctl_errstate *s, uint64_t now) {
  if (s->err_count <= 0) return 0;
  if (now < s->err_time + TUNCTL_ERR_TIMEO_MS) {
    s->err_count--;
    return 1;
  }
  s->err_count = 0;
  return 0;
}

size_t tunctl_icmp_link_failure(const uint8_t *in, size_t len, uint8_t *o) {
  if (len < 1) return 0;
  if ((in[0] >> 4) == 6) {
    if (!icmp6_eligible(in, len)) return 0;
    return tunctl_icmp6_build(1, 3, 0, in + 24, in, len, o); /* ip6_link_failure: ICMPV6_DEST_UNREACH, ADDR_UNREACH */
  }
  if ((in[0] >> 4) != 4 || len < 20) return 0;
  size_t ihl = (size_t)(in[0] & 15) * 4;
  if (ihl < 20 || ihl > len) return 0;
  /* icmp_send: first fragments only, no broadcast/multicast destination, no error about an ICMP error */
  if (rd16(in + 6) & 0x1fff) return 0;
  if (in[16] >= 224 || !memcmp(in + 16, "\xff\xff\xff\xff", 4) || ld32n(in + 12) == 0) return 0;
  if (in[9] == 1) {
    if (len < ihl + 1) return 0;
    uint8_t it = in[ihl];
    if (it == 3 || it == 4 || it == 5 || it == 11 || it == 12 || it > 18) return 0;
  }
  size_t quote = len < 548 ? len : 548; /* 576 - headers */
  size_t tot = 28 + quote;
  memset(o, 0, 28);
  o[0] = 0x45;
  o[1] = (uint8_t)((in[1] & 0x1e) | 0xc0); /* RT_TOS | IPTOS_PREC_INTERNETCONTROL */
  wr16(o + 2, (uint16_t)tot);
  o[8] = 64;
  o[9] = 1;
  memcpy(o + 12, in + 16, 4); /* see native/README.md: the kernel's own address is not known here */
  memcpy(o + 16, in + 12, 4);
  wr16(o + 10, tunctl_csum(o, 20, 0));
  uint8_t *ic = o + 20;
  ic[0] = 3;
  ic[1] = 1; /* ICMP_HOST_UNREACH */
  memcpy(ic + 8, in, quote);
  wr16(ic + 2, tunctl_csum(ic, 8 + quote, 0));
  return tot;
}
