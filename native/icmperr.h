/* tunctl kernel twin: ICMP errors about outer packets, relayed as the kernel's tunnel error handlers do
 * (net/ipv4/ipip.c ipip_err, net/ipv4/ip_gre.c gre_err / ipgre_err, net/ipv6/sit.c ipip6_err), and the
 * err_count / err_time state that makes the next transmits report a link failure to the inner sender
 * (ip_tunnel_xmit / ipip6_tunnel_xmit → dst_link_failure). Pure (no I/O, no allocation, no clock). */
#ifndef TUNCTL_ICMPERR_H
#define TUNCTL_ICMPERR_H

#include "dispatch.h"

enum tunctl_icmperr_action {
  IEA_NONE = 0,  /* not an ICMP error about a packet of a tunnel of the table, or one the kernel ignores */
  IEA_PMTU,      /* fragmentation needed: path MTU `mtu` towards `dst` (ipv4_update_pmtu) */
  IEA_REDIRECT,  /* left to the host kernel: our raw socket of that protocol gets it (raw_err → ipv4_sk_redirect) */
  IEA_ICMPV6,    /* relayed now to the inner IPv6 sender as ICMPv6 (ip6_err_gen_icmpv6_unreach): out, out_len */
  IEA_ERR_COUNT, /* counted against `tunnel` (tunctl_err_note): its next transmits report a link failure */
};

struct tunctl_icmperr {
  int action;
  int tunnel;   /* table index of the tunnel the kernel's lookup found, or -1 */
  uint8_t type, code;
  uint32_t dst; /* outer destination of the quoted packet (network order) */
  int mtu;      /* IEA_PMTU: the ICMP's next-hop MTU (icmp_unreach: info = ntohs(icmph->un.frag.mtu)) */
};

/* pkt: a whole received IPv4 packet carrying ICMP (a protocol-1 raw socket's read), len bytes, received on ifindex.
 * Fills *res; for IEA_ICMPV6 writes the ICMPv6 error (IPv6 header first) to out (>= 1280 bytes) and its length to
 * *out_len. Returns res->action. */
int tunctl_icmperr(const struct tunctl_table *tab, const uint8_t *pkt, size_t len, int ifindex,
                   struct tunctl_icmperr *res, uint8_t *out, size_t *out_len);

/* ip_tunnel.h IPTUNNEL_ERR_TIMEO (30 * HZ) */
#define TUNCTL_ERR_TIMEO_MS 30000

struct tunctl_errstate {
  int err_count;
  uint64_t err_time; /* ms */
};

/* the error handler's tail: err_count++ within IPTUNNEL_ERR_TIMEO of the last error, else 1; err_time = now */
void tunctl_err_note(struct tunctl_errstate *s, uint64_t now);
/* at transmit (ip_tunnel_xmit / ipip6_tunnel_xmit): 1 when this packet's sender is to get a link failure
 * (err_count-- within IPTUNNEL_ERR_TIMEO; after it the count is reset); the packet is still sent */
int tunctl_err_xmit(struct tunctl_errstate *s, uint64_t now);

/* dst_link_failure for the inner packet: ICMP host unreachable (ipv4_link_failure → icmp_send) or ICMPv6 address
 * unreachable (ip6_link_failure → icmpv6_send), from the inner destination to the inner source, quoting as much
 * as icmp_send / icmp6_send do; written to out (>= 1280 bytes). 0 when none is due (an ICMP error, a fragment
 * other than the first, a multicast or broadcast destination, an unspecified or multicast source). */
size_t tunctl_icmp_link_failure(const uint8_t *inner, size_t len, uint8_t *out);

#endif
