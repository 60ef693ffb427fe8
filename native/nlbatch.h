/* Many rtnetlink requests over one socket (issue #6 item 6: the engine configures the TUN devices it creates): the
 * requests are packed many per sendmsg, every one asks for an ack, and each ack is matched to the tunnel the request
 * was for by its sequence number. The message builders and the CIDR parser are pure (test/unit/userspace
 * nlbatch_test.c); tunctl_nlbatch_run is the one part that talks to the kernel. */
#ifndef TUNCTL_NLBATCH_H
#define TUNCTL_NLBATCH_H

#include <stddef.h>
#include <stdint.h>

struct tunctl_cidr {
  uint8_t family; /* AF_INET or AF_INET6 */
  uint8_t plen;
  uint8_t addr[16];
};

/* "a.b.c.d/n" or an IPv6 address "/n" (the spec's canonical CIDR); 0, or -1 when it is not one */
int tunctl_parse_cidr(const char *s, struct tunctl_cidr *out);

/* One batch of requests. Each message belongs to an owner (a caller's index: the tunnel); a "soft" message's error is
 * not the owner's failure (a best effort, e.g. addrgenmode where IPv6 is disabled). */
struct tunctl_nlbatch {
  uint8_t *buf;
  size_t len, cap;
  uint32_t seq0;   /* sequence number of the first message */
  uint32_t n;      /* messages */
  int *owner;      /* per message */
  uint8_t *soft;   /* per message */
  uint32_t ncap;
};

void tunctl_nlbatch_init(struct tunctl_nlbatch *b, uint32_t seq0);
void tunctl_nlbatch_free(struct tunctl_nlbatch *b);

/* RTM_NEWLINK on ifindex: mtu (> 0), alias (non-NULL), up (1: IFF_UP set, 0: cleared, -1: unchanged); 0 or -ENOMEM */
int tunctl_nlbatch_setlink(struct tunctl_nlbatch *b, int owner, int ifindex, int mtu, const char *alias, int up);
/* RTM_NEWLINK IFLA_AF_SPEC/AF_INET6/IFLA_INET6_ADDR_GEN_MODE = none (soft: IPv6 may be off); 0 or -ENOMEM */
int tunctl_nlbatch_addrgen_none(struct tunctl_nlbatch *b, int owner, int ifindex);
/* RTM_NEWADDR (create, exclusive) as `ip addr add CIDR dev X` sends it: IFA_LOCAL and IFA_ADDRESS the address, scope
 * host for 127/8 else universe (soft: its error is not the owner's); 0 or -ENOMEM */
int tunctl_nlbatch_newaddr(struct tunctl_nlbatch *b, int owner, int ifindex, const struct tunctl_cidr *a, int soft);

/* the message at index i (for tests: its header and payload as the kernel reads them) */
const struct nlmsghdr *tunctl_nlbatch_msg(const struct tunctl_nlbatch *b, uint32_t i);

/* Sends every message over fd (a NETLINK_ROUTE socket), at most TUNCTL_NLBATCH_CHUNK per sendmsg, and reads each
 * chunk's acks before the next. errs[owner] (the caller's array, zeroed) gets the first error (-errno) of that owner's
 * non-soft messages, and errat[owner] (when errat is not NULL) that message's index. Returns 0, or -errno when the
 * socket failed (then every owner without an answer gets it). */
#define TUNCTL_NLBATCH_CHUNK 64
int tunctl_nlbatch_run(int fd, struct tunctl_nlbatch *b, int *errs, uint32_t *errat, int nowners);

/* a NETLINK_ROUTE socket for tunctl_nlbatch_run (NETLINK_CAP_ACK: acks without the request echoed); -1 with errno */
int tunctl_nlbatch_socket(void);

#endif
