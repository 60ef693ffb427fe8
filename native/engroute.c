/* The engine's view of the namespace's routing (engroute.h). */
#define _GNU_SOURCE
#include "engroute.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdlib.h>
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

/* ---- isatap: the routes out of the tunnels' devices ---- */

struct v6r_oif {
  int oif;
  struct tunctl_v6route r;
};

/* one route message: appended to *out when it is a main-table unicast route without a source prefix that leaves by
 * one of the n devices in oifs. Not modelled: policy routing (other tables, rules), multipath routes (RTA_MULTIPATH,
 * no RTA_OIF), source-specific routes. */
static void take_route(struct nlmsghdr *h, const int *oifs, int n, struct v6r_oif **out, int *nout, int *cap) {
  struct rtmsg *rm = NLMSG_DATA(h);
  if (rm->rtm_family != AF_INET6 || rm->rtm_type != RTN_UNICAST || rm->rtm_src_len || rm->rtm_dst_len > 128) return;
  struct v6r_oif v;
  memset(&v, 0, sizeof v);
  v.r.plen = rm->rtm_dst_len;
  uint32_t table = rm->rtm_table;
  int alen = (int)RTM_PAYLOAD(h);
  for (struct rtattr *a = RTM_RTA(rm); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
    size_t pl = RTA_PAYLOAD(a);
    if (a->rta_type == RTA_DST && pl == 16) memcpy(v.r.dst, RTA_DATA(a), 16);
    else if (a->rta_type == RTA_GATEWAY && pl == 16) v.r.has_gw = 1, memcpy(v.r.gw, RTA_DATA(a), 16);
    else if (a->rta_type == RTA_OIF && pl >= 4) memcpy(&v.oif, RTA_DATA(a), 4);
    else if (a->rta_type == RTA_PRIORITY && pl >= 4) memcpy(&v.r.metric, RTA_DATA(a), 4);
    else if (a->rta_type == RTA_TABLE && pl >= 4) memcpy(&table, RTA_DATA(a), 4);
  }
  if (table != RT_TABLE_MAIN) return;
  int mine = 0;
  for (int i = 0; i < n && !mine; i++) mine = oifs[i] == v.oif;
  if (!mine) return;
  if (*nout == *cap) {
    int c = *cap ? *cap * 2 : 16;
    struct v6r_oif *o = realloc(*out, sizeof *o * (size_t)c);
    if (!o) return;
    *out = o;
    *cap = c;
  }
  (*out)[(*nout)++] = v;
}

/* dumps the IPv6 routes; -1 when the dump failed (the tunnels keep theirs) */
static int dump_v6(const int *oifs, int n, struct v6r_oif **out, int *nout) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -1;
  struct {
    struct nlmsghdr h;
    struct rtmsg r;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.r);
  req.h.nlmsg_type = RTM_GETROUTE;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.r.rtm_family = AF_INET6;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  int cap = 0, done = 0, err = 0;
  *out = NULL;
  *nout = 0;
  if (sendto(s, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) err = 1;
  static __thread char buf[32768];
  while (!done && !err) {
    ssize_t k = recv(s, buf, sizeof buf, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      err = 1;
      break;
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)k); h = NLMSG_NEXT(h, k)) {
      if (h->nlmsg_type == NLMSG_DONE) done = 1;
      else if (h->nlmsg_type == NLMSG_ERROR) err = 1;
      else if (h->nlmsg_type == RTM_NEWROUTE) take_route(h, oifs, n, out, nout, &cap);
    }
  }
  close(s);
  if (err) {
    free(*out);
    *out = NULL;
    *nout = 0;
    return -1;
  }
  return 0;
}

void tunctl_engine_isatap_routes(struct tunctl_engine *e) {
  pthread_rwlock_rdlock(&e->lock);
  int n = 0;
  int *oifs = malloc(sizeof *oifs * (size_t)(e->n ? e->n : 1));
  for (int i = 0; oifs && i < e->n; i++)
    if (e->order[i]->cfg.mode == TM_ISATAP) oifs[n++] = e->order[i]->ifindex;
  pthread_rwlock_unlock(&e->lock);
  if (!oifs || !n) {
    free(oifs);
    return;
  }
  struct v6r_oif *all;
  int nall;
  if (dump_v6(oifs, n, &all, &nall) < 0) {
    free(oifs);
    return;
  }
  /* each isatap tunnel's own array, built before the swap; the old ones freed after it */
  struct tunctl_v6route **mine = calloc((size_t)n, sizeof *mine);
  int *nmine = calloc((size_t)n, sizeof *nmine);
  for (int j = 0; mine && nmine && j < n; j++) {
    int c = 0;
    for (int k = 0; k < nall; k++) c += all[k].oif == oifs[j];
    if (!c || !(mine[j] = malloc(sizeof **mine * (size_t)c))) continue;
    for (int k = 0; k < nall; k++)
      if (all[k].oif == oifs[j]) mine[j][nmine[j]++] = all[k].r;
  }
  free(all);
  if (!mine || !nmine) {
    free(mine);
    free(nmine);
    free(oifs);
    return;
  }
  pthread_rwlock_wrlock(&e->lock);
  for (int i = 0; i < e->n; i++) {
    struct eng_tun *t = e->order[i];
    if (t->cfg.mode != TM_ISATAP) continue;
    for (int j = 0; j < n; j++) {
      if (oifs[j] != t->ifindex) continue;
      struct tunctl_v6route *old = t->v6r;
      t->v6r = mine[j];
      t->nv6r = nmine[j];
      mine[j] = old; /* freed below, outside the lock */
      oifs[j] = 0;
      break;
    }
  }
  pthread_rwlock_unlock(&e->lock);
  for (int j = 0; j < n; j++) free(mine[j]);
  free(mine);
  free(nmine);
  free(oifs);
}
