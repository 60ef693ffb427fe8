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

#endif
