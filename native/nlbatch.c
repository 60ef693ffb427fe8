/* Many rtnetlink requests over one socket, acks matched by sequence number (nlbatch.h). */
#define _GNU_SOURCE
#include "nlbatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

int tunctl_parse_cidr(const char *s, struct tunctl_cidr *out) {
  char buf[64];
  const char *slash = strchr(s, '/');
  if (!slash || (size_t)(slash - s) >= sizeof buf || !slash[1]) return -1;
  memcpy(buf, s, (size_t)(slash - s));
  buf[slash - s] = 0;
  char *end;
  long plen = strtol(slash + 1, &end, 10);
  if (*end || plen < 0) return -1;
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, buf, out->addr) == 1) {
    if (plen > 32) return -1;
    out->family = AF_INET;
  } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
    if (plen > 128) return -1;
    out->family = AF_INET6;
  } else return -1;
  out->plen = (uint8_t)plen;
  return 0;
}

void tunctl_nlbatch_init(struct tunctl_nlbatch *b, uint32_t seq0) {
  memset(b, 0, sizeof *b);
  b->seq0 = seq0;
}

void tunctl_nlbatch_free(struct tunctl_nlbatch *b) {
  free(b->buf);
  free(b->owner);
  free(b->soft);
  memset(b, 0, sizeof *b);
}

/* room for one more message of up to `size` bytes; the new header, zeroed, or NULL */
static struct nlmsghdr *begin(struct tunctl_nlbatch *b, size_t size, uint16_t type, uint16_t flags, int owner, int soft) {
  if (b->len + NLMSG_ALIGN(size) > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16384;
    while (cap < b->len + NLMSG_ALIGN(size)) cap *= 2;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb) return NULL;
    b->buf = nb, b->cap = cap;
  }
  if (b->n == b->ncap) {
    uint32_t nc = b->ncap ? b->ncap * 2 : 256;
    int *no = realloc(b->owner, sizeof *no * nc);
    if (no) b->owner = no;
    uint8_t *ns = realloc(b->soft, nc);
    if (ns) b->soft = ns;
    if (!no || !ns) return NULL;
    b->ncap = nc;
  }
  struct nlmsghdr *h = (struct nlmsghdr *)(b->buf + b->len);
  memset(h, 0, NLMSG_ALIGN(size));
  h->nlmsg_type = type;
  h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
  h->nlmsg_seq = b->seq0 + b->n;
  b->owner[b->n] = owner;
  b->soft[b->n] = (uint8_t)soft;
  return h;
}

/* appends an attribute to h (the caller reserved room); its payload */
static void *attr(struct nlmsghdr *h, uint16_t type, const void *data, size_t len) {
  struct rtattr *a = (struct rtattr *)((uint8_t *)h + NLMSG_ALIGN(h->nlmsg_len));
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (data) memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
  return RTA_DATA(a);
}

static void end(struct tunctl_nlbatch *b, struct nlmsghdr *h) {
  b->len += NLMSG_ALIGN(h->nlmsg_len);
  b->n++;
}

int tunctl_nlbatch_setlink(struct tunctl_nlbatch *b, int owner, int ifindex, int mtu, const char *alias, int up) {
  size_t alen = alias ? strlen(alias) : 0;
  if (alen >= IFALIASZ) alen = IFALIASZ - 1;
  struct nlmsghdr *h = begin(b, NLMSG_SPACE(sizeof(struct ifinfomsg)) + RTA_SPACE(4) + RTA_SPACE(alen), RTM_NEWLINK, 0, owner, 0);
  if (!h) return -ENOMEM;
  h->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  struct ifinfomsg *ifi = NLMSG_DATA(h);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  if (up >= 0) {
    ifi->ifi_flags = up ? IFF_UP : 0;
    ifi->ifi_change = IFF_UP;
  }
  if (mtu > 0) {
    uint32_t m = (uint32_t)mtu;
    attr(h, IFLA_MTU, &m, sizeof m);
  }
  if (alias) attr(h, IFLA_IFALIAS, alias, alen);
  end(b, h);
  return 0;
}

int tunctl_nlbatch_addrgen_none(struct tunctl_nlbatch *b, int owner, int ifindex) {
  struct nlmsghdr *h = begin(b, NLMSG_SPACE(sizeof(struct ifinfomsg)) + 3 * RTA_SPACE(4), RTM_NEWLINK, 0, owner, 1);
  if (!h) return -ENOMEM;
  h->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
  struct ifinfomsg *ifi = NLMSG_DATA(h);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  /* IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE: u8 } }, as `ip link set dev X addrgenmode none` */
  struct rtattr *spec = (struct rtattr *)((uint8_t *)h + NLMSG_ALIGN(h->nlmsg_len));
  attr(h, IFLA_AF_SPEC | NLA_F_NESTED, NULL, 0);
  struct rtattr *in6 = (struct rtattr *)((uint8_t *)h + NLMSG_ALIGN(h->nlmsg_len));
  attr(h, AF_INET6 | NLA_F_NESTED, NULL, 0);
  uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
  attr(h, IFLA_INET6_ADDR_GEN_MODE, &mode, 1);
  in6->rta_len = (unsigned short)((uint8_t *)h + h->nlmsg_len - (uint8_t *)in6);
  spec->rta_len = (unsigned short)((uint8_t *)h + h->nlmsg_len - (uint8_t *)spec);
  end(b, h);
  return 0;
}

int tunctl_nlbatch_newaddr(struct tunctl_nlbatch *b, int owner, int ifindex, const struct tunctl_cidr *a, int soft) {
  size_t alen = a->family == AF_INET ? 4 : 16;
  struct nlmsghdr *h = begin(b, NLMSG_SPACE(sizeof(struct ifaddrmsg)) + 2 * RTA_SPACE(alen), RTM_NEWADDR,
                             NLM_F_CREATE | NLM_F_EXCL, owner, soft);
  if (!h) return -ENOMEM;
  h->nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  struct ifaddrmsg *ifa = NLMSG_DATA(h);
  ifa->ifa_family = a->family;
  ifa->ifa_prefixlen = a->plen;
  ifa->ifa_index = (uint32_t)ifindex;
  /* iproute2's default_scope: host for 127.0.0.0/8, else universe (the kernel derives IPv6 scopes itself) */
  ifa->ifa_scope = a->family == AF_INET && a->addr[0] == 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  attr(h, IFA_LOCAL, a->addr, alen);
  attr(h, IFA_ADDRESS, a->addr, alen);
  end(b, h);
  return 0;
}

const struct nlmsghdr *tunctl_nlbatch_msg(const struct tunctl_nlbatch *b, uint32_t i) {
  size_t off = 0;
  for (uint32_t k = 0; k < b->n; k++) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)(b->buf + off);
    if (k == i) return h;
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  return NULL;
}

int tunctl_nlbatch_socket(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  int one = 1, rcv = 1 << 20;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  /* an ack the kernel never sends must not hang the engine's one JS thread: a batch fails after 10 s instead */
  struct timeval tmo = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
  /* a chunk's acks queue up before they are read: room for them (SO_RCVBUFFORCE as root, else up to rmem_max) */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* message k failed with err: its owner's first error */
static void owner_fails(const struct tunctl_nlbatch *b, uint32_t k, int err, int *errs, uint32_t *errat, int nowners) {
  int o = b->owner[k];
  if (b->soft[k] || o < 0 || o >= nowners || errs[o]) return;
  errs[o] = err;
  if (errat) errat[o] = k;
}

static void fail_rest(struct tunctl_nlbatch *b, uint32_t from, const uint8_t *acked, int *errs, uint32_t *errat, int nowners, int err) {
  for (uint32_t k = from; k < b->n; k++)
    if (!acked[k]) owner_fails(b, k, err, errs, errat, nowners);
}

int tunctl_nlbatch_run(int fd, struct tunctl_nlbatch *b, int *errs, uint32_t *errat, int nowners) {
  if (!b->n) return 0;
  uint8_t *acked = calloc(b->n, 1);
  if (!acked) {
    for (int i = 0; i < nowners; i++)
      if (!errs[i]) errs[i] = -ENOMEM;
    return -ENOMEM;
  }
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  uint8_t rbuf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
  /* acks left over from an earlier batch that failed half-way (its numbers may be reused): not this batch's */
  while (recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT) > 0) {
  }
  size_t off = 0;
  int rc = 0;
  for (uint32_t first = 0; first < b->n && !rc;) {
    /* one chunk: up to TUNCTL_NLBATCH_CHUNK messages in one sendmsg */
    uint32_t last = first;
    size_t start = off;
    while (last < b->n && last - first < TUNCTL_NLBATCH_CHUNK) {
      const struct nlmsghdr *h = (const struct nlmsghdr *)(b->buf + off);
      off += NLMSG_ALIGN(h->nlmsg_len);
      last++;
    }
    struct iovec iov = {.iov_base = b->buf + start, .iov_len = off - start};
    struct msghdr mh = {.msg_name = &kernel, .msg_namelen = sizeof kernel, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t s;
    do s = sendmsg(fd, &mh, 0);
    while (s < 0 && errno == EINTR);
    if (s < 0) {
      rc = -errno;
      fail_rest(b, first, acked, errs, errat, nowners, rc);
      break;
    }
    uint32_t pending = last - first;
    while (pending) {
      ssize_t r = recv(fd, rbuf, sizeof rbuf, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        rc = r < 0 ? (errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno) : -EPIPE;
        fail_rest(b, first, acked, errs, errat, nowners, rc);
        break;
      }
      for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; NLMSG_OK(h, (unsigned)r); h = NLMSG_NEXT(h, r)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        uint32_t k = h->nlmsg_seq - b->seq0;
        if (k < first || k >= last || acked[k]) continue; /* not an answer to this chunk */
        acked[k] = 1;
        pending--;
        int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
        if (err) owner_fails(b, k, err, errs, errat, nowners);
      }
    }
    first = last;
  }
  free(acked);
  return rc;
}
