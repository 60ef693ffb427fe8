/* tunctl kernel twin: path MTU per outer destination, the tunnel's MTU check against it, the outer IP ID
 * (the default MTU of a new tunnel, ip_tunnel_bind_dev, is src/userspace/kernel-twin.ts kernelDefaultMtu).
 * Pure (no I/O, no allocation, no clock: callers pass `now` in milliseconds). See pmtu.c and native/README.md. */
#ifndef TUNCTL_PMTU_H
#define TUNCTL_PMTU_H

#include <stddef.h>
#include <stdint.h>

/* net/ipv4/route.c defaults (sysctl net.ipv4.route.mtu_expires / min_pmtu; measured in user-mode-linux 6.1) */
#define TUNCTL_MTU_EXPIRES_MS 600000
#define TUNCTL_MIN_PMTU 552
#define TUNCTL_PMTU_SLOTS 64

/* one route exception (struct fib_nh_exception: fnhe_daddr, fnhe_pmtu, fnhe_mtu_locked, fnhe_expires) */
struct tunctl_pmtu_entry {
  uint32_t dst; /* network order; 0 = free slot */
  int mtu;
  int locked;
  uint64_t expires; /* ms */
};

struct tunctl_pmtu {
  struct tunctl_pmtu_entry e[TUNCTL_PMTU_SLOTS];
  uint64_t expires_ms; /* ip_rt_mtu_expires */
  int min_pmtu;        /* ip_rt_min_pmtu */
};

void tunctl_pmtu_init(struct tunctl_pmtu *p);

/* The path MTU towards dst: the learnt one while it has not expired (an expired entry is removed, as
 * find_exception does), else route_mtu (the route's own MTU: its output device's). *locked (may be NULL) is set when
 * the learnt MTU was clamped to min_pmtu (ip_mtu_locked: the kernel then sends without DF). */
int tunctl_pmtu_get(struct tunctl_pmtu *p, uint32_t dst, int route_mtu, uint64_t now, int *locked);

/* An ICMP "fragmentation needed" said `mtu` towards dst (route.c __ip_rt_update_pmtu): ignored when above the
 * current path MTU; below min_pmtu it is clamped (to min(current, min_pmtu)) and locked; an unchanged unlocked
 * value is only refreshed once half its lifetime has passed; the entry expires expires_ms later
 * (update_or_create_fnhe). When the table is full the entry closest to expiry is replaced. Returns 1 if the
 * entry was created or changed. */
int tunctl_pmtu_update(struct tunctl_pmtu *p, uint32_t dst, int mtu, int route_mtu, uint64_t now);

/* The tunnel's transmit-time check against the path MTU (net/ipv4/ip_tunnel.c tnl_update_pmtu for ipip, gre and
 * sit carrying IPv4; net/ipv6/sit.c ipip6_tunnel_xmit for sit/isatap carrying IPv6):
 *   sit6     1 for an IPv6 packet through a sit/isatap tunnel
 *   hlen     tunnel header after the outer IPv4 header (GRE 4..16, else 0)
 *   df       the outer packet would carry DF (pmtudisc, or copied from the inner IPv4 header)
 *   inner    the inner packet (IPv4 or IPv6), len bytes; dev_mtu the tunnel device's MTU
 * Returns 0 to send, > 0 the MTU to report to the inner sender (ICMP frag needed / packet too big) with the packet
 * dropped, -1 to drop silently (sit: path MTU below 68), and sets *clear_df when the outer packet must go without
 * DF (sit: path MTU below 1280, where the kernel sends 1280-byte packets fragmented). */
int tunctl_tnl_pmtu_check(int sit6, int hlen, int df, const uint8_t *inner, size_t len, int path_mtu, int dev_mtu,
                          int *clear_df);

/* Outer IP ID (net/ipv4/route.c __ip_select_ident, as iptunnel_xmit uses for every tunnel packet, DF or not): a
 * counter per (daddr, saddr, protocol) hash bucket, advanced by a random amount below the ms elapsed since the
 * bucket was last used (ip_idents_reserve). `key` and `rnd` are the caller's randomness. */
#define TUNCTL_IDENT_SLOTS 256
struct tunctl_ident {
  uint32_t key;
  uint16_t id[TUNCTL_IDENT_SLOTS];
  uint64_t stamp[TUNCTL_IDENT_SLOTS];
};
uint16_t tunctl_ident_next(struct tunctl_ident *s, uint32_t daddr, uint32_t saddr, uint8_t proto, uint64_t now,
                           uint32_t rnd);

/* A routing loop (ip_tunnel_xmit / ipip6_tunnel_xmit: the route to the remote leaves by the tunnel itself →
 * collisions++, dropped): the kernel routed this tunnel's own outer packet back into its TUN device, which hands it
 * to the tunnel as an inner packet. 1 when pkt (read from the TUN device) is such a packet: the tunnel's outer
 * protocol, its local address as source (when set) and its remote as destination (when set). A tunnel with local
 * and remote any cannot tell (0): its nested packets pass. */
struct tunctl_cfg;
int tunctl_routing_loop(const struct tunctl_cfg *cfg, const uint8_t *pkt, size_t len);

/* the outer header (20 bytes at o): sets the ID, clears DF if asked, recomputes the header checksum */
void tunctl_outer_fixup(uint8_t *o, uint16_t id, int clear_df);

#endif
