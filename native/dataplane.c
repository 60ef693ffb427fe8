/* tunctl TUN devices: a persistent TUN device carrying tunctl's ownership mark from its creation (the engine,
 * engine.c, moves the packets). */
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

