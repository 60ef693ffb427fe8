/* tunctl userspace engine: every userspace tunnel of one network namespace in one data plane.
 * One raw socket per outer protocol (opened once), a fixed pool of threads (one receive thread per protocol socket,
 * ENGINE_TX transmit threads epolling the tunnels' TUN devices), one persistent TUN device per tunnel.
 * The tunnel table is swapped under a writer-preferring rwlock: the packet threads hold it for reading around each
 * batch, the control thread (add / change in place / remove) for writing, so a change never disturbs the packets
 * of other tunnels beyond that short wait, and a tunnel changed in place keeps its counters and sequence state. */
#ifndef TUNCTL_ENGINE_H
#define TUNCTL_ENGINE_H

#include "dataplane.h"
#include "icmperr.h"
#include "isatap.h"
#include "mcast.h"
#include "nlbatch.h"
#include "pmtu.h"
#include "vti.h"

#include <pthread.h>

/* the outer protocols the engine receives: one raw socket and one receive thread each (50: vti over ESP, native/vti.c,
 * opened with the namespace's first vti; 1: the kernel twin's ICMP errors about outer packets, native/icmperr.c; the
 * others at start). Adding one is one entry here plus its case in engine.c rx_main. */
#define ENGINE_NPROTO 5
#define ENGINE_ESP 3         /* index of protocol 50 in engine.c eng_protos */
#define ENGINE_ICMP 4        /* index of protocol 1 (kernel twin) */
#define ENGINE_TX 2          /* transmit threads, whatever the number of tunnels */
#define ENGINE_MAX 16384     /* tunnels per engine */

struct eng_tun {
  char name[16];
  char dev[16];         /* underlay device (SO_BINDTODEVICE on its own sending socket); empty = none */
  struct tunctl_cfg cfg;
  struct tunctl_vti *vti; /* vti: its ESP SA context (vti.c), owned; NULL for the other modes */
  int tun_fd;
  int vnet;             /* TUN opened with IFF_VNET_HDR + offloads */
  int send_fd;          /* own sending socket (dev or fwmark set), else -1: the protocol's socket sends */
  int ifindex;          /* of the TUN device: the table's order (the kernel's creation order) */
  int slot;
  uint32_t gen;         /* with slot: the TX threads' epoll key (a removed tunnel's stale event is ignored) */
  int gone;             /* the TUN device disappeared (ip link del) */
  struct tunctl_rxstate rx;
  struct tunctl_txstate tx;
  struct tunctl_stats s; /* updated with atomic adds by every packet thread */
  struct tunctl_errstate errst; /* kernel twin: err_count / err_time (icmperr.h), under the engine's twin_lock */
  /* multicast gre (engroute.c): the membership this tunnel holds (group 0: none), under the engine's mc_lock;
   * mc_recheck: its parameters changed, the group's device is looked up again */
  uint32_t mc_group;
  int mc_ifindex, mc_recheck;
  /* isatap (engroute.c, isatap.c): the IPv6 routes out of its TUN device (main table), replaced under the write lock */
  struct tunctl_v6route *v6r;
  int nv6r;
};

struct tunctl_engine {
  pthread_rwlock_t lock;
  struct eng_tun **slots;       /* by slot (ENGINE_MAX) */
  struct eng_tun **order;       /* dispatch order: by ifindex (creation order), parallel to entries */
  struct tunctl_entry *entries; /* the receive dispatch's table (dispatch.c) */
  int n, cap;
  uint32_t next_gen;
  uint64_t tabgen;              /* bumped at every table or IFF_UP change: invalidates the receive caches */
  int raw[ENGINE_NPROTO];
  int nl_fd, ctl_fd;
  int cfg_nl;                   /* rtnetlink socket of the control thread: the devices' mark, MTU, addresses, up */
  uint32_t nl_seq;
  int flags_stale;
  pthread_mutex_t flags_lock;
  int stop_fd;
  int txep[ENGINE_TX];
  pthread_t rx_thread[ENGINE_NPROTO], tx_thread[ENGINE_TX];
  int rx_started[ENGINE_NPROTO], ntx;
  uint32_t next_slot;
  /* kernel twin (native/icmperr.h, native/pmtu.h): ICMP errors about outer packets (the protocol-1 socket's receive
   * thread) feed the namespace's path MTU per destination and each tunnel's err_count; the TX threads read them */
  pthread_mutex_t twin_lock;
  int twin_used; /* set once an ICMP error was acted on: the TX threads take twin_lock only then */
  struct tunctl_pmtu pmtu;
  /* multicast gre (engroute.c, mcast.h): the group memberships of the up multicast-remote gre tunnels */
  pthread_mutex_t mc_lock;
  struct tunctl_mcast mc;
  /* a packet no tunnel takes (unreach.h): answered ICMP port unreachable within icmp_send's rate limits, the
   * namespace's sysctls read at start; the receive threads share the limits under unreach_lock */
  pthread_mutex_t unreach_lock;
  struct tunctl_unreach *unreach;
};

/* opens the protocol sockets and starts the threads; NULL with err set on failure */
struct tunctl_engine *tunctl_engine_new(char *err, size_t errlen);
/* stops the threads and closes everything; TUN devices stay (persistent) */
void tunctl_engine_free(struct tunctl_engine *e);
/* adds a tunnel: opens (creating if needed, ownership mark first) its TUN device; 0 or -1 with err. vti (mode vti:
 * its ESP context, else NULL) is the engine's from here, also on failure */
int tunctl_engine_add(struct tunctl_engine *e, const char *name, const struct tunctl_cfg *cfg, const char *dev, int offload,
                      struct tunctl_vti *vti, char *err, size_t errlen);
/* what tunctl_engine_configure sets on a tunnel's device */
struct tunctl_linkreq {
  const char *name;
  int mtu; /* > 0: set first */
  int up;
  int naddr, nsoft; /* addrs[0..naddr) must be taken; the nsoft after them are a best effort (the kernel twin's) */
  const struct tunctl_cidr *addrs;
};
/* configures the devices of tunnels of the engine (those a commit created: MTU, addresses, then IFF_UP) in one
 * netlink batch (nlbatch.h); errs[i] (zeroed by the caller) gets request i's first error (-errno; -ENODEV: no such
 * tunnel) and what[i] what was refused (TUNCTL_LINKREQ_MTU, TUNCTL_LINKREQ_UP, or the index in addrs). Returns 0, or
 * -errno when the batch could not run */
#define TUNCTL_LINKREQ_MTU (-1)
#define TUNCTL_LINKREQ_UP (-2)
int tunctl_engine_configure(struct tunctl_engine *e, const struct tunctl_linkreq *reqs, int n, int *errs, int *what);
/* changes a tunnel's parameters in place (counters, sequence numbers and the device are kept); 0 or -1 with err */
int tunctl_engine_change(struct tunctl_engine *e, const char *name, const struct tunctl_cfg *cfg, const char *dev,
                         struct tunctl_vti *vti, char *err, size_t errlen);
/* a vti's ESP context (for the control thread: counters, sequence limit), or NULL */
struct tunctl_vti *tunctl_engine_vti(struct tunctl_engine *e, const char *name);
/* removes a tunnel; remove_device: its TUN device goes too (persist off), else it stays; 0, or -1 if unknown */
int tunctl_engine_remove(struct tunctl_engine *e, const char *name, int remove_device);
/* a tunnel's counters; 0, or -1 if unknown. *vnet, *gone: offload in use, device deleted under the engine */
int tunctl_engine_stats(struct tunctl_engine *e, const char *name, struct tunctl_stats *out, int *vnet, int *gone);
int tunctl_engine_count(struct tunctl_engine *e);

#endif
