/* The engine's view of the namespace's routing (engroute.h). */
#define _GNU_SOURCE
#include "engroute.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* appends an attribute to the request in buf (room for it: the caller's) */
static void add_attr(char *buf, int type, const void *data, int len) {
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  struct rtattr *a = (struct rtattr *)(buf + NLMSG_ALIGN(h->nlmsg_len));
  a->rta_type = (unsigned short)type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, (size_t)len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

int tunctl_route_oif(uint32_t dst, uint32_t src, int oif) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return 0;
  _Alignas(struct nlmsghdr) char req[NLMSG_SPACE(sizeof(struct rtmsg)) + 3 * RTA_SPACE(4)];
  memset(req, 0, sizeof req);
  struct nlmsghdr *rh = (struct nlmsghdr *)req;
  struct rtmsg *rm = NLMSG_DATA(rh);
  rh->nlmsg_len = NLMSG_LENGTH(sizeof *rm);
  rh->nlmsg_type = RTM_GETROUTE;
  rh->nlmsg_flags = NLM_F_REQUEST;
  rh->nlmsg_seq = 1;
  rm->rtm_family = AF_INET;
  rm->rtm_dst_len = 32;
  add_attr(req, RTA_DST, &dst, 4);
  if (src) {
    rm->rtm_src_len = 32;
    add_attr(req, RTA_SRC, &src, 4);
  }
  if (oif) add_attr(req, RTA_OIF, &oif, 4);
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  int found = 0;
  if (sendto(s, req, rh->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) >= 0) {
    char buf[4096];
    ssize_t n;
    while ((n = recv(s, buf, sizeof buf, 0)) < 0 && errno == EINTR) {
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; n > 0 && NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != RTM_NEWROUTE) continue; /* NLMSG_ERROR: no route */
      struct rtmsg *r = NLMSG_DATA(h);
      int alen = (int)RTM_PAYLOAD(h);
      for (struct rtattr *a = RTM_RTA(r); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
        if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= 4) memcpy(&found, RTA_DATA(a), 4);
    }
  }
  close(s);
  return found > 0 ? found : 0;
}

/* ---- multicast gre ---- */

static void leave(struct tunctl_engine *e, struct eng_tun *t) {
  if (!t->mc_group) return;
  int fd = tunctl_mcast_unref(&e->mc, t->mc_group, t->mc_ifindex);
  if (fd >= 0) close(fd); /* the last user: closing the socket drops its membership (ip_mc_drop_socket) */
  t->mc_group = 0;
  t->mc_ifindex = 0;
}

/* joins (group, ifindex) for t: the first user opens a socket that holds the membership (IP_ADD_MEMBERSHIP →
 * ip_mc_inc_group on that device, as ipgre_open). A socket of its own per membership, never bound: it receives
 * nothing (the protocol-47 raw socket gets the group's packets, IP_MULTICAST_ALL), and no socket's
 * igmp_max_memberships limit binds the number of groups. 0, or -1 (nothing held) */
static int join(struct tunctl_engine *e, struct eng_tun *t, uint32_t group, int ifindex) {
  struct tunctl_mc_member *m = tunctl_mcast_ref(&e->mc, group, ifindex);
  if (!m) return -1;
  if (m->users == 1) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ip_mreqn mr;
    memset(&mr, 0, sizeof mr);
    mr.imr_multiaddr.s_addr = group;
    mr.imr_ifindex = ifindex;
    if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
      if (fd >= 0) close(fd);
      tunctl_mcast_unref(&e->mc, group, ifindex);
      return -1;
    }
    m->fd = fd;
  }
  t->mc_group = group;
  t->mc_ifindex = ifindex;
  return 0;
}

void tunctl_engine_mcast_sync(struct tunctl_engine *e) {
  pthread_mutex_lock(&e->mc_lock);
  for (int i = 0; i < e->n; i++) {
    struct eng_tun *t = e->order[i];
    uint32_t g = tunctl_mcast_group(&t->cfg, __atomic_load_n(&e->entries[i].up, __ATOMIC_RELAXED));
    if (!g) {
      leave(e, t);
      continue;
    }
    if (t->mc_group && !t->mc_recheck) continue;
    t->mc_recheck = 0;
    /* ipgre_open: ip_route_output_gre(daddr = group, saddr = local, link) → the device it leaves by. With a local
     * address and no link, ip_route_output_key_hash_rcu sends multicast out of the device that owns the local
     * address ("special hack"); RTM_GETROUTE takes the same path. No route: the kernel refuses to open the device
     * (-EADDRNOTAVAIL); here the TUN device is up anyway and joins nothing (retried at the next link change). */
    int ifindex = tunctl_route_oif(g, t->cfg.local, e->entries[i].link);
    if (t->mc_group == g && t->mc_ifindex == ifindex) continue;
    uint32_t og = t->mc_group;
    int oi = t->mc_ifindex;
    t->mc_group = 0;
    if (ifindex > 0) join(e, t, g, ifindex); /* before leaving the old one: an unchanged group is not left and rejoined */
    if (og) {
      int fd = tunctl_mcast_unref(&e->mc, og, oi);
      if (fd >= 0) close(fd);
    }
  }
  pthread_mutex_unlock(&e->mc_lock);
}

void tunctl_engine_mcast_leave(struct tunctl_engine *e, struct eng_tun *t) {
  pthread_mutex_lock(&e->mc_lock);
  leave(e, t);
  pthread_mutex_unlock(&e->mc_lock);
}

void tunctl_engine_mcast_free(struct tunctl_engine *e) {
  for (int i = 0; i < e->mc.n; i++)
    if (e->mc.m[i].fd >= 0) close(e->mc.m[i].fd);
  tunctl_mcast_free(&e->mc);
}
