/* tunctl receive dispatch: which tunnel of a namespace's table takes a received outer IPv4 packet.
 * Pure (no I/O, no allocation); reproduces the kernel's tunnel lookups — see dispatch.c and native/README.md. */
#ifndef TUNCTL_DISPATCH_H
#define TUNCTL_DISPATCH_H

#include "tunctl.h"

/* one tunnel of the table */
struct tunctl_entry {
  struct tunctl_cfg cfg; /* mode, local, remote, has_ikey/ikey (network order addresses) */
  int link;              /* parms.link: ifindex of the underlay device (`dev`), 0 = none */
  int up;                /* the tunnel device has IFF_UP */
  int fallback;          /* the namespace's fallback device of its mode (tunl0 / gre0 / sit0): local and remote
                            any, no key, link 0; the userspace engine has none, tests model the kernel's */
};

/* A namespace's tunnels in creation order (entries[0] is the oldest). The kernel's hash chains put the newest
 * tunnel first (hlist_add_head_rcu), so every pass below walks the table from the end. */
struct tunctl_table {
  const struct tunctl_entry *entries;
  int n;
};

#define TUNCTL_SEL_NONE (-1)

/* why no tunnel was selected (*why when TUNCTL_SEL_NONE is returned) */
enum tunctl_sel_why {
  SEL_OK = 0,
  SEL_MALFORMED,  /* outer IPv4 header unparsable, or too short for the GRE header (no identity) */
  SEL_NO_HANDLER, /* outer protocol not 4, 41 or 47, or no tunnel of a mode that handles it */
  SEL_NO_TUNNEL,  /* the handlers' lookups found no tunnel (the kernel answers ICMP unreachable) */
};

/* Selects the tunnel that takes pkt (outer IPv4 header first, len bytes) received on ifindex (skb->dev->ifindex).
 * Returns its index in the table, or TUNCTL_SEL_NONE with *why (may be NULL) set. Checks made after the lookup in
 * the kernel (GRE checksum and sequence, inner protocol, spoofing, ECN) are the selected tunnel's
 * (tunctl_decap); they never move the packet to another tunnel. */
int tunctl_select(const struct tunctl_table *tab, const uint8_t *pkt, size_t len, int ifindex, int *why);

/* does a tunnel of cfg's mode listen on outer protocol proto? (sit carrying IPv4 also takes protocol 4) */
int tunctl_uses_proto(const struct tunctl_cfg *cfg, int proto);

/* What one tunnel's receive path does with a packet its raw socket got (every raw socket of a protocol gets a copy). */
enum tunctl_rx_verdict {
  RXV_DELIVER = 0, /* selected for `self` and decapsulated: *inner, *inner_len point into pkt */
  RXV_DROP,        /* selected for `self`, dropped by its checks: *drop is the tunctl_drop reason */
  RXV_SIBLING,     /* selected for another tunnel of the table: left to it, not counted here */
  RXV_NO_TUNNEL,   /* no tunnel takes it and `self` is the tunnel that counts such packets: *drop = DR_NO_TUNNEL,
                      or DR_MALFORMED / DR_TRUNCATED when the outer header has no usable identity */
  RXV_IGNORE,      /* no tunnel takes it and another tunnel counts it */
};

/* The receive path of tunnel `self` (an index into tab): tunctl_select, then, if self is selected, tunctl_decap with
 * the identity checks skipped (the lookup made them). Packets no tunnel takes are counted by exactly one tunnel:
 * the oldest (lowest index) that listens on the packet's outer protocol. Pure except rx->i_seqno and the ECN
 * marking of the inner header, as tunctl_decap. */
int tunctl_receive(const struct tunctl_table *tab, int self, struct tunctl_rxstate *rx, uint8_t *pkt, size_t len,
                   int ifindex, uint8_t **inner, size_t *inner_len, int *drop);

#endif
