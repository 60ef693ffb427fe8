/* tunctl data plane: a TUN device and raw IPv4 sockets joined by two threads with batched I/O
 * (TUN reads drained into one sendmmsg; recvmmsg batches written to TUN). */
#define _GNU_SOURCE
#include "dataplane.h"
#include "offload.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

unsigned int if_nametoindex(const char *ifname); /* <net/if.h> clashes with <linux/if.h> */

#define BATCH 64
#define SLOT (TUNCTL_HEADROOM + 65536)

#define ADD(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)

/* sets the link's ifalias (IFLA_IFALIAS) over rtnetlink; 0 or -errno */
static int set_ifalias(const char *name, const char *alias) {
  int ifindex = (int)if_nametoindex(name);
  if (!ifindex) return -ENODEV;
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -errno;
  struct {
    struct nlmsghdr nh;
    struct ifinfomsg ifi;
    char attrs[RTA_SPACE(IFALIASZ)];
  } req;
  memset(&req, 0, sizeof req);
  size_t alen = strlen(alias);
  if (alen >= IFALIASZ) alen = IFALIASZ - 1;
  req.nh.nlmsg_type = RTM_NEWLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = ifindex;
  struct rtattr *rta = (struct rtattr *)req.attrs;
  rta->rta_type = IFLA_IFALIAS;
  rta->rta_len = (unsigned short)RTA_LENGTH(alen);
  memcpy(RTA_DATA(rta), alias, alen);
  req.nh.nlmsg_len = (uint32_t)(NLMSG_LENGTH(sizeof req.ifi) + RTA_ALIGN(rta->rta_len));
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  int r = 0;
  if (sendto(s, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    r = -errno;
  } else {
    char buf[1024];
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) r = -errno;
    else {
      struct nlmsghdr *h = (struct nlmsghdr *)buf;
      if (NLMSG_OK(h, (unsigned)n) && h->nlmsg_type == NLMSG_ERROR) r = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
    }
  }
  close(s);
  return r;
}

int tunctl_open_tun(const char *name, int vnet_hdr, char *err, size_t errlen) {
  /* a device made here carries tunctl's ownership mark before it is made persistent: a crash before that makes it
   * vanish with the fd, after it leaves a device `observe` recognises as tunctl's (issue #6) */
  int existed = if_nametoindex(name) != 0;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "open /dev/net/tun: %s", strerror(errno));
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    snprintf(err, errlen, "TUNSETIFF %s: %s", name, strerror(errno));
    close(fd);
    return -1;
  }
  if (vnet_hdr && ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN) < 0) {
    snprintf(err, errlen, "TUNSETOFFLOAD %s: %s", name, strerror(errno));
    close(fd);
    return -1;
  }
  if (!existed) {
    int r = set_ifalias(name, TUNCTL_OWNER_ALIAS);
    if (r < 0) {
      snprintf(err, errlen, "setting the alias of %s: %s", name, strerror(-r));
      close(fd);
      return -1;
    }
  }
  if (ioctl(fd, TUNSETPERSIST, 1) < 0) {
    snprintf(err, errlen, "TUNSETPERSIST %s: %s", name, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int tunctl_set_mtu(const char *name, int mtu) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_mtu = mtu;
  int r = ioctl(s, SIOCSIFMTU, &ifr);
  close(s);
  return r;
}

int tunctl_set_persist(int fd, int on) { return ioctl(fd, TUNSETPERSIST, on ? 1 : 0); }

static int open_raw(struct tunctl_dp *dp, int proto, int bind_dev) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (fd < 0) {
    snprintf(dp->err, sizeof dp->err, "raw socket protocol %d: %s", proto, strerror(errno));
    return -1;
  }
  int one = 1, big = 8 << 20;
  setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  if (dp->cfg.fwmark) setsockopt(fd, SOL_SOCKET, SO_MARK, &dp->cfg.fwmark, sizeof dp->cfg.fwmark);
  if (bind_dev && dp->dev[0] && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dp->dev, (socklen_t)strlen(dp->dev)) < 0) {
    snprintf(dp->err, sizeof dp->err, "SO_BINDTODEVICE %s: %s", dp->dev, strerror(errno));
    close(fd);
    return -1;
  }
  if (!bind_dev) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one); /* the receiving link, for the dispatch */
  if (dp->cfg.local) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = dp->cfg.local;
    /* a raw socket bound to an address only receives packets for it; ignore if not yet assigned */
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
  }
  return fd;
}

struct txctx {
  struct tunctl_dp *dp;
  struct tunctl_stats *s;
  struct tunctl_txstate tx;
  uint8_t *bufs;
  uint8_t icmpbuf[2048];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in sa[BATCH];
  size_t inlen[BATCH];
  int n;
  struct tunctl_ident ident; /* kernel twin: outer IP IDs */
  uint32_t rnd;
};

static void tun_write(struct tunctl_dp *dp, const struct virtio_net_hdr *vh, const uint8_t *pkt, size_t len,
                      struct tunctl_stats *s) {
  struct virtio_net_hdr zero;
  struct iovec v[2];
  int k = 0;
  if (dp->vnet) {
    if (!vh) {
      memset(&zero, 0, sizeof zero);
      vh = &zero;
    }
    v[k].iov_base = (void *)vh;
    v[k++].iov_len = sizeof *vh;
  }
  v[k].iov_base = (void *)pkt;
  v[k++].iov_len = len;
  if (writev(dp->tun_fd, v, k) < 0) ADD(s->rx_errors, 1);
}

/* MTU of the route to dst (what the kernel uses to refuse IP_HDRINCL packets with EMSGSIZE) */
static int route_mtu(uint32_t dst) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(9)};
  sa.sin_addr.s_addr = dst;
  int mtu = -1;
  socklen_t l = sizeof mtu;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &l) < 0) mtu = -1;
  close(fd);
  return mtu;
}

/* an outer packet without DF that does not fit the underlay: send it as IPv4 fragments (the kernel's tunnels
 * let ip_fragment do this when pmtudisc is off); returns 0 when all fragments were sent */
static int tx_fragment(struct txctx *c, int i, int pmtu) {
  const uint8_t *o = c->iov[i].iov_base;
  size_t outlen = c->iov[i].iov_len;
  if (pmtu < 68) return -1;
  size_t step = ((size_t)pmtu - 20) & ~(size_t)7;
  static __thread uint16_t ident;
  if (!ident) ident = (uint16_t)(getpid() ^ (uintptr_t)&ident);
  uint16_t id = ++ident ? ident : ++ident;
  uint8_t frag[65536];
  for (size_t off = 0; off < outlen - 20; off += step) {
    size_t n = outlen - 20 - off < step ? outlen - 20 - off : step;
    int more = off + n < outlen - 20;
    memcpy(frag, o, 20);
    memcpy(frag + 20, o + 20 + off, n);
    frag[2] = (uint8_t)((20 + n) >> 8);
    frag[3] = (uint8_t)(20 + n);
    frag[4] = (uint8_t)(id >> 8);
    frag[5] = (uint8_t)id;
    uint16_t fo = (uint16_t)((off / 8) | (more ? 0x2000 : 0));
    frag[6] = (uint8_t)(fo >> 8);
    frag[7] = (uint8_t)fo;
    frag[10] = frag[11] = 0;
    uint16_t ck = tunctl_csum(frag, 20, 0);
    frag[10] = (uint8_t)(ck >> 8);
    frag[11] = (uint8_t)ck;
    if (sendto(c->dp->tx_fd, frag, 20 + n, 0, (struct sockaddr *)&c->sa[i], sizeof c->sa[i]) < 0) return -1;
  }
  return 0;
}

/* the underlay refused message i as too big: without DF, fragment it; with DF, lower the tunnel's effective
 * MTU to what fits and tell the inner sender (ICMP frag needed / packet too big), as tnl_update_pmtu does.
 * Returns 1 if the packet went out after all. */
static int tx_too_big(struct txctx *c, int i) {
  size_t outlen = c->iov[i].iov_len, ilen = c->inlen[i];
  const uint8_t *inner = (const uint8_t *)c->iov[i].iov_base + (outlen - ilen);
  int pmtu = route_mtu(c->sa[i].sin_addr.s_addr);
  if (!(((const uint8_t *)c->iov[i].iov_base)[6] & 0x40)) return tx_fragment(c, i, pmtu) == 0;
  int overhead = (int)(outlen - ilen);
  if (pmtu <= overhead + 68) return 0;
  int mtu = pmtu - overhead;
  int cur = c->dp->cfg.mtu > 0 ? c->dp->cfg.mtu : tunctl_default_mtu(&c->dp->cfg);
  if (mtu < cur) c->dp->cfg.mtu = mtu; /* later packets get the ICMP from tunctl_encap directly */
  size_t n = tunctl_icmp_too_big(inner, ilen, mtu, c->icmpbuf);
  if (n) {
    tun_write(c->dp, NULL, c->icmpbuf, n, c->s);
    ADD(c->s->icmp_sent, 1);
  }
  return 0;
}

static void tx_flush(struct txctx *c) {
  int i = 0;
  while (i < c->n) {
    int k = sendmmsg(c->dp->tx_fd, c->msgs + i, (unsigned)(c->n - i), 0);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EMSGSIZE && tx_too_big(c, i)) {
        ADD(c->s->tx_packets, 1);
        ADD(c->s->tx_bytes, c->inlen[i]);
      } else {
        ADD(c->s->tx_errors, 1); /* e.g. no route to the remote, EMSGSIZE with DF */
      }
      i++;
      continue;
    }
    uint64_t bytes = 0;
    for (int j = i; j < i + k; j++) bytes += c->inlen[j];
    ADD(c->s->tx_packets, (uint64_t)k);
    ADD(c->s->tx_bytes, bytes);
    i += k;
  }
  c->n = 0;
}

/* ---- kernel twin call sites (issue #6 item 3; native/icmperr.c, native/pmtu.c) ---- */
static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* before an encapsulated packet is queued: routing loop, link failure after ICMP errors, path MTU, IP ID.
 * Returns 1 when the packet was consumed (dropped, or refused with an ICMP error to the inner sender). */
static int twin_tx(struct txctx *c, const uint8_t *inner, size_t len, uint8_t *out, size_t outlen, uint32_t dst) {
  struct tunctl_dp *dp = c->dp;
  if (tunctl_routing_loop(&dp->cfg, inner, len)) {
    ADD(c->s->collisions, 1);
    ADD(c->s->tx_errors, 1);
    return 1;
  }
  uint64_t now = mono_ms();
  int fire = 0, pmtu = 0, locked = 0, clear_df = 0;
  if (__atomic_load_n(&dp->twin_used, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&dp->twin_lock);
    fire = tunctl_err_xmit(&dp->errst, now);
    pmtu = tunctl_pmtu_get(&dp->pmtu, dst, 0, now, &locked);
    pthread_mutex_unlock(&dp->twin_lock);
  }
  if (fire) { /* dst_link_failure: the inner sender hears of it, the packet still goes */
    size_t n = tunctl_icmp_link_failure(inner, len, c->icmpbuf);
    if (n) tun_write(dp, NULL, c->icmpbuf, n, c->s), ADD(c->s->icmp_sent, 1);
  }
  if (pmtu > 0) {
    int sit6 = (dp->cfg.mode == TM_SIT || dp->cfg.mode == TM_ISATAP) && (inner[0] >> 4) == 6;
    int devmtu = dp->cfg.mtu > 0 ? dp->cfg.mtu : tunctl_default_mtu(&dp->cfg);
    int r = tunctl_tnl_pmtu_check(sit6, (int)(outlen - len - 20), (out[6] & 0x40) != 0, inner, len, pmtu, devmtu, &clear_df);
    if (r != 0) {
      size_t n = r > 0 ? tunctl_icmp_too_big(inner, len, r, c->icmpbuf) : 0;
      if (n) tun_write(dp, NULL, c->icmpbuf, n, c->s), ADD(c->s->icmp_sent, 1);
      ADD(c->s->tx_dropped, 1);
      return 1;
    }
  }
  /* iptunnel_xmit: __ip_select_ident for every packet; DF cleared when the path MTU is locked (ip_mtu_locked) */
  c->rnd ^= c->rnd << 13, c->rnd ^= c->rnd >> 17, c->rnd ^= c->rnd << 5;
  tunctl_outer_fixup(out, tunctl_ident_next(&c->ident, dst, dp->cfg.local, out[9], now, c->rnd), clear_df || locked);
  return 0;
}

/* the rx thread: one ICMP error read from the protocol-1 socket, handled as the kernel's err handlers */
static void twin_icmp(struct tunctl_dp *dp, const struct tunctl_table *tab, int self, const uint8_t *pkt, size_t len,
                      int ifindex, uint8_t *out, struct tunctl_stats *s) {
  struct tunctl_icmperr e;
  size_t olen;
  int a = tunctl_icmperr(tab, pkt, len, ifindex, &e, out, &olen);
  if (a == IEA_NONE || a == IEA_REDIRECT) return;
  if (a == IEA_ICMPV6) {
    if (e.tunnel == self) tun_write(dp, NULL, out, olen, s), ADD(s->icmp_errors, 1);
    return;
  }
  if (a == IEA_ERR_COUNT && e.tunnel != self) return;
  uint64_t now = mono_ms();
  pthread_mutex_lock(&dp->twin_lock);
  /* the path MTU is the namespace's (a route exception): every tunnel's engine learns it */
  if (a == IEA_PMTU) tunctl_pmtu_update(&dp->pmtu, e.dst, e.mtu, 0, now);
  else tunctl_err_note(&dp->errst, now);
  pthread_mutex_unlock(&dp->twin_lock);
  __atomic_store_n(&dp->twin_used, 1, __ATOMIC_RELEASE);
  if (e.tunnel == self) ADD(s->icmp_errors, 1);
}

/* encapsulates the inner packet in slot c->n and queues it */
static void tx_add(struct txctx *c, size_t len) {
  uint8_t *b = c->bufs + (size_t)c->n * SLOT;
  uint8_t *out;
  size_t outlen;
  uint32_t dst;
  int why;
  int res = tunctl_encap(&c->dp->cfg, &c->tx, b, len, &out, &outlen, &dst, c->icmpbuf, &why);
  int n = c->n;
  if (res == TX_SEND && twin_tx(c, b + TUNCTL_HEADROOM, len, out, outlen, dst)) return; /* kernel twin */
  if (res == TX_SEND) {
    memset(&c->sa[n], 0, sizeof c->sa[n]);
    c->sa[n].sin_family = AF_INET;
    c->sa[n].sin_addr.s_addr = dst;
    c->iov[n].iov_base = out;
    c->iov[n].iov_len = outlen;
    memset(&c->msgs[n], 0, sizeof c->msgs[n]);
    c->msgs[n].msg_hdr.msg_name = &c->sa[n];
    c->msgs[n].msg_hdr.msg_namelen = sizeof c->sa[n];
    c->msgs[n].msg_hdr.msg_iov = &c->iov[n];
    c->msgs[n].msg_hdr.msg_iovlen = 1;
    c->inlen[n] = len;
    c->n++;
    if (c->n == BATCH) tx_flush(c);
  } else if (res == TX_ICMP) {
    tun_write(c->dp, NULL, out, outlen, c->s);
    ADD(c->s->icmp_sent, 1);
    ADD(c->s->tx_dropped, 1);
  } else {
    ADD(c->s->txdrops[why], 1);
    ADD(c->s->tx_dropped, 1);
  }
}

static void *tx_main(void *arg) {
  struct tunctl_dp *dp = arg;
  struct txctx *c = calloc(1, sizeof *c);
  uint8_t *gbuf = malloc(65536 + 64);
  if (!c || !gbuf) return NULL;
  c->dp = dp;
  c->s = &dp->txs;
  c->ident.key = (uint32_t)getpid() ^ (uint32_t)mono_ms() ^ (uint32_t)(uintptr_t)c; /* kernel twin */
  c->rnd = c->ident.key | 1;
  c->bufs = malloc((size_t)BATCH * SLOT);
  if (!c->bufs) return NULL;
  struct pollfd pfd[2] = {{.fd = dp->tun_fd, .events = POLLIN}, {.fd = dp->stop_fd, .events = POLLIN}};
  for (;;) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[1].revents) break;
    if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      /* the TUN device was deleted under us (ip link del): stop; the daemon notices and exits */
      __atomic_store_n(&dp->gone, 1, __ATOMIC_RELAXED);
      break;
    }
    for (int reads = 0; reads < BATCH; reads++) {
      ssize_t r;
      if (!dp->vnet) {
        r = read(dp->tun_fd, c->bufs + (size_t)c->n * SLOT + TUNCTL_HEADROOM, 65535);
        if (r < 0) {
          if (errno == EINTR) continue;
          if (errno == EBADFD || errno == EIO) __atomic_store_n(&dp->gone, 1, __ATOMIC_RELAXED);
          else if (errno != EAGAIN) ADD(c->s->tx_errors, 1);
          break;
        }
        tx_add(c, (size_t)r);
        continue;
      }
      struct virtio_net_hdr vh;
      struct iovec v[2] = {{&vh, sizeof vh}, {gbuf, 65535}};
      r = readv(dp->tun_fd, v, 2);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EBADFD || errno == EIO) __atomic_store_n(&dp->gone, 1, __ATOMIC_RELAXED);
        else if (errno != EAGAIN) ADD(c->s->tx_errors, 1);
        break;
      }
      if ((size_t)r < sizeof vh) continue;
      size_t plen = (size_t)r - sizeof vh;
      int gso = vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
      struct tunctl_tso t;
      if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_TCPV6) && vh.gso_size &&
          tunctl_tso_parse(gbuf, plen, &t) == 0) {
        for (unsigned i = 0;; i++) {
          size_t sl = tunctl_tso_segment(gbuf, &t, vh.gso_size, i, c->bufs + (size_t)c->n * SLOT + TUNCTL_HEADROOM);
          if (!sl) break;
          ADD(c->s->tso_segments, 1);
          tx_add(c, sl);
        }
        continue;
      }
      if (gso != VIRTIO_NET_HDR_GSO_NONE) {
        ADD(c->s->txdrops[TXD_MALFORMED], 1); /* UFO etc. are never enabled */
        ADD(c->s->tx_dropped, 1);
        continue;
      }
      if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) tunctl_finish_csum(gbuf, plen, vh.csum_start, vh.csum_offset);
      memcpy(c->bufs + (size_t)c->n * SLOT + TUNCTL_HEADROOM, gbuf, plen);
      tx_add(c, plen);
    }
    tx_flush(c);
    if (__atomic_load_n(&dp->gone, __ATOMIC_RELAXED)) break;
  }
  free(c->bufs);
  free(c);
  free(gbuf);
  return NULL;
}

static void rx_flush_gro(struct tunctl_dp *dp, struct tunctl_gro *g, struct tunctl_stats *s) {
  struct virtio_net_hdr vh;
  size_t len = tunctl_gro_finish(g, &vh);
  if (len) tun_write(dp, &vh, g->buf, len, s);
  if (g->nseg > 1) ADD(s->gro_merged, g->nseg);
  tunctl_gro_reset(g);
}

/* ---- kernel-side sibling filter ----
 * A raw socket receives a copy of every packet of its protocol, so with N userspace tunnels of one protocol in a
 * namespace each packet is copied to N daemons, N-1 of which only find out in sibling_takes() that it is not
 * theirs (measured: three GRE tunnels in one namespace cut one GRE tunnel's TCP throughput from 2.4 to
 * 1.2-1.6 Gbit/s). A classic BPF filter on each raw socket drops, in the kernel, the packets whose identity
 * (outer source, destination and GRE key) is a sibling's and not ours. Everything else still reaches userspace:
 * packets too short for the filter's loads, and packets matching no tunnel. The exact decision stays with the
 * receive dispatch (tunctl_receive) behind it: the filter never drops a packet the dispatch could give us, because
 * our own identity is tested first and it covers every lookup pass that can select us. */

#define FILTER_MAX 1024 /* instructions; more siblings than fit: no filter (userspace checks them all) */

/* appends a block that falls through to `ret verdict` when the packet has c's identity, else skips past it.
 * Expects X = outer header length (ihl * 4). Returns the new length, or -1 if it would not fit. */
static int add_identity(struct sock_filter *f, int n, const struct tunctl_cfg *c, int gre, unsigned verdict) {
  struct sock_filter b[16];
  int m = 0;
  const unsigned char NEXT = 0xff; /* placeholder: jump past this block */
  int mcast = (ntohl(c->remote) >> 28) == 0xe;
  if (mcast) {
    /* a multicast remote takes packets sent to the group (ip_tunnel_lookup's third pass) */
    b[m++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16);
    b[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(c->remote), 0, NEXT);
  }
  /* a wildcard is matched by key value only in the lookup's last pass: no key test for it */
  if (!c->remote && !c->local) gre = 0;
  if (mcast) {
  } else if (c->remote) {
    b[m++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12);
    b[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(c->remote), 0, NEXT);
  }
  if (c->local && !mcast) {
    b[m++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16);
    b[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(c->local), 0, NEXT);
  }
  if (gre) {
    b[m++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0); /* GRE flags */
    if (c->has_ikey) {
      b[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x2000, 0, NEXT); /* K bit */
      b[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x8000, 2, 0);    /* C bit: key after csum */
      b[m++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_IND, 4);
      b[m++] = (struct sock_filter)BPF_STMT(BPF_JMP | BPF_JA, 1);
      b[m++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_IND, 8);
      b[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, c->ikey, 0, NEXT);
    } else {
      b[m++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x2000, NEXT, 0); /* keyed: not c's */
    }
  }
  b[m++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, verdict);
  if (n + m > FILTER_MAX) return -1;
  for (int i = 0; i < m; i++) {
    if (BPF_CLASS(b[i].code) == BPF_JMP && BPF_OP(b[i].code) != BPF_JA) {
      if (b[i].jt == NEXT) b[i].jt = (unsigned char)(m - i - 1);
      if (b[i].jf == NEXT) b[i].jf = (unsigned char)(m - i - 1);
    }
    f[n + i] = b[i];
  }
  return n + m;
}

/* builds the filter for one raw socket of outer protocol proto; returns its length, or 0 for "no filter" */
static int build_filter(struct sock_filter *f, const struct tunctl_cfg *own, const struct tunctl_entry *tab, int ntab,
                        int self, int proto) {
  int gre = proto == 47, n = 0, any = 0;
  for (int i = 0; i < ntab; i++) any |= i != self && tunctl_uses_proto(&tab[i].cfg, proto);
  if (!any) return 0;
  /* packets too short for the loads below go up (userspace counts them as truncated or malformed):
   * at least 32 bytes, and ihl * 4 + 12 for a GRE key after a checksum */
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0);
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 32, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0); /* X = ihl * 4 */
  f[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TXA, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 12);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_ST, 0);                     /* M[0] = ihl * 4 + 12 */
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0);
  f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_X, 0, 1, 0);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
  f[n++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0); /* X = ihl * 4 again */
  /* ours first: what we accept is never filtered, whoever else it also matches */
  if ((n = add_identity(f, n, own, gre, 0xffffffffu)) < 0) return 0;
  for (int i = 0; i < ntab; i++) {
    if (i == self || !tunctl_uses_proto(&tab[i].cfg, proto)) continue;
    if ((n = add_identity(f, n, &tab[i].cfg, gre, 0)) < 0) return 0;
  }
  if (n + 1 > FILTER_MAX) return 0;
  f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu); /* nobody's: up, to be counted */
  return n;
}

static void attach_filters(struct tunctl_dp *dp) {
  static __thread struct sock_filter f[FILTER_MAX];
  for (int i = 0; i < dp->nraw; i++) {
    int proto = i == 0 ? tunctl_outer_proto(&dp->cfg) : 4;
    int n = build_filter(f, &dp->cfg, dp->tab, dp->ntab, dp->self, proto);
    if (n > 0) {
      struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
      if (setsockopt(dp->raw_fd[i], SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0) continue;
    }
    int zero = 0; /* no siblings, too many, or the kernel refused: no filter (userspace checks) */
    setsockopt(dp->raw_fd[i], SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof zero);
  }
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* IFF_UP of every table entry, read now (ip_tunnel_lookup tests t->dev->flags & IFF_UP per packet; the daemon's
 * table is refreshed every second, a link set down or deleted must count sooner). Called with sib_lock held. */
static void refresh_flags(struct tunctl_dp *dp) {
  if (!dp->tab_names || dp->ctl_fd < 0) return;
  if (dp->nl_fd >= 0) {
    if (!__atomic_exchange_n(&dp->flags_stale, 0, __ATOMIC_RELAXED)) return;
  } else {
    uint64_t now = now_ms();
    if (now - dp->flags_at < TUNCTL_FLAGS_MS) return;
    dp->flags_at = now;
  }
  for (int i = 0; i < dp->ntab; i++) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, dp->tab_names[i], IFNAMSIZ - 1);
    dp->tab[i].up = ioctl(dp->ctl_fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
  }
}

void tunctl_dp_set_table(struct tunctl_dp *dp, const struct tunctl_entry *tab, const char (*names)[16], int n, int self) {
  if (n <= 0 || self < 0 || self >= n) return;
  struct tunctl_entry *copy = malloc(sizeof *copy * (size_t)n);
  char (*ncopy)[16] = malloc(16 * (size_t)n);
  if (!copy || !ncopy) {
    free(copy);
    free(ncopy);
    return;
  }
  memcpy(copy, tab, sizeof *copy * (size_t)n);
  memcpy(ncopy, names, 16 * (size_t)n);
  copy[self].cfg = dp->cfg;
  pthread_mutex_lock(&dp->sib_lock);
  free(dp->tab);
  free(dp->tab_names);
  dp->tab = copy;
  dp->tab_names = ncopy;
  dp->ntab = n;
  dp->self = self;
  dp->flags_at = 0;
  __atomic_store_n(&dp->flags_stale, 1, __ATOMIC_RELAXED);
  refresh_flags(dp);
  attach_filters(dp);
  pthread_mutex_unlock(&dp->sib_lock);
}

static void *rx_main(void *arg) {
  struct tunctl_dp *dp = arg;
  struct tunctl_stats *s = &dp->rxs;
  struct tunctl_rxstate rx = {0};
  struct tunctl_gro *gro = dp->vnet ? calloc(1, sizeof *gro) : NULL;
  uint8_t *bufs = malloc((size_t)BATCH * 65536);
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  static __thread char cbuf[BATCH][CMSG_SPACE(sizeof(struct in_pktinfo))];
  if (!bufs) return NULL;
  struct pollfd pfd[5];
  int np = 0, nl = -1, ic = -1;
  for (int i = 0; i < dp->nraw; i++) pfd[np++] = (struct pollfd){.fd = dp->raw_fd[i], .events = POLLIN};
  if (dp->nl_fd >= 0) nl = np, pfd[np++] = (struct pollfd){.fd = dp->nl_fd, .events = POLLIN};
  if (dp->icmp_fd >= 0) ic = np, pfd[np++] = (struct pollfd){.fd = dp->icmp_fd, .events = POLLIN}; /* kernel twin */
  pfd[np++] = (struct pollfd){.fd = dp->stop_fd, .events = POLLIN};
  for (;;) {
    if (poll(pfd, (nfds_t)np, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[np - 1].revents) break;
    if (nl >= 0 && pfd[nl].revents) {
      /* link changes first: packets of this round are dispatched with the flags after them */
      char nlbuf[8192];
      while (recv(dp->nl_fd, nlbuf, sizeof nlbuf, MSG_DONTWAIT) > 0) {
      }
      __atomic_store_n(&dp->flags_stale, 1, __ATOMIC_RELAXED);
    }
    if (ic >= 0 && pfd[ic].revents) { /* kernel twin: ICMP errors about outer packets */
      for (int j = 0; j < BATCH; j++) {
        struct iovec v = {bufs, 65536};
        struct msghdr mh = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = cbuf[0], .msg_controllen = sizeof cbuf[0]};
        ssize_t r = recvmsg(dp->icmp_fd, &mh, MSG_DONTWAIT);
        if (r < 0) break;
        int ifindex = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
          if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
            ifindex = ((struct in_pktinfo *)CMSG_DATA(cm))->ipi_ifindex;
        pthread_mutex_lock(&dp->sib_lock);
        struct tunctl_table tab = {dp->tab, dp->ntab};
        twin_icmp(dp, &tab, dp->self, bufs, (size_t)r, ifindex, bufs + 65536, s); /* out: the second slot */
        pthread_mutex_unlock(&dp->sib_lock);
      }
    }
    for (int f = 0; f < dp->nraw; f++) {
      if (!pfd[f].revents) continue;
      for (;;) {
        for (int j = 0; j < BATCH; j++) {
          iov[j].iov_base = bufs + (size_t)j * 65536;
          iov[j].iov_len = 65536;
          memset(&msgs[j], 0, sizeof msgs[j]);
          msgs[j].msg_hdr.msg_iov = &iov[j];
          msgs[j].msg_hdr.msg_iovlen = 1;
          msgs[j].msg_hdr.msg_control = cbuf[j];
          msgs[j].msg_hdr.msg_controllen = sizeof cbuf[j];
        }
        int k = recvmmsg(dp->raw_fd[f], msgs, BATCH, MSG_DONTWAIT, NULL);
        if (k < 0) {
          if (errno == EINTR) continue;
          break;
        }
        pthread_mutex_lock(&dp->sib_lock);
        refresh_flags(dp);
        struct tunctl_table tab = {dp->tab, dp->ntab};
        int self = dp->self;
        for (int j = 0; j < k; j++) {
          uint8_t *inner;
          size_t ilen;
          int res, v;
          int ifindex = 0;
          for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[j].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[j].msg_hdr, cm))
            if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
              ifindex = ((struct in_pktinfo *)CMSG_DATA(cm))->ipi_ifindex;
          if (msgs[j].msg_hdr.msg_flags & MSG_TRUNC) v = RXV_DROP, res = DR_TRUNCATED;
          else v = tunctl_receive(&tab, self, &rx, iov[j].iov_base, msgs[j].msg_len, ifindex, &inner, &ilen, &res);
          if (v == RXV_SIBLING) {
            ADD(s->rx_other, 1);
            continue;
          }
          if (v == RXV_IGNORE) continue;
          if (res != DR_OK) {
            ADD(s->drops[res], 1);
            ADD(s->rx_dropped, 1);
            if (res == DR_BAD_CSUM || res == DR_CSUM_FLAGS || res == DR_SEQ || res == DR_SPOOFED) ADD(s->rx_errors, 1);
            continue;
          }
          ADD(s->rx_packets, 1);
          ADD(s->rx_bytes, ilen);
          if (!gro) {
            tun_write(dp, NULL, inner, ilen, s);
            continue;
          }
          int g = tunctl_gro_add(gro, inner, ilen);
          if (g == 1) continue;
          rx_flush_gro(dp, gro, s);
          if (g == -1 && tunctl_gro_add(gro, inner, ilen) == 1) continue;
          tun_write(dp, NULL, inner, ilen, s);
        }
        pthread_mutex_unlock(&dp->sib_lock);
        if (gro) rx_flush_gro(dp, gro, s);
        if (k < BATCH) break;
      }
    }
  }
  free(bufs);
  free(gro);
  return NULL;
}

int tunctl_dp_start(struct tunctl_dp *dp) {
  dp->nraw = 0;
  dp->raw_fd[0] = dp->raw_fd[1] = dp->tx_fd = -1;
  int p = tunctl_outer_proto(&dp->cfg);
  /* receive sockets are never bound to `dev`: ip_tunnel_lookup prefers a tunnel's link but does not require it,
   * and the dispatch decides (it reads the receiving link from IP_PKTINFO) */
  if ((dp->raw_fd[dp->nraw] = open_raw(dp, p, 0)) < 0) return -1;
  dp->nraw++;
  if (dp->cfg.mode == TM_SIT && (dp->cfg.inner & TP_IPV4)) {
    if ((dp->raw_fd[dp->nraw] = open_raw(dp, 4, 0)) < 0) {
      close(dp->raw_fd[0]);
      return -1;
    }
    dp->nraw++;
  }
  dp->tx_fd = dp->raw_fd[0];
  if (dp->dev[0]) {
    if ((dp->tx_fd = open_raw(dp, p, 1)) < 0) {
      for (int i = 0; i < dp->nraw; i++) close(dp->raw_fd[i]);
      return -1;
    }
    /* a sending socket only: receive nothing on it */
    struct sock_filter none = BPF_STMT(BPF_RET | BPF_K, 0);
    struct sock_fprog prog = {.len = 1, .filter = &none};
    setsockopt(dp->tx_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  }
  pthread_mutex_init(&dp->sib_lock, NULL);
  /* kernel twin: a protocol-1 raw socket sees every ICMP error of the namespace without side effects (IP_RECVERR on
   * the sending socket would set sk_err, failing the next sendmmsg); the ICMP filter keeps only error types */
  pthread_mutex_init(&dp->twin_lock, NULL);
  tunctl_pmtu_init(&dp->pmtu);
  memset(&dp->errst, 0, sizeof dp->errst);
  dp->twin_used = 0;
  dp->icmp_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (dp->icmp_fd >= 0) {
    uint32_t keep = (1u << 3) | (1u << 5) | (1u << 11) | (1u << 12); /* ICMP_FILTER: the bits are types to drop */
    uint32_t drop = ~keep;
    setsockopt(dp->icmp_fd, SOL_RAW, 1 /* ICMP_FILTER */, &drop, sizeof drop);
    int one = 1;
    setsockopt(dp->icmp_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  }
  /* until the daemon passes the namespace's table: this tunnel alone, up */
  dp->tab = calloc(1, sizeof *dp->tab);
  if (!dp->tab) return -1;
  dp->tab[0].cfg = dp->cfg;
  dp->tab[0].up = 1;
  dp->tab[0].link = dp->dev[0] ? (int)if_nametoindex(dp->dev) : 0;
  dp->ntab = 1;
  dp->self = 0;
  dp->tab_names = calloc(1, 16);
  if (dp->tab_names) memcpy(dp->tab_names[0], dp->name, 16);
  dp->flags_at = 0;
  dp->flags_stale = 1;
  dp->ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  dp->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (dp->nl_fd >= 0) {
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
    if (bind(dp->nl_fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
      close(dp->nl_fd);
      dp->nl_fd = -1;
    }
  }
  dp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int fl = fcntl(dp->tun_fd, F_GETFL);
  fcntl(dp->tun_fd, F_SETFL, fl | O_NONBLOCK);
  if (pthread_create(&dp->tx_thread, NULL, tx_main, dp) != 0 || pthread_create(&dp->rx_thread, NULL, rx_main, dp) != 0) {
    snprintf(dp->err, sizeof dp->err, "pthread_create failed");
    return -1;
  }
  dp->running = 1;
  return 0;
}

void tunctl_dp_stop(struct tunctl_dp *dp) {
  if (!dp->running) return;
  uint64_t one = 1;
  if (write(dp->stop_fd, &one, sizeof one) < 0) {
  }
  pthread_join(dp->tx_thread, NULL);
  pthread_join(dp->rx_thread, NULL);
  for (int i = 0; i < dp->nraw; i++) close(dp->raw_fd[i]);
  if (dp->tx_fd != dp->raw_fd[0]) close(dp->tx_fd);
  close(dp->stop_fd);
  free(dp->tab);
  free(dp->tab_names);
  dp->tab = NULL;
  dp->tab_names = NULL;
  dp->ntab = 0;
  if (dp->ctl_fd >= 0) close(dp->ctl_fd);
  if (dp->nl_fd >= 0) close(dp->nl_fd);
  dp->ctl_fd = dp->nl_fd = -1;
  if (dp->icmp_fd >= 0) close(dp->icmp_fd); /* kernel twin */
  dp->icmp_fd = -1;
  pthread_mutex_destroy(&dp->twin_lock);
  pthread_mutex_destroy(&dp->sib_lock);
  dp->running = 0;
}

void tunctl_dp_stats(struct tunctl_dp *dp, struct tunctl_stats *o) {
  memset(o, 0, sizeof *o);
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
  o->tx_packets = LD(dp->txs.tx_packets);
  o->tx_bytes = LD(dp->txs.tx_bytes);
  o->tx_errors = LD(dp->txs.tx_errors);
  o->tx_dropped = LD(dp->txs.tx_dropped);
  o->icmp_sent = LD(dp->txs.icmp_sent);
  o->tso_segments = LD(dp->txs.tso_segments);
  o->gro_merged = LD(dp->rxs.gro_merged);
  o->rx_other = LD(dp->rxs.rx_other);
  o->collisions = LD(dp->txs.collisions);
  o->icmp_errors = LD(dp->rxs.icmp_errors);
  for (int i = 0; i < TXD__COUNT; i++) o->txdrops[i] = LD(dp->txs.txdrops[i]);
  o->rx_packets = LD(dp->rxs.rx_packets);
  o->rx_bytes = LD(dp->rxs.rx_bytes);
  o->rx_errors = LD(dp->rxs.rx_errors);
  o->rx_dropped = LD(dp->rxs.rx_dropped);
  for (int i = 0; i < DR__COUNT; i++) o->drops[i] = LD(dp->rxs.drops[i]);
}
