/* tunctl userspace engine: one data plane for all userspace tunnels of a namespace (see engine.h). */
#define _GNU_SOURCE
#include "engine.h"
#include "engroute.h"
#include "nlbatch.h"
#include "offload.h"
#include "unreach.h"

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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

unsigned int if_nametoindex(const char *ifname); /* <net/if.h> clashes with <linux/if.h> */

#define BATCH 64
#define SLOT (TUNCTL_HEADROOM + 65536)
#define RXSLOT 65536

#define ADD(field, v) __atomic_fetch_add(&(field), (v), __ATOMIC_RELAXED)

static const int eng_protos[ENGINE_NPROTO] = {4, 41, 47, 50, 1};

_Static_assert(TUNCTL_VTI_HEADROOM == TUNCTL_HEADROOM, "vti.c and the engine agree on the headroom");

/* the outer protocol of a tunnel (vti: ESP) */
static int outer_proto(const struct tunctl_cfg *cfg) { return cfg->mode == TM_VTI ? 50 : tunctl_outer_proto(cfg); }

static void vti_free(struct tunctl_vti *v) {
  if (!v) return;
  tunctl_vti_free(v);
  free(v);
}

static int proto_index(int proto) {
  for (int i = 0; i < ENGINE_NPROTO; i++)
    if (eng_protos[i] == proto) return i;
  return -1;
}

/* ---- the per-mode switch: the one place a new mode (vti over ESP, native/vti.c) plugs its codecs in ---- */

/* decapsulates a packet the dispatch selected for t (identity checks already made by the lookup) */
static int eng_decap(struct eng_tun *t, uint8_t *pkt, size_t len, uint8_t **inner, size_t *ilen) {
  if (t->vti) return tunctl_vti_decap(t->vti, pkt, len, inner, ilen); /* vti.c: VRX_OK, a drop, or TUNCTL_VTI_OTHER */
  struct tunctl_cfg cfg = t->cfg;
  cfg.dispatched = 1;
  switch (cfg.mode) {
  default:
    return tunctl_decap(&cfg, &t->rx, pkt, len, inner, ilen);
  }
}

/* encapsulates the inner packet at buf + TUNCTL_HEADROOM (see tunctl_encap) */
static int eng_encap(struct eng_tun *t, uint8_t *buf, size_t len, uint8_t **out, size_t *outlen, uint32_t *dst,
                     uint8_t *icmpbuf, int *why) {
  if (t->vti) { /* ---- vti: ESP (vti.c); its drop reasons are counted there ---- */
    *why = TXD_NONE;
    *dst = t->vti->remote;
    return tunctl_vti_encap(t->vti, buf, SLOT, len, out, outlen, icmpbuf); /* VTI_TX_* = TX_* */
  }
  switch (t->cfg.mode) {
  case TM_ISATAP: { /* the next hop from the route out of the device, as ipip6_tunnel_xmit (isatap.c, engroute.c) */
    const uint8_t *in = buf + TUNCTL_HEADROOM;
    uint32_t v4;
    int r = len >= 40 && (in[0] >> 4) == 6 ? tunctl_isatap_nexthop(t->v6r, t->nv6r, in + 24, &v4) : ISATAP_NH_NONE;
    if (r == ISATAP_NH_ERROR) {
      *why = TXD_NO_ROUTE; /* the kernel's tx_error */
      return TX_DROP;
    }
    if (r == ISATAP_NH_OK) {
      struct tunctl_cfg cfg = t->cfg;
      cfg.remote = v4;
      return tunctl_encap(&cfg, &t->tx, buf, len, out, outlen, dst, icmpbuf, why);
    }
    return tunctl_encap(&t->cfg, &t->tx, buf, len, out, outlen, dst, icmpbuf, why); /* no route: codec's choice */
  }
  default:
    return tunctl_encap(&t->cfg, &t->tx, buf, len, out, outlen, dst, icmpbuf, why);
  }
}

/* ---- sockets ---- */

static int open_raw(int proto, uint32_t fwmark, const char *dev, int recv, char *err, size_t errlen) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, proto);
  if (fd < 0) {
    snprintf(err, errlen, "raw socket protocol %d: %s", proto, strerror(errno));
    return -1;
  }
  int one = 1, big = 8 << 20;
  setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  if (recv) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one); /* the receiving link, for the dispatch */
  } else {
    /* a sending socket only: receive nothing on it */
    struct sock_filter none = BPF_STMT(BPF_RET | BPF_K, 0);
    struct sock_fprog prog = {.len = 1, .filter = &none};
    setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
  }
  /* multicast gre: the kernel never loops a tunnel's outer multicast back to its own host (sk_mc_loop is false
   * under dev_recursion_level, i.e. in a tunnel's xmit); a raw socket would (IP_MULTICAST_LOOP defaults to 1) */
  int zero = 0;
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero);
  if (fwmark) setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof fwmark);
  if (dev && dev[0] && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev)) < 0) {
    snprintf(err, errlen, "SO_BINDTODEVICE %s: %s", dev, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* a tunnel with a `dev`, a fwmark or a multicast remote sends through its own socket (receive sockets are never bound to `dev`:
 * ip_tunnel_lookup prefers a tunnel's link but does not require it, the dispatch decides) */
static int own_send_socket(const struct tunctl_cfg *cfg, const char *dev, char *err, size_t errlen) {
  int mc = tunctl_mcast_group(cfg, 1) != 0;
  if (!(dev && dev[0]) && !cfg->fwmark && !mc) return -2;
  int fd = open_raw(outer_proto(cfg), cfg->fwmark, dev, 0, err, errlen);
  if (fd >= 0 && mc && !(dev && dev[0])) {
    /* multicast gre: ip_tunnel_xmit routes the group from the local address, and a multicast route from a local
     * address leaves by the device that owns it (ip_route_output_key_hash_rcu), routing table or not; a raw
     * socket's route has no source, IP_MULTICAST_IF gives it that device. Refused while local is no address of
     * the namespace: the routing table decides then (as the kernel's route fails without it) */
    struct ip_mreqn mr;
    memset(&mr, 0, sizeof mr);
    mr.imr_address.s_addr = cfg->local;
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
  }
  return fd;
}

static int send_fd(struct tunctl_engine *e, struct eng_tun *t) {
  return t->send_fd >= 0 ? t->send_fd : e->raw[proto_index(outer_proto(&t->cfg))];
}

/* ---- TX ---- */

struct txctx {
  struct tunctl_engine *e;
  struct eng_tun *t;
  int fd;
  uint8_t *bufs;
  uint8_t *gbuf;
  uint8_t icmpbuf[2048];
  uint8_t frag[65536];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in sa[BATCH];
  size_t inlen[BATCH];
  int n;
  struct tunctl_ident ident; /* kernel twin: outer IP IDs */
  uint32_t rnd;
};

static void tun_write(struct eng_tun *t, const struct virtio_net_hdr *vh, const uint8_t *pkt, size_t len) {
  struct virtio_net_hdr zero;
  struct iovec v[2];
  int k = 0;
  if (t->vnet) {
    if (!vh) {
      memset(&zero, 0, sizeof zero);
      vh = &zero;
    }
    v[k].iov_base = (void *)vh;
    v[k++].iov_len = sizeof *vh;
  }
  v[k].iov_base = (void *)pkt;
  v[k++].iov_len = len;
  if (writev(t->tun_fd, v, k) < 0) ADD(t->s.rx_errors, 1);
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
  uint8_t *frag = c->frag;
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
    if (sendto(c->fd, frag, 20 + n, 0, (struct sockaddr *)&c->sa[i], sizeof c->sa[i]) < 0) return -1;
  }
  return 0;
}

/* the underlay refused message i as too big: without DF, fragment it; with DF, lower the tunnel's effective
 * MTU to what fits and tell the inner sender (ICMP frag needed / packet too big), as tnl_update_pmtu does.
 * Returns 1 if the packet went out after all. */
static int tx_too_big(struct txctx *c, int i) {
  if (c->t->vti) { /* ---- vti (vti.c) ---- */
    int pmtu = route_mtu(c->sa[i].sin_addr.s_addr);
    if (!(((const uint8_t *)c->iov[i].iov_base)[6] & 0x40)) return tx_fragment(c, i, pmtu) == 0;
    /* the inner packet is encrypted: lower the path MTU, later packets get the ICMP from tunctl_vti_encap */
    if (pmtu >= 68) __atomic_store_n(&c->t->vti->pmtu, pmtu, __ATOMIC_RELAXED);
    return 0;
  }
  size_t outlen = c->iov[i].iov_len, ilen = c->inlen[i];
  const uint8_t *inner = (const uint8_t *)c->iov[i].iov_base + (outlen - ilen);
  int pmtu = route_mtu(c->sa[i].sin_addr.s_addr);
  if (!(((const uint8_t *)c->iov[i].iov_base)[6] & 0x40)) return tx_fragment(c, i, pmtu) == 0;
  int overhead = (int)(outlen - ilen);
  if (pmtu <= overhead + 68) return 0;
  int mtu = pmtu - overhead;
  int cur = c->t->cfg.mtu > 0 ? c->t->cfg.mtu : tunctl_default_mtu(&c->t->cfg);
  if (mtu < cur) c->t->cfg.mtu = mtu; /* later packets get the ICMP from tunctl_encap directly */
  size_t n = tunctl_icmp_too_big(inner, ilen, mtu, c->icmpbuf);
  if (n) {
    tun_write(c->t, NULL, c->icmpbuf, n);
    ADD(c->t->s.icmp_sent, 1);
  }
  return 0;
}

static void tx_flush(struct txctx *c) {
  int i = 0;
  struct tunctl_stats *s = &c->t->s;
  while (i < c->n) {
    int k = sendmmsg(c->fd, c->msgs + i, (unsigned)(c->n - i), 0);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EMSGSIZE && tx_too_big(c, i)) {
        ADD(s->tx_packets, 1);
        ADD(s->tx_bytes, c->inlen[i]);
      } else {
        ADD(s->tx_errors, 1); /* e.g. no route to the remote, EMSGSIZE with DF */
      }
      i++;
      continue;
    }
    uint64_t bytes = 0;
    for (int j = i; j < i + k; j++) bytes += c->inlen[j];
    ADD(s->tx_packets, (uint64_t)k);
    ADD(s->tx_bytes, bytes);
    i += k;
  }
  c->n = 0;
}

/* ---- kernel twin call sites (issue #6 item 3; native/icmperr.c, native/pmtu.c) ---- */
static int send_unreach(struct tunctl_engine *e, const uint8_t *pkt, size_t len, int ifindex, uint8_t *out);

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* before an encapsulated packet of c->t is queued: routing loop, link failure after ICMP errors, path MTU, IP ID.
 * Returns 1 when the packet was consumed (dropped, or refused with an ICMP error to the inner sender). */
static int twin_tx(struct txctx *c, const uint8_t *inner, size_t len, uint8_t *out, size_t outlen, uint32_t dst) {
  struct tunctl_engine *e = c->e;
  struct eng_tun *t = c->t;
  if (tunctl_routing_loop(&t->cfg, inner, len)) {
    ADD(t->s.collisions, 1);
    ADD(t->s.tx_errors, 1);
    return 1;
  }
  uint64_t now = mono_ms();
  int fire = 0, pmtu = 0, locked = 0, clear_df = 0;
  if (__atomic_load_n(&e->twin_used, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&e->twin_lock);
    fire = tunctl_err_xmit(&t->errst, now);
    pmtu = tunctl_pmtu_get(&e->pmtu, dst, 0, now, &locked);
    pthread_mutex_unlock(&e->twin_lock);
  }
  if (fire) { /* dst_link_failure: the inner sender hears of it, the packet still goes */
    size_t n = tunctl_icmp_link_failure(inner, len, c->icmpbuf);
    if (n) tun_write(t, NULL, c->icmpbuf, n), ADD(t->s.icmp_sent, 1);
  }
  if (pmtu > 0) {
    int sit6 = (t->cfg.mode == TM_SIT || t->cfg.mode == TM_ISATAP) && (inner[0] >> 4) == 6;
    int devmtu = t->cfg.mtu > 0 ? t->cfg.mtu : tunctl_default_mtu(&t->cfg);
    int r = tunctl_tnl_pmtu_check(sit6, (int)(outlen - len - 20), (out[6] & 0x40) != 0, inner, len, pmtu, devmtu, &clear_df);
    if (r != 0) {
      size_t n = r > 0 ? tunctl_icmp_too_big(inner, len, r, c->icmpbuf) : 0;
      if (n) tun_write(t, NULL, c->icmpbuf, n), ADD(t->s.icmp_sent, 1);
      ADD(t->s.tx_dropped, 1);
      return 1;
    }
  }
  /* iptunnel_xmit: __ip_select_ident for every packet; DF cleared when the path MTU is locked (ip_mtu_locked) */
  c->rnd ^= c->rnd << 13, c->rnd ^= c->rnd >> 17, c->rnd ^= c->rnd << 5;
  tunctl_outer_fixup(out, tunctl_ident_next(&c->ident, dst, t->cfg.local, out[9], now, c->rnd), clear_df || locked);
  return 0;
}

/* the protocol-1 receive thread: one ICMP error, handled as the kernel's err handlers with the engine's tunnel
 * table (called with the table read-locked); out: room for an ICMPv6 relay */
static void twin_icmp(struct tunctl_engine *e, const uint8_t *pkt, size_t len, int ifindex, uint8_t *out) {
  struct tunctl_table tab = {e->entries, e->n};
  struct tunctl_icmperr r;
  size_t olen;
  int a = tunctl_icmperr(&tab, pkt, len, ifindex, &r, out, &olen);
  if (a == IEA_NONE || a == IEA_REDIRECT) return;
  struct eng_tun *t = r.tunnel >= 0 && r.tunnel < e->n ? e->order[r.tunnel] : NULL;
  if (a == IEA_ICMPV6) {
    if (t) tun_write(t, NULL, out, olen), ADD(t->s.icmp_errors, 1);
    return;
  }
  if (a == IEA_ERR_COUNT && !t) return;
  uint64_t now = mono_ms();
  pthread_mutex_lock(&e->twin_lock);
  /* the path MTU is the namespace's (a route exception): every tunnel of the engine learns it */
  if (a == IEA_PMTU) tunctl_pmtu_update(&e->pmtu, r.dst, r.mtu, 0, now);
  else tunctl_err_note(&t->errst, now);
  pthread_mutex_unlock(&e->twin_lock);
  __atomic_store_n(&e->twin_used, 1, __ATOMIC_RELEASE);
  if (t) ADD(t->s.icmp_errors, 1);
}

/* encapsulates the inner packet in slot c->n and queues it */
static void tx_add(struct txctx *c, size_t len) {
  uint8_t *b = c->bufs + (size_t)c->n * SLOT;
  uint8_t *out;
  size_t outlen;
  uint32_t dst;
  int why;
  struct tunctl_stats *s = &c->t->s;
  int res = eng_encap(c->t, b, len, &out, &outlen, &dst, c->icmpbuf, &why);
  int n = c->n;
  if (res == TX_SEND && !c->t->vti && twin_tx(c, b + TUNCTL_HEADROOM, len, out, outlen, dst)) return; /* kernel twin */
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
    tun_write(c->t, NULL, out, outlen);
    ADD(s->icmp_sent, 1);
    ADD(s->tx_dropped, 1);
  } else {
    if (!c->t->vti) ADD(s->txdrops[why], 1);
    ADD(s->tx_dropped, 1);
  }
}

/* drains up to BATCH packets from t's TUN device; called with the table read-locked */
static void tx_drain(struct txctx *c, struct eng_tun *t) {
  c->t = t;
  c->fd = send_fd(c->e, t);
  c->n = 0;
  struct tunctl_stats *s = &t->s;
  for (int reads = 0; reads < BATCH; reads++) {
    ssize_t r;
    if (!t->vnet) {
      r = read(t->tun_fd, c->bufs + (size_t)c->n * SLOT + TUNCTL_HEADROOM, 65535);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EBADFD || errno == EIO) __atomic_store_n(&t->gone, 1, __ATOMIC_RELAXED);
        else if (errno != EAGAIN) ADD(s->tx_errors, 1);
        break;
      }
      tx_add(c, (size_t)r);
      continue;
    }
    struct virtio_net_hdr vh;
    struct iovec v[2] = {{&vh, sizeof vh}, {c->gbuf, 65535}};
    r = readv(t->tun_fd, v, 2);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EBADFD || errno == EIO) __atomic_store_n(&t->gone, 1, __ATOMIC_RELAXED);
      else if (errno != EAGAIN) ADD(s->tx_errors, 1);
      break;
    }
    if ((size_t)r < sizeof vh) continue;
    size_t plen = (size_t)r - sizeof vh;
    int gso = vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
    struct tunctl_tso tso;
    if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_TCPV6) && vh.gso_size &&
        tunctl_tso_parse(c->gbuf, plen, &tso) == 0) {
      for (unsigned i = 0;; i++) {
        size_t sl = tunctl_tso_segment(c->gbuf, &tso, vh.gso_size, i, c->bufs + (size_t)c->n * SLOT + TUNCTL_HEADROOM);
        if (!sl) break;
        ADD(s->tso_segments, 1);
        tx_add(c, sl);
      }
      continue;
    }
    if (gso != VIRTIO_NET_HDR_GSO_NONE) {
      ADD(s->txdrops[TXD_MALFORMED], 1); /* UFO etc. are never enabled */
      ADD(s->tx_dropped, 1);
      continue;
    }
    if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) tunctl_finish_csum(c->gbuf, plen, vh.csum_start, vh.csum_offset);
    memcpy(c->bufs + (size_t)c->n * SLOT + TUNCTL_HEADROOM, c->gbuf, plen);
    tx_add(c, plen);
  }
  tx_flush(c);
}

struct txarg {
  struct tunctl_engine *e;
  int ep;
};

static void *tx_main(void *arg) {
  struct txarg *a = arg;
  struct tunctl_engine *e = a->e;
  int ep = a->ep;
  free(a);
  pthread_setname_np(pthread_self(), "tunctl-tx");
  struct txctx *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->e = e;
  c->ident.key = (uint32_t)getpid() ^ (uint32_t)mono_ms() ^ (uint32_t)(uintptr_t)c; /* kernel twin */
  c->rnd = c->ident.key | 1;
  c->bufs = malloc((size_t)BATCH * SLOT);
  c->gbuf = malloc(65536 + 64);
  if (!c->bufs || !c->gbuf) return NULL;
  struct epoll_event ev[64];
  for (;;) {
    int k = epoll_wait(ep, ev, 64, -1);
    if (k < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int stop = 0;
    pthread_rwlock_rdlock(&e->lock);
    for (int i = 0; i < k; i++) {
      if (ev[i].data.u64 == UINT64_MAX) {
        stop = 1;
        continue;
      }
      uint32_t slot = (uint32_t)ev[i].data.u64, gen = (uint32_t)(ev[i].data.u64 >> 32);
      struct eng_tun *t = slot < ENGINE_MAX ? e->slots[slot] : NULL;
      if (!t || t->gen != gen) continue; /* removed (or replaced) since epoll_wait returned */
      if (ev[i].events & (EPOLLERR | EPOLLHUP)) {
        /* the TUN device was deleted under us (ip link del): the control notices and forgets the tunnel */
        __atomic_store_n(&t->gone, 1, __ATOMIC_RELAXED);
        epoll_ctl(ep, EPOLL_CTL_DEL, t->tun_fd, NULL);
        continue;
      }
      tx_drain(c, t);
      if (__atomic_load_n(&t->gone, __ATOMIC_RELAXED)) epoll_ctl(ep, EPOLL_CTL_DEL, t->tun_fd, NULL);
    }
    pthread_rwlock_unlock(&e->lock);
    if (stop) break;
  }
  free(c->bufs);
  free(c->gbuf);
  free(c);
  return NULL;
}

/* ---- RX ---- */

/* IFF_UP of every table entry, re-read after a link change (ip_tunnel_lookup tests t->dev->flags & IFF_UP per
 * packet). Called with the table read-locked: one thread at a time writes the flags. */
static void refresh_flags(struct tunctl_engine *e) {
  if (!__atomic_load_n(&e->flags_stale, __ATOMIC_RELAXED)) return;
  if (pthread_mutex_trylock(&e->flags_lock) != 0) return; /* another thread refreshes them now */
  if (__atomic_exchange_n(&e->flags_stale, 0, __ATOMIC_RELAXED)) {
    for (int i = 0; i < e->n; i++) {
      struct ifreq ifr;
      memset(&ifr, 0, sizeof ifr);
      memcpy(ifr.ifr_name, e->order[i]->name, IFNAMSIZ - 1);
      int up = ioctl(e->ctl_fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
      __atomic_store_n(&e->entries[i].up, up, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&e->tabgen, 1, __ATOMIC_RELAXED);
    tunctl_engine_mcast_sync(e); /* multicast gre: ipgre_open / ipgre_close on IFF_UP changes (engroute.c) */
  }
  pthread_mutex_unlock(&e->flags_lock);
}

/* One link's IFF_UP from its RTM_NEWLINK / RTM_DELLINK (a deleted device counts as down), found by ifindex in the
 * dispatch order (sorted by ifindex): O(log n) per notification, where re-reading every tunnel's flags at each
 * notification cost n ioctls each time (an apply creating 1000 devices sends thousands of them). Returns 1 if the
 * tunnel's up state changed. Caller holds the table's read lock. */
static int link_event(struct tunctl_engine *e, const struct nlmsghdr *h) {
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg))) return 0;
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  int lo = 0, hi = e->n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (e->order[mid]->ifindex < ifi->ifi_index) lo = mid + 1;
    else hi = mid;
  }
  if (lo == e->n || e->order[lo]->ifindex != ifi->ifi_index) return 0;
  int up = h->nlmsg_type == RTM_NEWLINK && (ifi->ifi_flags & IFF_UP);
  if (__atomic_load_n(&e->entries[lo].up, __ATOMIC_RELAXED) == up) return 0;
  __atomic_store_n(&e->entries[lo].up, up, __ATOMIC_RELAXED);
  return 1;
}

/* a receive thread's cache of dispatch decisions: tunctl_select reads only the outer protocol, addresses, GRE
 * key and receiving link, so a decision is reused for packets with the same ones until the table changes */
#define RXCACHE 256
struct rxcache {
  uint64_t tabgen;
  uint32_t saddr, daddr, key;
  int ifindex, has_key, sel;
};

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* the identity the lookup reads; 0 if the packet is not simple enough to cache (the dispatch handles it) */
static int rx_identity(const uint8_t *pkt, size_t len, int proto, uint32_t *saddr, uint32_t *daddr, int *has_key, uint32_t *key) {
  if (len < 20 || (pkt[0] >> 4) != 4) return 0;
  size_t ihl = (size_t)(pkt[0] & 15) * 4;
  size_t tot = (size_t)pkt[2] << 8 | pkt[3];
  if (ihl < 20 || tot < ihl || tot > len || pkt[9] != proto) return 0;
  memcpy(saddr, pkt + 12, 4);
  memcpy(daddr, pkt + 16, 4);
  *has_key = 0;
  *key = 0;
  if (proto == 47) {
    if (tot - ihl < 4) return 0;
    const uint8_t *g = pkt + ihl;
    uint16_t flags = (uint16_t)(g[0] << 8 | g[1]);
    size_t off = 4 + ((flags & 0x8000) ? 4 : 0);
    if (flags & 0x2000) {
      if (tot - ihl < off + 4) return 0;
      *has_key = 1;
      *key = rd32(g + off);
    }
  }
  return 1;
}

struct rxarg {
  struct tunctl_engine *e;
  int pi;
};

static void rx_flush_gro(struct eng_tun *t, struct tunctl_gro *g) {
  struct virtio_net_hdr vh;
  size_t len = tunctl_gro_finish(g, &vh);
  if (len && t) tun_write(t, &vh, g->buf, len);
  if (t && g->nseg > 1) ADD(t->s.gro_merged, g->nseg);
  tunctl_gro_reset(g);
}

/* one decapsulated inner packet of t: counted, then written to t's TUN device, TCP segments coalesced (GRO) into
 * the pending train *gro_t when the device has offloads */
static void rx_deliver(struct eng_tun *t, const uint8_t *inner, size_t ilen, struct tunctl_gro *gro, struct eng_tun **gro_t) {
  ADD(t->s.rx_packets, 1);
  ADD(t->s.rx_bytes, ilen);
  if (!t->vnet) {
    tun_write(t, NULL, inner, ilen);
    return;
  }
  if (*gro_t != t) {
    rx_flush_gro(*gro_t, gro);
    *gro_t = t;
  }
  int g = tunctl_gro_add(gro, inner, ilen);
  if (g == 1) return;
  rx_flush_gro(t, gro);
  if (g == -1 && tunctl_gro_add(gro, inner, ilen) == 1) return;
  tun_write(t, NULL, inner, ilen);
}

static void *rx_main(void *arg) {
  struct rxarg *a = arg;
  struct tunctl_engine *e = a->e;
  int pi = a->pi, proto = eng_protos[pi];
  free(a);
  char tname[16]; /* per-thread CPU in top -H / /proc/PID/task/TID/comm (bench/vti.sh) */
  snprintf(tname, sizeof tname, "tunctl-rx%d", proto);
  pthread_setname_np(pthread_self(), tname);
  int fd = e->raw[pi];
  struct tunctl_gro *gro = calloc(1, sizeof *gro);
  struct rxcache *cache = calloc(RXCACHE, sizeof *cache);
  uint8_t *bufs = malloc((size_t)BATCH * RXSLOT);
  struct mmsghdr *msgs = calloc(BATCH, sizeof *msgs);
  struct iovec *iov = calloc(BATCH, sizeof *iov);
  char (*cbuf)[CMSG_SPACE(sizeof(struct in_pktinfo))] = calloc(BATCH, sizeof *cbuf);
  /* kernel twin: an ICMPv6 relay (protocol 1); an ICMP unreachable for a packet no tunnel takes (4, 41, 47) */
  uint8_t *icmpout = proto != 50 ? malloc(2048) : NULL;
  if (!gro || !cache || !bufs || !msgs || !iov || !cbuf || (proto != 50 && !icmpout)) return NULL;
  struct pollfd pfd[3];
  int np = 0, nl = -1;
  pfd[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
  if (pi == 0 && e->nl_fd >= 0) nl = np, pfd[np++] = (struct pollfd){.fd = e->nl_fd, .events = POLLIN};
  pfd[np++] = (struct pollfd){.fd = e->stop_fd, .events = POLLIN};
  for (;;) {
    if (poll(pfd, (nfds_t)np, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[np - 1].revents) break;
    if (nl >= 0 && pfd[nl].revents) {
      /* link changes first: packets of this round are dispatched with the flags after them */
      char nlbuf[8192];
      ssize_t r;
      int v6routes = 0, changed = 0;
      pthread_rwlock_rdlock(&e->lock);
      while ((r = recv(e->nl_fd, nlbuf, sizeof nlbuf, MSG_DONTWAIT)) > 0 || (r < 0 && errno == ENOBUFS)) {
        if (r < 0) { /* notifications lost: read everything again */
          v6routes = 1;
          __atomic_store_n(&e->flags_stale, 1, __ATOMIC_RELAXED);
          continue;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)nlbuf; NLMSG_OK(h, (unsigned)r); h = NLMSG_NEXT(h, r)) {
          if ((h->nlmsg_type == RTM_NEWROUTE || h->nlmsg_type == RTM_DELROUTE) &&
              ((struct rtmsg *)NLMSG_DATA(h))->rtm_family == AF_INET6)
            v6routes = 1;
          if (h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK) changed |= link_event(e, h);
        }
      }
      if (changed) __atomic_fetch_add(&e->tabgen, 1, __ATOMIC_RELAXED);
      refresh_flags(e); /* only after lost notifications */
      /* now, not with the next packet: a multicast gre tunnel coming up joins its group (the packets to the group
       * arrive only then); one that could not join (no route to the group) tries again at any link change */
      tunctl_engine_mcast_sync(e);
      pthread_rwlock_unlock(&e->lock);
      if (v6routes) tunctl_engine_isatap_routes(e); /* isatap: the routes out of its device (engroute.c) */
    }
    if (!pfd[0].revents) continue;
    for (;;) {
      for (int j = 0; j < BATCH; j++) {
        iov[j].iov_base = bufs + (size_t)j * RXSLOT;
        iov[j].iov_len = RXSLOT;
        memset(&msgs[j], 0, sizeof msgs[j]);
        msgs[j].msg_hdr.msg_iov = &iov[j];
        msgs[j].msg_hdr.msg_iovlen = 1;
        msgs[j].msg_hdr.msg_control = cbuf[j];
        msgs[j].msg_hdr.msg_controllen = sizeof cbuf[j];
      }
      int k = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
      if (k < 0) {
        if (errno == EINTR) continue;
        break;
      }
      pthread_rwlock_rdlock(&e->lock);
      refresh_flags(e);
      uint64_t tabgen = __atomic_load_n(&e->tabgen, __ATOMIC_RELAXED);
      struct tunctl_table tab = {e->entries, e->n};
      struct eng_tun *gro_t = NULL;
      for (int j = 0; j < k; j++) {
        uint8_t *pkt = iov[j].iov_base, *inner;
        size_t len = msgs[j].msg_len, ilen;
        int ifindex = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[j].msg_hdr); cm; cm = CMSG_NXTHDR(&msgs[j].msg_hdr, cm))
          if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
            ifindex = ((struct in_pktinfo *)CMSG_DATA(cm))->ipi_ifindex;
        if (!e->n) continue;
        if (proto == 1) { /* ---- kernel twin: ICMP errors about outer packets (icmperr.c) ---- */
          if (!(msgs[j].msg_hdr.msg_flags & MSG_TRUNC)) twin_icmp(e, pkt, len, ifindex, icmpout);
          continue;
        }
        if (proto == 50) {
          /* ---- vti: ESP (vti.c). Each vti matches its own addresses and SPI; the first that does not answer
           * "other" takes the packet. None: the kernel drops it silently (XfrmInNoStates), so do we. ---- */
          if (msgs[j].msg_hdr.msg_flags & MSG_TRUNC) continue;
          struct eng_tun *vt = NULL;
          for (int i = e->n - 1; i >= 0; i--) {
            struct eng_tun *t = e->order[i];
            if (!t->vti) continue;
            int r = tunctl_vti_decap(t->vti, pkt, len, &inner, &ilen);
            if (r == TUNCTL_VTI_OTHER) continue;
            if (r != VRX_OK) ADD(t->s.rx_dropped, 1);
            else vt = t;
            break;
          }
          /* decrypted: delivered as every other mode's inner packets (receive coalescing below) */
          if (vt) rx_deliver(vt, inner, ilen, gro, &gro_t);
          continue;
        }
        int sel = TUNCTL_SEL_NONE, why = SEL_MALFORMED;
        uint32_t sa = 0, da = 0, key = 0;
        int has_key = 0;
        struct rxcache *ce = NULL;
        if (!(msgs[j].msg_hdr.msg_flags & MSG_TRUNC)) {
          if (rx_identity(pkt, len, proto, &sa, &da, &has_key, &key)) {
            ce = &cache[(sa * 2654435761u ^ da ^ key * 40503u ^ (uint32_t)ifindex) % RXCACHE];
            if (ce->tabgen == tabgen && ce->saddr == sa && ce->daddr == da && ce->key == key && ce->has_key == has_key &&
                ce->ifindex == ifindex)
              sel = ce->sel, why = SEL_OK;
            else
              ce->tabgen = 0;
          }
          if (sel == TUNCTL_SEL_NONE) {
            sel = tunctl_select(&tab, pkt, len, ifindex, &why);
            if (ce && sel != TUNCTL_SEL_NONE)
              *ce = (struct rxcache){.tabgen = tabgen, .saddr = sa, .daddr = da, .key = key, .has_key = has_key, .ifindex = ifindex, .sel = sel};
          }
        }
        if (sel == TUNCTL_SEL_NONE) {
          /* nobody's: counted once, by the oldest tunnel listening on this protocol (as tunctl_receive) */
          int first = -1;
          for (int i = 0; i < e->n && first < 0; i++)
            if (!e->order[i]->vti && tunctl_uses_proto(&e->entries[i].cfg, proto)) first = i;
          if (first < 0) continue;
          struct eng_tun *t = e->order[first];
          int drop = DR_TRUNCATED;
          if (!(msgs[j].msg_hdr.msg_flags & MSG_TRUNC)) {
            drop = DR_NO_TUNNEL;
            if (why == SEL_MALFORMED) {
              /* the codec says how (truncated vs malformed), as tunctl_receive */
              struct tunctl_rxstate scratch = {0};
              drop = tunctl_decap(&t->cfg, &scratch, pkt, len, &inner, &ilen) == DR_TRUNCATED ? DR_TRUNCATED : DR_MALFORMED;
            }
          }
          ADD(t->s.drops[drop], 1);
          ADD(t->s.rx_dropped, 1);
          /* gre_rcv / tunnel4_rcv / tunnel64_rcv: icmp_send(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH) */
          if (drop == DR_NO_TUNNEL && send_unreach(e, pkt, len, ifindex, icmpout)) ADD(t->s.icmp_sent, 1);
          continue;
        }
        struct eng_tun *t = e->order[sel];
        int res = eng_decap(t, pkt, len, &inner, &ilen);
        if (res != DR_OK) {
          ADD(t->s.drops[res], 1);
          ADD(t->s.rx_dropped, 1);
          if (res == DR_BAD_CSUM || res == DR_CSUM_FLAGS || res == DR_SEQ || res == DR_SPOOFED) ADD(t->s.rx_errors, 1);
          continue;
        }
        rx_deliver(t, inner, ilen, gro, &gro_t);
      }
      rx_flush_gro(gro_t, gro);
      pthread_rwlock_unlock(&e->lock);
      if (k < BATCH) break;
    }
  }
  free(bufs);
  free(gro);
  free(cache);
  free(msgs);
  free(iov);
  free(cbuf);
  free(icmpout);
  return NULL;
}

/* ---- a packet no tunnel takes: ICMP port unreachable (unreach.c), on the protocol-1 socket (IP_HDRINCL: the
 * kernel fills the id and counts it in Icmp OutDestUnreachs as its own icmp_send does) ---- */

static int read_sysctl(const char *name, long def) {
  char path[96], buf[32];
  snprintf(path, sizeof path, "/proc/sys/net/ipv4/%s", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return (int)def; /* not in this kernel or namespace: the kernel's default */
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return (int)def;
  buf[n] = 0;
  char *end;
  long v = strtol(buf, &end, 10);
  return end == buf ? (int)def : (int)v;
}

static void unreach_init(struct tunctl_engine *e) {
  struct tunctl_unreach_cfg c = TUNCTL_UNREACH_DEFAULT_CFG;
  c.ttl = read_sysctl("ip_default_ttl", c.ttl);
  c.ratelimit_ms = (uint32_t)read_sysctl("icmp_ratelimit", c.ratelimit_ms);
  c.ratemask = (uint32_t)read_sysctl("icmp_ratemask", c.ratemask);
  c.msgs_per_sec = (uint32_t)read_sysctl("icmp_msgs_per_sec", c.msgs_per_sec);
  c.msgs_burst = (uint32_t)read_sysctl("icmp_msgs_burst", c.msgs_burst);
  tunctl_unreach_init(e->unreach, &c, mono_ms());
}

static int send_unreach(struct tunctl_engine *e, const uint8_t *pkt, size_t len, int ifindex, uint8_t *out) {
  if (!e->unreach || e->raw[ENGINE_ICMP] < 0) return 0;
  if (pkt[9] == 47 && !tunctl_unreach_gre_parses(pkt, len)) return 0;
  size_t n = tunctl_unreach_build(pkt, len, e->unreach->cfg.ttl, out);
  if (!n) return 0;
  static __thread uint32_t rnd = 2463534242u;
  rnd ^= rnd << 13, rnd ^= rnd >> 17, rnd ^= rnd << 5;
  uint32_t dst;
  memcpy(&dst, pkt + 12, 4);
  pthread_mutex_lock(&e->unreach_lock);
  int ok = tunctl_unreach_allow(e->unreach, dst, ifindex == 1 /* lo */, mono_ms(), rnd);
  pthread_mutex_unlock(&e->unreach_lock);
  if (!ok) return 0;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = dst};
  return sendto(e->raw[ENGINE_ICMP], out, n, 0, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)n;
}

/* ---- control ---- */

static int start_rx(struct tunctl_engine *e, int i, char *err, size_t errlen) {
  struct rxarg *a = malloc(sizeof *a);
  if (!a) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  *a = (struct rxarg){e, i};
  if (pthread_create(&e->rx_thread[i], NULL, rx_main, a) != 0) {
    free(a);
    snprintf(err, errlen, "pthread_create failed");
    return -1;
  }
  e->rx_started[i] = 1;
  return 0;
}

/* ---- vti: the ESP socket and its receive thread, opened with the namespace's first vti (control thread only):
 * a namespace without vti has no protocol-50 socket ---- */
static int need_esp(struct tunctl_engine *e, char *err, size_t errlen) {
  if (e->rx_started[ENGINE_ESP]) return 0;
  if (e->raw[ENGINE_ESP] < 0 && (e->raw[ENGINE_ESP] = open_raw(50, 0, NULL, 1, err, errlen)) < 0) return -1;
  return start_rx(e, ENGINE_ESP, err, errlen);
}

struct tunctl_engine *tunctl_engine_new(char *err, size_t errlen) {
  struct tunctl_engine *e = calloc(1, sizeof *e);
  if (!e) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  pthread_rwlockattr_t at;
  pthread_rwlockattr_init(&at);
  /* the control's write lock is not starved by packet threads that keep re-taking the read lock */
  pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&e->lock, &at);
  pthread_rwlockattr_destroy(&at);
  pthread_mutex_init(&e->flags_lock, NULL);
  pthread_mutex_init(&e->twin_lock, NULL); /* kernel twin */
  pthread_mutex_init(&e->mc_lock, NULL);   /* multicast gre */
  pthread_mutex_init(&e->unreach_lock, NULL);
  tunctl_pmtu_init(&e->pmtu);
  e->slots = calloc(ENGINE_MAX, sizeof *e->slots);
  e->unreach = malloc(sizeof *e->unreach);
  if (e->unreach) unreach_init(e);
  e->tabgen = 1;
  e->nl_fd = e->ctl_fd = e->stop_fd = e->cfg_nl = -1;
  for (int i = 0; i < ENGINE_NPROTO; i++) e->raw[i] = -1;
  for (int i = 0; i < ENGINE_TX; i++) e->txep[i] = -1;
  if (!e->slots || !e->unreach) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  for (int i = 0; i < ENGINE_NPROTO; i++) /* ESP: with the first vti (need_esp) */
    if (i != ENGINE_ESP && (e->raw[i] = open_raw(eng_protos[i], 0, NULL, 1, err, errlen)) < 0) goto fail;
  {
    /* kernel twin: the protocol-1 socket sees every ICMP error of the namespace without side effects (IP_RECVERR on
     * the sending sockets would set sk_err, failing the next sendmmsg); ICMP_FILTER keeps only the error types */
    uint32_t keep = (1u << 3) | (1u << 5) | (1u << 11) | (1u << 12); /* the filter's bits are types to drop */
    uint32_t drop = ~keep;
    if (setsockopt(e->raw[ENGINE_ICMP], SOL_RAW, 1 /* ICMP_FILTER */, &drop, sizeof drop) < 0) {
      snprintf(err, errlen, "ICMP_FILTER: %s", strerror(errno));
      goto fail;
    }
  }
  e->ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  e->cfg_nl = tunctl_nlbatch_socket();
  if (e->ctl_fd < 0 || e->cfg_nl < 0) {
    snprintf(err, errlen, "control sockets: %s", strerror(errno));
    goto fail;
  }
  e->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (e->nl_fd >= 0) {
    /* link changes (IFF_UP); IPv6 route changes (isatap next hops, engroute.c) */
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK | RTMGRP_IPV6_ROUTE};
    if (bind(e->nl_fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
      close(e->nl_fd);
      e->nl_fd = -1;
    }
  }
  e->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->stop_fd < 0) {
    snprintf(err, errlen, "eventfd: %s", strerror(errno));
    goto fail;
  }
  for (int i = 0; i < ENGINE_TX; i++) {
    if ((e->txep[i] = epoll_create1(EPOLL_CLOEXEC)) < 0) {
      snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
      goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    epoll_ctl(e->txep[i], EPOLL_CTL_ADD, e->stop_fd, &ev);
  }
  for (int i = 0; i < ENGINE_NPROTO; i++)
    if (e->raw[i] >= 0 && start_rx(e, i, err, errlen) < 0) goto fail;
  for (int i = 0; i < ENGINE_TX; i++) {
    struct txarg *a = malloc(sizeof *a);
    *a = (struct txarg){e, e->txep[i]};
    if (pthread_create(&e->tx_thread[i], NULL, tx_main, a) != 0) {
      snprintf(err, errlen, "pthread_create failed");
      goto fail;
    }
    e->ntx++;
  }
  return e;
fail:
  tunctl_engine_free(e);
  return NULL;
}

void tunctl_engine_free(struct tunctl_engine *e) {
  if (!e) return;
  if (e->stop_fd >= 0) {
    uint64_t one = 1;
    if (write(e->stop_fd, &one, sizeof one) < 0) {
    }
  }
  for (int i = 0; i < ENGINE_NPROTO; i++)
    if (e->rx_started[i]) pthread_join(e->rx_thread[i], NULL);
  for (int i = 0; i < e->ntx; i++) pthread_join(e->tx_thread[i], NULL);
  for (int i = 0; i < e->n; i++) {
    struct eng_tun *t = e->order[i];
    close(t->tun_fd);
    if (t->send_fd >= 0) close(t->send_fd);
    vti_free(t->vti);
    free(t->v6r);
    free(t);
  }
  for (int i = 0; i < ENGINE_NPROTO; i++)
    if (e->raw[i] >= 0) close(e->raw[i]);
  for (int i = 0; i < ENGINE_TX; i++)
    if (e->txep[i] >= 0) close(e->txep[i]);
  if (e->nl_fd >= 0) close(e->nl_fd);
  if (e->ctl_fd >= 0) close(e->ctl_fd);
  if (e->cfg_nl >= 0) close(e->cfg_nl);
  if (e->stop_fd >= 0) close(e->stop_fd);
  free(e->slots);
  free(e->unreach);
  free(e->order);
  free(e->entries);
  pthread_rwlock_destroy(&e->lock);
  pthread_mutex_destroy(&e->flags_lock);
  pthread_mutex_destroy(&e->twin_lock);
  tunctl_engine_mcast_free(e);
  pthread_mutex_destroy(&e->mc_lock);
  free(e);
}

static int find(struct tunctl_engine *e, const char *name) {
  for (int i = 0; i < e->n; i++)
    if (!strncmp(e->order[i]->name, name, 15)) return i;
  return -1;
}

static int link_of(const char *dev) { return dev && dev[0] ? (int)if_nametoindex(dev) : 0; }

int tunctl_engine_add(struct tunctl_engine *e, const char *name, const struct tunctl_cfg *cfg, const char *dev, int offload,
                      struct tunctl_vti *vti, char *err, size_t errlen) {
  pthread_rwlock_rdlock(&e->lock);
  int exists = find(e, name) >= 0, full = e->n >= ENGINE_MAX;
  pthread_rwlock_unlock(&e->lock);
  if (exists || full) {
    if (exists) snprintf(err, errlen, "%s is already a tunnel of the engine", name);
    else snprintf(err, errlen, "the engine holds %d tunnels already", ENGINE_MAX);
    vti_free(vti);
    return -1;
  }
  if (vti && need_esp(e, err, errlen) < 0) { /* ---- vti ---- */
    vti_free(vti);
    return -1;
  }
  struct eng_tun *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errlen, "out of memory");
    vti_free(vti);
    return -1;
  }
  t->vti = vti;
  if (vti && vti->pmtu <= 0) vti->pmtu = route_mtu(vti->remote); /* xfrm MTU (vti.c) */
  snprintf(t->name, sizeof t->name, "%.15s", name);
  snprintf(t->dev, sizeof t->dev, "%.15s", dev ? dev : "");
  t->cfg = *cfg;
  t->tun_fd = -1;
  /* the MTU the kernel would give the tunnel (or the configured one; the kernel view may refine it), set with the
   * ownership mark over the engine's netlink socket (no socket per device) */
  int mtu = cfg->mtu > 0 ? cfg->mtu : tunctl_default_mtu(cfg), created = 0;
  if (offload && (t->tun_fd = tunctl_open_tun_ex(name, 1, e->cfg_nl, e->ctl_fd, mtu, &t->ifindex, &created, err, errlen)) >= 0)
    t->vnet = 1;
  if (t->tun_fd < 0) t->tun_fd = tunctl_open_tun_ex(name, 0, e->cfg_nl, e->ctl_fd, mtu, &t->ifindex, &created, err, errlen);
  if (t->tun_fd < 0) {
    vti_free(t->vti);
    free(t);
    return -1;
  }
  int existed = !created;
  int fl = fcntl(t->tun_fd, F_GETFL);
  fcntl(t->tun_fd, F_SETFL, fl | O_NONBLOCK);
  t->send_fd = own_send_socket(cfg, t->dev, err, errlen);
  if (t->send_fd == -1) {
    if (!existed) tunctl_set_persist(t->tun_fd, 0); /* a failed add leaves no device of its own */
    close(t->tun_fd);
    vti_free(t->vti);
    free(t);
    return -1;
  }
  if (t->send_fd < -1) t->send_fd = -1;
  pthread_rwlock_wrlock(&e->lock);
  /* IFF_UP read under the write lock: a link notification handled before this tunnel is in the table is one
   * this read already sees, any later one finds it (link_event) */
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, t->name, IFNAMSIZ - 1);
  int up = ioctl(e->ctl_fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
  if (e->n == e->cap) {
    int cap = e->cap ? e->cap * 2 : 16;
    struct eng_tun **o = realloc(e->order, sizeof *o * (size_t)cap);
    if (o) e->order = o;
    struct tunctl_entry *en = realloc(e->entries, sizeof *en * (size_t)cap);
    if (en) e->entries = en;
    if (!o || !en) {
      pthread_rwlock_unlock(&e->lock);
      snprintf(err, errlen, "out of memory");
      if (!existed) tunctl_set_persist(t->tun_fd, 0);
      close(t->tun_fd);
      if (t->send_fd >= 0) close(t->send_fd);
      vti_free(t->vti);
      free(t);
      return -1;
    }
    e->cap = cap;
  }
  uint32_t slot = e->next_slot;
  while (e->slots[slot % ENGINE_MAX]) slot++;
  slot %= ENGINE_MAX;
  e->next_slot = slot + 1;
  t->slot = (int)slot;
  t->gen = ++e->next_gen;
  e->slots[slot] = t;
  /* the dispatch table in creation order (ifindex: a device created earlier, also before an engine restart,
   * is older) */
  int at = e->n;
  while (at > 0 && e->order[at - 1]->ifindex > t->ifindex) at--;
  memmove(e->order + at + 1, e->order + at, sizeof *e->order * (size_t)(e->n - at));
  memmove(e->entries + at + 1, e->entries + at, sizeof *e->entries * (size_t)(e->n - at));
  e->order[at] = t;
  e->entries[at] = (struct tunctl_entry){.cfg = t->cfg, .link = link_of(t->dev), .up = up};
  e->n++;
  __atomic_fetch_add(&e->tabgen, 1, __ATOMIC_RELAXED);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)t->gen << 32 | slot};
  epoll_ctl(e->txep[slot % ENGINE_TX], EPOLL_CTL_ADD, t->tun_fd, &ev);
  pthread_rwlock_unlock(&e->lock);
  if (tunctl_mcast_group(cfg, 1)) { /* multicast gre: an up device joins its group (engroute.c); no other tunnel's
                                     * membership depends on this add (a link change is the link notification's) */
    pthread_rwlock_rdlock(&e->lock);
    tunctl_engine_mcast_sync(e);
    pthread_rwlock_unlock(&e->lock);
  }
  if (cfg->mode == TM_ISATAP) tunctl_engine_isatap_routes(e); /* isatap: the routes out of its device */
  return 0;
}

int tunctl_engine_configure(struct tunctl_engine *e, const struct tunctl_linkreq *reqs, int n, int *errs, int *what) {
  struct tunctl_nlbatch b;
  e->nl_seq += 0x10000;
  tunctl_nlbatch_init(&b, e->nl_seq);
  int r = 0;
  /* per message: what it sets (TUNCTL_LINKREQ_MTU / _UP / the address index), for the error message */
  int *kind = NULL;
  size_t nkind = 0, capkind = 0;
#define KIND(k)                                                                                                       \
  do {                                                                                                                \
    if (nkind == capkind) {                                                                                           \
      size_t c = capkind ? capkind * 2 : 1024;                                                                        \
      int *nk = realloc(kind, sizeof *nk * c);                                                                        \
      if (!nk) {                                                                                                      \
        r = -ENOMEM;                                                                                                  \
        break;                                                                                                        \
      }                                                                                                               \
      kind = nk, capkind = c;                                                                                         \
    }                                                                                                                 \
    kind[nkind++] = (k);                                                                                              \
  } while (0)
  pthread_rwlock_rdlock(&e->lock);
  for (int i = 0; i < n && !r; i++) {
    int k = find(e, reqs[i].name);
    if (k < 0) {
      errs[i] = -ENODEV;
      continue;
    }
    int ifindex = e->order[k]->ifindex;
    if (reqs[i].mtu > 0 && !(r = tunctl_nlbatch_setlink(&b, i, ifindex, reqs[i].mtu, NULL, -1))) KIND(TUNCTL_LINKREQ_MTU);
    for (int a = 0; a < reqs[i].naddr && !r; a++)
      if (!(r = tunctl_nlbatch_newaddr(&b, i, ifindex, &reqs[i].addrs[a], 0))) KIND(a);
    if (!r && reqs[i].up && !(r = tunctl_nlbatch_setlink(&b, i, ifindex, 0, NULL, 1))) KIND(TUNCTL_LINKREQ_UP);
  }
  /* the kernel twin's link-local addresses after every device is up: bringing a device up walks the namespace's
   * whole IPv6 routing table (rt6_sync_up → fib6_ifup), and each link-local adds two routes to it (the fe80::/64
   * prefix and the local route): added per device before the next one comes up, 1000 devices' ups walked ~1000
   * routes each (perf: fib6_ifup and fib6_walk were ~30% of a commit's CPU) */
  for (int i = 0; i < n && !r; i++) {
    int k = reqs[i].nsoft ? find(e, reqs[i].name) : -1;
    for (int a = reqs[i].naddr; k >= 0 && a < reqs[i].naddr + reqs[i].nsoft && !r; a++)
      if (!(r = tunctl_nlbatch_newaddr(&b, i, e->order[k]->ifindex, &reqs[i].addrs[a], 1))) KIND(a);
  }
#undef KIND
  pthread_rwlock_unlock(&e->lock);
  uint32_t *at = r ? NULL : calloc((size_t)(n ? n : 1), sizeof *at);
  if (!r && !at) r = -ENOMEM;
  if (!r) r = tunctl_nlbatch_run(e->cfg_nl, &b, errs, at, n);
  else
    for (int i = 0; i < n; i++)
      if (!errs[i]) errs[i] = r;
  for (int i = 0; at && i < n; i++)
    if (errs[i] && errs[i] != -ENODEV && at[i] < nkind) what[i] = kind[at[i]];
  e->nl_seq += b.n;
  tunctl_nlbatch_free(&b);
  free(at);
  free(kind);
  return r;
}

int tunctl_engine_change(struct tunctl_engine *e, const char *name, const struct tunctl_cfg *cfg, const char *dev,
                         struct tunctl_vti *vti, char *err, size_t errlen) {
  if (vti && need_esp(e, err, errlen) < 0) { /* ---- vti (a tunnel that becomes one) ---- */
    vti_free(vti);
    return -1;
  }
  int fd = own_send_socket(cfg, dev, err, errlen);
  if (fd == -1) {
    vti_free(vti);
    return -1;
  }
  if (vti && vti->pmtu <= 0) vti->pmtu = route_mtu(vti->remote);
  pthread_rwlock_wrlock(&e->lock);
  int i = find(e, name);
  if (i < 0) {
    pthread_rwlock_unlock(&e->lock);
    if (fd >= 0) close(fd);
    vti_free(vti);
    snprintf(err, errlen, "%s is not a tunnel of the engine", name);
    return -1;
  }
  struct eng_tun *t = e->order[i];
  /* a vti gets its new SA context (new keys or SPIs); the old one is freed once no packet thread holds it */
  struct tunctl_vti *oldvti = t->vti;
  t->vti = vti;
  /* in place: the device, its counters and its sequence numbers stay */
  t->cfg = *cfg;
  snprintf(t->dev, sizeof t->dev, "%.15s", dev ? dev : "");
  int old = t->send_fd;
  t->send_fd = fd >= 0 ? fd : -1;
  e->entries[i].cfg = t->cfg;
  e->entries[i].link = link_of(t->dev);
  t->mc_recheck = 1; /* multicast gre: group and device looked up again */
  __atomic_fetch_add(&e->tabgen, 1, __ATOMIC_RELAXED);
  pthread_rwlock_unlock(&e->lock);
  if (old >= 0) close(old);
  vti_free(oldvti);
  pthread_rwlock_rdlock(&e->lock);
  tunctl_engine_mcast_sync(e);
  pthread_rwlock_unlock(&e->lock);
  if (cfg->mode == TM_ISATAP) tunctl_engine_isatap_routes(e);
  return 0;
}

struct tunctl_vti *tunctl_engine_vti(struct tunctl_engine *e, const char *name) {
  pthread_rwlock_rdlock(&e->lock);
  int i = find(e, name);
  struct tunctl_vti *v = i < 0 ? NULL : e->order[i]->vti;
  pthread_rwlock_unlock(&e->lock);
  return v;
}

int tunctl_engine_remove(struct tunctl_engine *e, const char *name, int remove_device) {
  pthread_rwlock_wrlock(&e->lock);
  int i = find(e, name);
  if (i < 0) {
    pthread_rwlock_unlock(&e->lock);
    return -1;
  }
  struct eng_tun *t = e->order[i];
  memmove(e->order + i, e->order + i + 1, sizeof *e->order * (size_t)(e->n - i - 1));
  memmove(e->entries + i, e->entries + i + 1, sizeof *e->entries * (size_t)(e->n - i - 1));
  e->n--;
  e->slots[t->slot] = NULL;
  epoll_ctl(e->txep[t->slot % ENGINE_TX], EPOLL_CTL_DEL, t->tun_fd, NULL);
  __atomic_fetch_add(&e->tabgen, 1, __ATOMIC_RELAXED);
  pthread_rwlock_unlock(&e->lock);
  /* no packet thread holds t now (they hold the read lock around every use) */
  tunctl_engine_mcast_leave(e, t); /* multicast gre: ipgre_close */
  free(t->v6r);
  if (remove_device) tunctl_set_persist(t->tun_fd, 0);
  close(t->tun_fd);
  if (t->send_fd >= 0) close(t->send_fd);
  vti_free(t->vti);
  free(t);
  return 0;
}

int tunctl_engine_stats(struct tunctl_engine *e, const char *name, struct tunctl_stats *o, int *vnet, int *gone) {
  pthread_rwlock_rdlock(&e->lock);
  int i = find(e, name);
  if (i < 0) {
    pthread_rwlock_unlock(&e->lock);
    return -1;
  }
  struct eng_tun *t = e->order[i];
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
  const uint64_t *src = (const uint64_t *)&t->s;
  uint64_t *dst = (uint64_t *)o;
  for (size_t k = 0; k < sizeof *o / sizeof(uint64_t); k++) dst[k] = LD(src[k]);
  *vnet = t->vnet;
  *gone = LD(t->gone);
  pthread_rwlock_unlock(&e->lock);
  return 0;
}

int tunctl_engine_count(struct tunctl_engine *e) {
  pthread_rwlock_rdlock(&e->lock);
  int n = e->n;
  pthread_rwlock_unlock(&e->lock);
  return n;
}
