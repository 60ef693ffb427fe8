/* tunctl TUN devices: a persistent TUN device carrying tunctl's ownership mark from its creation (the engine,
 * engine.c, moves the packets). */
#define _GNU_SOURCE
#include "dataplane.h"
#include "nlbatch.h"
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

int tunctl_open_tun_ex(const char *name, int vnet_hdr, int nlfd, int ioctlfd, int mtu, int *ifindex, int *created,
                       char *err, size_t errlen) {
  /* a device made here carries tunctl's ownership mark before it is made persistent: a crash before that makes it
   * vanish with the fd, after it leaves a device `observe` recognises as tunctl's (issue #6). The mark, the MTU and
   * addrgenmode none (the kernel's addrconf leaves the TUN device alone: kernel-twin.ts) go in one netlink send */
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  int existed = ioctl(ioctlfd, SIOCGIFINDEX, &ifr) == 0;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "open /dev/net/tun: %s", strerror(errno));
    return -1;
  }
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
  if (ioctl(ioctlfd, SIOCGIFINDEX, &ifr) < 0) {
    snprintf(err, errlen, "SIOCGIFINDEX %s: %s", name, strerror(errno));
    close(fd);
    return -1;
  }
  int idx = ifr.ifr_ifindex;
  if (!existed || mtu > 0) {
    struct tunctl_nlbatch b;
    tunctl_nlbatch_init(&b, 1);
    int r = tunctl_nlbatch_setlink(&b, 0, idx, mtu, existed ? NULL : TUNCTL_OWNER_ALIAS, -1);
    if (!r && !existed) r = tunctl_nlbatch_addrgen_none(&b, 0, idx);
    int e = 0;
    if (!r) r = tunctl_nlbatch_run(nlfd, &b, &e, NULL, 1);
    tunctl_nlbatch_free(&b);
    if (!r) r = e;
    if (r < 0 && !existed) { /* (a device that existed keeps its MTU when the kernel refuses the new one) */
      snprintf(err, errlen, "setting the alias and MTU of %s: %s", name, strerror(-r));
      close(fd);
      return -1;
    }
  }
  if (ioctl(fd, TUNSETPERSIST, 1) < 0) {
    snprintf(err, errlen, "TUNSETPERSIST %s: %s", name, strerror(errno));
    close(fd);
    return -1;
  }
  if (ifindex) *ifindex = idx;
  if (created) *created = !existed;
  return fd;
}

int tunctl_open_tun(const char *name, int vnet_hdr, char *err, size_t errlen) {
  int nl = tunctl_nlbatch_socket();
  if (nl < 0) {
    snprintf(err, errlen, "netlink socket: %s", strerror(errno));
    return -1;
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    snprintf(err, errlen, "socket: %s", strerror(errno));
    close(nl);
    return -1;
  }
  int fd = tunctl_open_tun_ex(name, vnet_hdr, nl, s, 0, NULL, NULL, err, errlen);
  close(s);
  close(nl);
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

