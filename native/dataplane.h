/* tunctl data plane: counters and persistent TUN devices (the packet threads are the engine's, engine.h). */
#ifndef TUNCTL_DATAPLANE_H
#define TUNCTL_DATAPLANE_H

#include "dispatch.h"
#include "tunctl.h"

#include <pthread.h>

struct tunctl_stats {
  uint64_t tx_packets, tx_bytes, tx_errors, tx_dropped;
  uint64_t rx_packets, rx_bytes, rx_errors, rx_dropped;
  uint64_t icmp_sent;
  uint64_t tso_segments; /* TX: segments cut from TSO packets */
  uint64_t gro_merged;   /* RX: segments written to TUN as part of a coalesced packet */
  uint64_t rx_other;     /* RX: packets the dispatch gave another tunnel of the namespace (not counted as drops) */
  uint64_t collisions;   /* TX: routing loops dropped (kernel twin: the device's collisions counter) */
  uint64_t icmp_errors;  /* RX: ICMP errors about this tunnel's outer packets acted on (kernel twin) */
  uint64_t drops[DR__COUNT];
  uint64_t txdrops[TXD__COUNT];
};

/* tunctl's ownership mark (src/plan/lines.ts OWNER_ALIAS), set as the TUN device's ifalias */
#define TUNCTL_OWNER_ALIAS "tunctl"
/* opens (creating if needed) the persistent TUN device; a device it creates gets TUNCTL_OWNER_ALIAS first */
int tunctl_open_tun(const char *name, int vnet_hdr, char *err, size_t errlen);
/* the same over the caller's sockets (a NETLINK_ROUTE socket from tunctl_nlbatch_socket, an AF_INET datagram socket
 * for ioctls): mtu > 0 is set with the mark (one netlink send; also on a device that existed); *ifindex, *created
 * (the device did not exist before) when non-NULL */
int tunctl_open_tun_ex(const char *name, int vnet_hdr, int nlfd, int ioctlfd, int mtu, int *ifindex, int *created,
                       char *err, size_t errlen);
int tunctl_set_persist(int fd, int on);
/* sets the device MTU (SIOCSIFMTU) */
int tunctl_set_mtu(const char *name, int mtu);

#endif
