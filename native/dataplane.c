/* tunctl data plane: a TUN device and raw IPv4 sockets joined by two threads with batched I/O
 * (TUN reads drained into one sendmmsg; recvmmsg batches written to TUN). */
#define _GNU_SOURCE
#include "dataplane.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define SLOT (TUNCTL_HEADROOM + 65536)

#define ADD(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)

int tunctl_open_tun(const char *name, int vnet_hdr, char *err, size_t errlen) {
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

static int open_raw(struct tunctl_dp *dp, int proto) {
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
  if (dp->dev[0] && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dp->dev, (socklen_t)strlen(dp->dev)) < 0) {
    snprintf(dp->err, sizeof dp->err, "SO_BINDTODEVICE %s: %s", dp->dev, strerror(errno));
    close(fd);
    return -1;
  }
  if (dp->cfg.local) {
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = dp->cfg.local;
    /* a raw socket bound to an address only receives packets for it; ignore if not yet assigned */
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
  }
  return fd;
}

static void *tx_main(void *arg) {
  struct tunctl_dp *dp = arg;
  struct tunctl_stats *s = &dp->txs;
  struct tunctl_txstate tx = {0};
  uint8_t *bufs = malloc((size_t)BATCH * SLOT);
  static __thread uint8_t icmpbuf[2048];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in sa[BATCH];
  size_t inlen[BATCH];
  if (!bufs) return NULL;
  struct pollfd pfd[2] = {{.fd = dp->tun_fd, .events = POLLIN}, {.fd = dp->stop_fd, .events = POLLIN}};
  for (;;) {
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[1].revents) break;
    int n = 0;
    while (n < BATCH) {
      uint8_t *b = bufs + (size_t)n * SLOT;
      ssize_t r = read(dp->tun_fd, b + TUNCTL_HEADROOM, 65535);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) ADD(s->tx_errors, 1);
        break;
      }
      uint8_t *out;
      size_t outlen;
      uint32_t dst;
      int why;
      int res = tunctl_encap(&dp->cfg, &tx, b, (size_t)r, &out, &outlen, &dst, icmpbuf, &why);
      if (res == TX_SEND) {
        memset(&sa[n], 0, sizeof sa[n]);
        sa[n].sin_family = AF_INET;
        sa[n].sin_addr.s_addr = dst;
        iov[n].iov_base = out;
        iov[n].iov_len = outlen;
        memset(&msgs[n], 0, sizeof msgs[n]);
        msgs[n].msg_hdr.msg_name = &sa[n];
        msgs[n].msg_hdr.msg_namelen = sizeof sa[n];
        msgs[n].msg_hdr.msg_iov = &iov[n];
        msgs[n].msg_hdr.msg_iovlen = 1;
        inlen[n] = (size_t)r;
        n++;
      } else if (res == TX_ICMP) {
        if (write(dp->tun_fd, out, outlen) > 0) ADD(s->icmp_sent, 1);
        ADD(s->tx_dropped, 1);
      } else {
        ADD(s->txdrops[why], 1);
        ADD(s->tx_dropped, 1);
      }
    }
    int i = 0;
    while (i < n) {
      int k = sendmmsg(dp->raw_fd[0], msgs + i, (unsigned)(n - i), 0);
      if (k < 0) {
        if (errno == EINTR) continue;
        ADD(s->tx_errors, 1); /* e.g. no route to the remote, EMSGSIZE */
        i++;
        continue;
      }
      uint64_t bytes = 0;
      for (int j = i; j < i + k; j++) bytes += inlen[j];
      ADD(s->tx_packets, (uint64_t)k);
      ADD(s->tx_bytes, bytes);
      i += k;
    }
  }
  free(bufs);
  return NULL;
}

static void *rx_main(void *arg) {
  struct tunctl_dp *dp = arg;
  struct tunctl_stats *s = &dp->rxs;
  struct tunctl_rxstate rx = {0};
  uint8_t *bufs = malloc((size_t)BATCH * 65536);
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  if (!bufs) return NULL;
  struct pollfd pfd[3];
  int np = 0;
  for (int i = 0; i < dp->nraw; i++) pfd[np++] = (struct pollfd){.fd = dp->raw_fd[i], .events = POLLIN};
  pfd[np++] = (struct pollfd){.fd = dp->stop_fd, .events = POLLIN};
  for (;;) {
    if (poll(pfd, (nfds_t)np, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[np - 1].revents) break;
    for (int f = 0; f < dp->nraw; f++) {
      if (!pfd[f].revents) continue;
      for (;;) {
        for (int j = 0; j < BATCH; j++) {
          iov[j].iov_base = bufs + (size_t)j * 65536;
          iov[j].iov_len = 65536;
          memset(&msgs[j], 0, sizeof msgs[j]);
          msgs[j].msg_hdr.msg_iov = &iov[j];
          msgs[j].msg_hdr.msg_iovlen = 1;
        }
        int k = recvmmsg(dp->raw_fd[f], msgs, BATCH, MSG_DONTWAIT, NULL);
        if (k < 0) {
          if (errno == EINTR) continue;
          break;
        }
        for (int j = 0; j < k; j++) {
          uint8_t *inner;
          size_t ilen;
          int res;
          if (msgs[j].msg_hdr.msg_flags & MSG_TRUNC) res = DR_TRUNCATED;
          else res = tunctl_decap(&dp->cfg, &rx, iov[j].iov_base, msgs[j].msg_len, &inner, &ilen);
          if (res != DR_OK) {
            ADD(s->drops[res], 1);
            ADD(s->rx_dropped, 1);
            if (res == DR_BAD_CSUM || res == DR_CSUM_FLAGS || res == DR_SEQ || res == DR_SPOOFED) ADD(s->rx_errors, 1);
            continue;
          }
          if (write(dp->tun_fd, inner, ilen) < 0) {
            ADD(s->rx_errors, 1);
            continue;
          }
          ADD(s->rx_packets, 1);
          ADD(s->rx_bytes, ilen);
        }
        if (k < BATCH) break;
      }
    }
  }
  free(bufs);
  return NULL;
}

int tunctl_dp_start(struct tunctl_dp *dp) {
  dp->nraw = 0;
  dp->raw_fd[0] = dp->raw_fd[1] = -1;
  int p = tunctl_outer_proto(&dp->cfg);
  if ((dp->raw_fd[dp->nraw] = open_raw(dp, p)) < 0) return -1;
  dp->nraw++;
  if (dp->cfg.mode == TM_SIT && (dp->cfg.inner & TP_IPV4)) {
    if ((dp->raw_fd[dp->nraw] = open_raw(dp, 4)) < 0) {
      close(dp->raw_fd[0]);
      return -1;
    }
    dp->nraw++;
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
  close(dp->stop_fd);
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
  for (int i = 0; i < TXD__COUNT; i++) o->txdrops[i] = LD(dp->txs.txdrops[i]);
  o->rx_packets = LD(dp->rxs.rx_packets);
  o->rx_bytes = LD(dp->rxs.rx_bytes);
  o->rx_errors = LD(dp->rxs.rx_errors);
  o->rx_dropped = LD(dp->rxs.rx_dropped);
  for (int i = 0; i < DR__COUNT; i++) o->drops[i] = LD(dp->rxs.drops[i]);
}
