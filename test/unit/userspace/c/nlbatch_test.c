/* Unit tests of native/nlbatch.c, pure parts: the CIDR parser and the rtnetlink requests the engine sends for the
 * devices it creates (their bytes as the kernel reads them: the same requests `ip link set` / `ip addr add` send).
 * tunctl_nlbatch_run (the kernel's acks) is tested against the kernel by the host tests (test/host/userspace.test.ts).
 * Built and run by test/unit/userspace/nlbatch.test.ts; prints `ok NAME` / `not ok NAME<tab>WHY` per case. */
#include "harness.h"
#include "nlbatch.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

/* the attribute of type `type` (nested flag ignored) in [a, a+len), or NULL */
static const struct rtattr *find_attr(const struct rtattr *a, int len, int type) {
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
    if ((a->rta_type & ~NLA_F_NESTED) == type) return a;
  return NULL;
}

static int cidr_v4(void) {
  struct tunctl_cidr c;
  CHECK(tunctl_parse_cidr("10.100.0.5/30", &c) == 0, "parsed");
  CHECK(c.family == AF_INET && c.plen == 30, "family %d plen %d", c.family, c.plen);
  CHECK(!memcmp(c.addr, (uint8_t[]){10, 100, 0, 5}, 4), "address bytes");
  CHECK(tunctl_parse_cidr("192.0.2.1/32", &c) == 0 && c.plen == 32, "/32");
  CHECK(tunctl_parse_cidr("0.0.0.0/0", &c) == 0 && c.plen == 0, "/0");
  return 0;
}

static int cidr_v6(void) {
  struct tunctl_cidr c;
  CHECK(tunctl_parse_cidr("2001:db8::1/64", &c) == 0, "parsed");
  CHECK(c.family == AF_INET6 && c.plen == 64, "family %d plen %d", c.family, c.plen);
  uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
  CHECK(!memcmp(c.addr, want, 16), "address bytes");
  CHECK(tunctl_parse_cidr("fe80::200:5efe:c633:6401/64", &c) == 0 && c.addr[0] == 0xfe && c.addr[15] == 0x01, "link-local");
  CHECK(tunctl_parse_cidr("::1/128", &c) == 0 && c.plen == 128, "/128");
  return 0;
}

static int cidr_refused(void) {
  struct tunctl_cidr c;
  const char *bad[] = {"10.0.0.1", "10.0.0.1/", "10.0.0.1/33", "2001:db8::1/129", "10.0.0.1/3x", "10.0.0.1/-1",
                       "10.0.0/24", "host/24", "/24", "", "10.0.0.1 /24"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CHECK(tunctl_parse_cidr(bad[i], &c) < 0, "accepted \"%s\"", bad[i]);
  return 0;
}

static int setlink_mtu_alias_keeps_flags(void) {
  struct tunctl_nlbatch b;
  tunctl_nlbatch_init(&b, 100);
  CHECK(tunctl_nlbatch_setlink(&b, 7, 42, 1400, "tunctl", -1) == 0, "built");
  const struct nlmsghdr *h = tunctl_nlbatch_msg(&b, 0);
  CHECK(h && b.n == 1 && b.len == NLMSG_ALIGN(h->nlmsg_len), "one message");
  CHECK(h->nlmsg_type == RTM_NEWLINK && h->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK), "type %d flags %#x", h->nlmsg_type, h->nlmsg_flags);
  CHECK(h->nlmsg_seq == 100 && b.owner[0] == 7 && !b.soft[0], "seq %u owner %d", h->nlmsg_seq, b.owner[0]);
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  CHECK(ifi->ifi_index == 42 && ifi->ifi_family == AF_UNSPEC, "index %d", ifi->ifi_index);
  CHECK(ifi->ifi_change == 0 && ifi->ifi_flags == 0, "up -1 changes no flag (change %#x)", ifi->ifi_change);
  int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi));
  const struct rtattr *a = (const struct rtattr *)((const uint8_t *)ifi + NLMSG_ALIGN(sizeof *ifi));
  const struct rtattr *m = find_attr(a, alen, IFLA_MTU), *al = find_attr(a, alen, IFLA_IFALIAS);
  CHECK(m && RTA_PAYLOAD(m) == 4 && *(const uint32_t *)RTA_DATA(m) == 1400, "IFLA_MTU 1400");
  CHECK(al && RTA_PAYLOAD(al) == 6 && !memcmp(RTA_DATA(al), "tunctl", 6), "IFLA_IFALIAS tunctl (no NUL, as ip sends it)");
  tunctl_nlbatch_free(&b);
  return 0;
}

static int setlink_up_only(void) {
  struct tunctl_nlbatch b;
  tunctl_nlbatch_init(&b, 1);
  CHECK(tunctl_nlbatch_setlink(&b, 0, 9, 0, NULL, 1) == 0, "built");
  const struct nlmsghdr *h = tunctl_nlbatch_msg(&b, 0);
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  CHECK(ifi->ifi_flags == IFF_UP && ifi->ifi_change == IFF_UP, "IFF_UP set and changed (ip link set up)");
  CHECK(h->nlmsg_len == NLMSG_LENGTH(sizeof *ifi), "no attribute (mtu 0, no alias)");
  CHECK(tunctl_nlbatch_setlink(&b, 0, 9, 0, NULL, 0) == 0, "down built");
  ifi = NLMSG_DATA(tunctl_nlbatch_msg(&b, 1));
  CHECK(ifi->ifi_flags == 0 && ifi->ifi_change == IFF_UP, "down: IFF_UP cleared");
  tunctl_nlbatch_free(&b);
  return 0;
}

static int addrgen_none_nested_and_soft(void) {
  struct tunctl_nlbatch b;
  tunctl_nlbatch_init(&b, 5);
  CHECK(tunctl_nlbatch_addrgen_none(&b, 3, 11) == 0, "built");
  const struct nlmsghdr *h = tunctl_nlbatch_msg(&b, 0);
  CHECK(b.soft[0] == 1 && b.owner[0] == 3, "soft (IPv6 may be off), owner 3");
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi));
  const struct rtattr *spec = find_attr((const struct rtattr *)((const uint8_t *)ifi + NLMSG_ALIGN(sizeof *ifi)), alen, IFLA_AF_SPEC);
  CHECK(spec && (spec->rta_type & NLA_F_NESTED), "IFLA_AF_SPEC, nested");
  CHECK((const uint8_t *)spec + spec->rta_len == (const uint8_t *)h + h->nlmsg_len, "AF_SPEC spans the rest of the message");
  const struct rtattr *in6 = find_attr(RTA_DATA(spec), (int)RTA_PAYLOAD(spec), AF_INET6);
  CHECK(in6, "AF_INET6 inside");
  const struct rtattr *mode = find_attr(RTA_DATA(in6), (int)RTA_PAYLOAD(in6), IFLA_INET6_ADDR_GEN_MODE);
  CHECK(mode && RTA_PAYLOAD(mode) == 1 && *(const uint8_t *)RTA_DATA(mode) == IN6_ADDR_GEN_MODE_NONE, "addrgenmode none");
  tunctl_nlbatch_free(&b);
  return 0;
}

static int newaddr_as_ip_sends_it(void) {
  struct tunctl_nlbatch b;
  struct tunctl_cidr c4, c6, lo;
  tunctl_parse_cidr("10.100.0.5/30", &c4);
  tunctl_parse_cidr("2001:db8::7/64", &c6);
  tunctl_parse_cidr("127.0.0.2/8", &lo);
  tunctl_nlbatch_init(&b, 1);
  CHECK(!tunctl_nlbatch_newaddr(&b, 0, 21, &c4, 0) && !tunctl_nlbatch_newaddr(&b, 0, 21, &c6, 1) &&
            !tunctl_nlbatch_newaddr(&b, 1, 22, &lo, 0),
        "built");
  for (uint32_t i = 0; i < 3; i++) {
    const struct nlmsghdr *h = tunctl_nlbatch_msg(&b, i);
    const struct tunctl_cidr *c = i == 0 ? &c4 : i == 1 ? &c6 : &lo;
    size_t len = c->family == AF_INET ? 4 : 16;
    CHECK(h->nlmsg_type == RTM_NEWADDR && h->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL), "message %u: type and flags", i);
    const struct ifaddrmsg *ifa = NLMSG_DATA(h);
    CHECK(ifa->ifa_family == c->family && ifa->ifa_prefixlen == c->plen && ifa->ifa_index == (i == 2 ? 22u : 21u), "message %u: family, prefix, index", i);
    CHECK(ifa->ifa_scope == (i == 2 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE), "message %u: scope %d (iproute2's default_scope)", i, ifa->ifa_scope);
    int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifa));
    const struct rtattr *a = (const struct rtattr *)((const uint8_t *)ifa + NLMSG_ALIGN(sizeof *ifa));
    const struct rtattr *l = find_attr(a, alen, IFA_LOCAL), *ad = find_attr(a, alen, IFA_ADDRESS);
    CHECK(l && ad && RTA_PAYLOAD(l) == len && RTA_PAYLOAD(ad) == len, "message %u: IFA_LOCAL and IFA_ADDRESS", i);
    CHECK(!memcmp(RTA_DATA(l), c->addr, len) && !memcmp(RTA_DATA(ad), c->addr, len), "message %u: both the address (no peer)", i);
  }
  CHECK(!b.soft[0] && b.soft[1] && !b.soft[2], "soft as asked");
  CHECK(b.owner[0] == 0 && b.owner[2] == 1, "owners");
  tunctl_nlbatch_free(&b);
  return 0;
}

static int many_messages_grow_and_number(void) {
  struct tunctl_nlbatch b;
  struct tunctl_cidr c;
  tunctl_parse_cidr("2001:db8::1/64", &c);
  tunctl_nlbatch_init(&b, 0xfffffff0u); /* sequence numbers wrap: acks are matched by seq - seq0 */
  for (int i = 0; i < 3000; i++)
    CHECK(!(i % 3 ? tunctl_nlbatch_newaddr(&b, i / 3, i, &c, 0) : tunctl_nlbatch_setlink(&b, i / 3, i, 1280, "tunctl", 1)), "message %d", i);
  CHECK(b.n == 3000 && b.len > 16384, "3000 messages, %zu bytes (past the first allocation)", b.len);
  size_t off = 0;
  for (uint32_t i = 0; i < b.n; i++) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)(b.buf + off);
    CHECK(h->nlmsg_seq - b.seq0 == i, "message %u: seq offset %u", i, h->nlmsg_seq - b.seq0);
    CHECK(h->nlmsg_type == (i % 3 ? RTM_NEWADDR : RTM_NEWLINK), "message %u: type", i);
    CHECK(b.owner[i] == (int)i / 3, "message %u: owner", i);
    off += NLMSG_ALIGN(h->nlmsg_len);
  }
  CHECK(off == b.len, "messages tile the buffer");
  CHECK(tunctl_nlbatch_msg(&b, 3000) == NULL, "no message past the end");
  tunctl_nlbatch_free(&b);
  CHECK(b.buf == NULL && b.n == 0, "freed");
  return 0;
}

int main(void) {
  report("cidr: IPv4", cidr_v4());
  report("cidr: IPv6", cidr_v6());
  report("cidr: what is not a CIDR is refused", cidr_refused());
  report("setlink: MTU and alias, flags untouched", setlink_mtu_alias_keeps_flags());
  report("setlink: up and down (ip link set up/down)", setlink_up_only());
  report("addrgenmode none: IFLA_AF_SPEC/AF_INET6 nested, soft", addrgen_none_nested_and_soft());
  report("newaddr: as ip addr add sends it (IPv4, IPv6, loopback scope)", newaddr_as_ip_sends_it());
  report("batch: 3000 messages grow the buffer, numbered from seq0 (wrapping)", many_messages_grow_and_number());
  printf("%d cases, %d failed\n", ncases, nfailed);
  return nfailed != 0;
}
