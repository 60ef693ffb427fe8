/* Multicast gre: the group memberships the engine holds for its tunnels, as ipgre_open / ipgre_close
 * (net/ipv4/ip_gre.c) take them with ip_mc_inc_group / ip_mc_dec_group on the device the route to the group
 * leaves by (or the tunnel's link). Pure (no I/O): a reference count per (group, device); the engine joins on the
 * first reference and leaves on the last (engine.c, "multicast gre"). Unit-tested: test/unit/userspace/c/mcast_test.c. */
#ifndef TUNCTL_MCAST_H
#define TUNCTL_MCAST_H

#include "tunctl.h"

/* one membership: the group (network order) on the device ifindex, held by `users` tunnels; fd is the engine's
 * (the socket that holds the membership), -1 until it sets it */
struct tunctl_mc_member {
  uint32_t group;
  int ifindex;
  int users;
  int fd;
};

struct tunctl_mcast {
  struct tunctl_mc_member *m;
  int n, cap;
};

/* the group a tunnel must be a member of: its remote when it is a gre tunnel with a multicast remote and its device
 * is up (ipgre_open runs on NETDEV_UP; ipgre_tunnel_init refuses a multicast remote without a local address, so
 * does the CLI); else 0 */
uint32_t tunctl_mcast_group(const struct tunctl_cfg *cfg, int up);

/* takes one reference on (group, ifindex): returns its member with users ≥ 1 (users == 1: the first, the caller
 * joins and sets fd), or NULL when out of memory (nothing taken) */
struct tunctl_mc_member *tunctl_mcast_ref(struct tunctl_mcast *t, uint32_t group, int ifindex);

/* drops one reference on (group, ifindex). Returns the fd to close when it was the last (the membership is gone
 * from the table), -1 otherwise (also when there was no such reference) */
int tunctl_mcast_unref(struct tunctl_mcast *t, uint32_t group, int ifindex);

/* the references held on (group, ifindex) (0: none) */
int tunctl_mcast_users(const struct tunctl_mcast *t, uint32_t group, int ifindex);

void tunctl_mcast_free(struct tunctl_mcast *t);

#endif
