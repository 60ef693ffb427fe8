/* tunctl data plane: TUN device + raw IPv4 sockets + two packet threads. */
#ifndef TUNCTL_DATAPLANE_H
#define TUNCTL_DATAPLANE_H

#include "tunctl.h"

#include <pthread.h>

struct tunctl_stats {
  uint64_t tx_packets, tx_bytes, tx_errors, tx_dropped;
  uint64_t rx_packets, rx_bytes, rx_errors, rx_dropped;
  uint64_t icmp_sent;
  uint64_t tso_segments; /* TX: segments cut from TSO packets */
  uint64_t gro_merged;   /* RX: segments written to TUN as part of a coalesced packet */
  uint64_t rx_other;     /* RX: packets for another userspace tunnel of the namespace (not counted as drops) */
  uint64_t drops[DR__COUNT];
  uint64_t txdrops[TXD__COUNT];
};

struct tunctl_dp {
  struct tunctl_cfg cfg;
  int tun_fd;
  int raw_fd[2]; /* second socket: sit carrying IPv4 (protocol 4) */
  int nraw;
  int gone; /* the TUN device disappeared (set by the TX thread) */
  /* the other userspace tunnels of the namespace: a packet one of them takes is not a drop of ours */
  pthread_mutex_t sib_lock;
  struct tunctl_cfg *sibs;
  int nsibs;
  int vnet; /* TUN opened with IFF_VNET_HDR + offloads: TSO segmentation on TX, TCP coalescing on RX */
  char dev[16]; /* underlay device (SO_BINDTODEVICE); empty = none */
  int stop_fd; /* eventfd */
  pthread_t tx_thread, rx_thread;
  int running;
  struct tunctl_stats txs, rxs; /* tx thread writes txs, rx thread writes rxs */
  char err[256];
};

int tunctl_open_tun(const char *name, int vnet_hdr, char *err, size_t errlen);
int tunctl_set_persist(int fd, int on);
/* sets the device MTU (SIOCSIFMTU) */
int tunctl_set_mtu(const char *name, int mtu);
/* opens raw sockets and starts the threads; takes ownership of tun_fd */
int tunctl_dp_start(struct tunctl_dp *dp);
void tunctl_dp_stop(struct tunctl_dp *dp);
void tunctl_dp_stats(struct tunctl_dp *dp, struct tunctl_stats *out);
/* replaces the sibling list (copied) */
void tunctl_dp_set_siblings(struct tunctl_dp *dp, const struct tunctl_cfg *sibs, int n);

#endif
