/* tunctl data plane: TUN device + raw IPv4 sockets + two packet threads. */
#ifndef TUNCTL_DATAPLANE_H
#define TUNCTL_DATAPLANE_H

#include "dispatch.h"
#include "icmperr.h"
#include "pmtu.h"
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

struct tunctl_dp {
  struct tunctl_cfg cfg;
  int tun_fd;
  int raw_fd[2]; /* receive sockets; second: sit carrying IPv4 (protocol 4) */
  int nraw;
  int tx_fd;     /* sending socket: raw_fd[0], or a socket bound to `dev` that receives nothing (ipip/gre take
                    packets from any link, see dispatch.c) */
  int gone; /* the TUN device disappeared (set by the TX thread) */
  /* the namespace's userspace tunnel table (this tunnel at index `self`): the receive dispatch decides which
   * tunnel takes each packet (tunctl_receive) */
  pthread_mutex_t sib_lock;
  struct tunctl_entry *tab;
  int ntab, self;
  char (*tab_names)[16]; /* the entries' device names: their IFF_UP is re-read (SIOCGIFFLAGS) before a received
                            batch is dispatched when a link changed (or, without nl_fd, at most every
                            TUNCTL_FLAGS_MS); a missing device is down */
  uint64_t flags_at;     /* CLOCK_MONOTONIC ms of that read */
  int nl_fd;             /* rtnetlink socket subscribed to link changes (RTMGRP_LINK): IFF_UP is re-read only after
                            a change, not every TUNCTL_FLAGS_MS; -1 if unavailable */
  int flags_stale;       /* a link changed since the last read */
  int ctl_fd;            /* AF_INET datagram socket for SIOCGIFFLAGS */
  char name[16];         /* this tunnel's device */
  int vnet; /* TUN opened with IFF_VNET_HDR + offloads: TSO segmentation on TX, TCP coalescing on RX */
  char dev[16]; /* underlay device (SO_BINDTODEVICE); empty = none */
  int stop_fd; /* eventfd */
  pthread_t tx_thread, rx_thread;
  int running;
  struct tunctl_stats txs, rxs; /* tx thread writes txs, rx thread writes rxs */
  /* kernel twin (issue #6 item 3; native/icmperr.h, native/pmtu.h): ICMP errors about outer packets (a protocol-1
   * raw socket read by the rx thread) feed the path MTU per destination and err_count; the tx thread reads them */
  int icmp_fd;
  pthread_mutex_t twin_lock;
  int twin_used; /* set once an ICMP error was acted on: the tx thread takes twin_lock only then */
  struct tunctl_pmtu pmtu;
  struct tunctl_errstate errst;
  char err[256];
};

/* tunctl's ownership mark (src/plan/lines.ts OWNER_ALIAS), set as the TUN device's ifalias */
#define TUNCTL_OWNER_ALIAS "tunctl"
/* opens (creating if needed) the persistent TUN device; a device it creates gets TUNCTL_OWNER_ALIAS first */
int tunctl_open_tun(const char *name, int vnet_hdr, char *err, size_t errlen);
int tunctl_set_persist(int fd, int on);
/* sets the device MTU (SIOCSIFMTU) */
int tunctl_set_mtu(const char *name, int mtu);
/* opens raw sockets and starts the threads; takes ownership of tun_fd */
int tunctl_dp_start(struct tunctl_dp *dp);
void tunctl_dp_stop(struct tunctl_dp *dp);
void tunctl_dp_stats(struct tunctl_dp *dp, struct tunctl_stats *out);
/* replaces the namespace's tunnel table (copied; entry `self` is this tunnel, its cfg is taken from dp->cfg) */
void tunctl_dp_set_table(struct tunctl_dp *dp, const struct tunctl_entry *tab, const char (*names)[16], int n, int self);
#define TUNCTL_FLAGS_MS 20

#endif
