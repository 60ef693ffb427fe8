/* Unit tests of the engine's routing-derived state (pure parts):
 * - native/mcast.c: the group a gre tunnel joins (ipgre_open: multicast remote, device up) and the reference counts
 *   per (group, device) that make several tunnels share one membership;
 * - native/isatap.c: the isatap next hop from the route (sit.c ipip6_tunnel_xmit: dst_neigh_lookup of the longest
 *   prefix match's gateway, else of the destination; it must be a unicast ISATAP address).
 * Built and run by test/unit/userspace/route.test.ts; prints `ok NAME` / `not ok NAME<tab>WHY` per case. */
#include "harness.h"
#include "isatap.h"
#include "mcast.h"

#include <arpa/inet.h>
#include <string.h>


static struct tunctl_cfg gre(const char *local, const char *remote) {
  struct tunctl_cfg c;
  tunctl_cfg_init(&c);
  c.mode = TM_GRE;
  c.local = local ? ip4(local) : 0;
  c.remote = remote ? ip4(remote) : 0;
  return c;
}

/* ---- mcast ---- */

static int group_of_up_multicast_gre(void) {
  struct tunctl_cfg c = gre("203.0.113.1", "239.1.1.1");
  CHECK(tunctl_mcast_group(&c, 1) == ip4("239.1.1.1"), "up: the group");
  CHECK(tunctl_mcast_group(&c, 0) == 0, "down: none (ipgre_close)");
  c = gre("203.0.113.1", "224.0.0.251");
  CHECK(tunctl_mcast_group(&c, 1) == ip4("224.0.0.251"), "224/4 lower end");
  c = gre("203.0.113.1", "239.255.255.255");
  CHECK(tunctl_mcast_group(&c, 1) == ip4("239.255.255.255"), "224/4 upper end");
  return 0;
}

static int no_group_otherwise(void) {
  struct tunctl_cfg c = gre("203.0.113.1", "198.51.100.2");
  CHECK(tunctl_mcast_group(&c, 1) == 0, "unicast remote");
  c = gre("203.0.113.1", NULL);
  CHECK(tunctl_mcast_group(&c, 1) == 0, "remote any");
  c = gre("203.0.113.1", "240.0.0.1");
  CHECK(tunctl_mcast_group(&c, 1) == 0, "240/4 is not multicast");
  c = gre("203.0.113.1", "223.255.255.255");
  CHECK(tunctl_mcast_group(&c, 1) == 0, "223.255.255.255 is not multicast");
  int modes[] = {TM_IPIP, TM_SIT, TM_ISATAP, TM_VTI};
  for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
    c = gre("203.0.113.1", "239.1.1.1");
    c.mode = modes[i];
    CHECK(tunctl_mcast_group(&c, 1) == 0, "mode %d: only gre joins (ipgre_open)", modes[i]);
  }
  return 0;
}

static int first_ref_joins_last_unref_leaves(void) {
  struct tunctl_mcast t = {0};
  uint32_t g = ip4("239.1.1.1");
  struct tunctl_mc_member *m = tunctl_mcast_ref(&t, g, 3);
  CHECK(m && m->users == 1 && m->fd == -1, "first reference: users 1, no fd yet");
  m->fd = 42;
  m = tunctl_mcast_ref(&t, g, 3);
  CHECK(m && m->users == 2 && m->fd == 42, "second tunnel shares it: users %d fd %d", m ? m->users : -1, m ? m->fd : -1);
  CHECK(tunctl_mcast_users(&t, g, 3) == 2, "users 2");
  CHECK(tunctl_mcast_unref(&t, g, 3) == -1, "one left: nothing to close");
  CHECK(tunctl_mcast_users(&t, g, 3) == 1, "users 1");
  CHECK(tunctl_mcast_unref(&t, g, 3) == 42, "the last: its fd is closed (membership left)");
  CHECK(tunctl_mcast_users(&t, g, 3) == 0 && t.n == 0, "gone from the table");
  CHECK(tunctl_mcast_unref(&t, g, 3) == -1, "an unref without a reference: nothing");
  tunctl_mcast_free(&t);
  return 0;
}

static int group_and_device_are_the_key(void) {
  struct tunctl_mcast t = {0};
  uint32_t g = ip4("239.1.1.1"), h = ip4("239.1.1.2");
  struct tunctl_mc_member *m;
  CHECK((m = tunctl_mcast_ref(&t, g, 3)) && m->users == 1, "g on 3");
  m->fd = 10;
  CHECK((m = tunctl_mcast_ref(&t, g, 4)) && m->users == 1, "g on 4: a membership of its own (ip_mc_inc_group per device)");
  m->fd = 11;
  CHECK((m = tunctl_mcast_ref(&t, h, 3)) && m->users == 1, "h on 3: another group");
  m->fd = 12;
  CHECK(t.n == 3, "three memberships");
  CHECK(tunctl_mcast_unref(&t, g, 3) == 10, "g on 3 left");
  CHECK(tunctl_mcast_users(&t, g, 4) == 1 && tunctl_mcast_users(&t, h, 3) == 1, "the others stay");
  CHECK(tunctl_mcast_unref(&t, h, 3) == 12 && tunctl_mcast_unref(&t, g, 4) == 11, "each its own fd");
  tunctl_mcast_free(&t);
  return 0;
}

static int many_memberships_grow(void) {
  struct tunctl_mcast t = {0};
  for (int i = 0; i < 100; i++) {
    struct tunctl_mc_member *m = tunctl_mcast_ref(&t, ip4("239.1.1.1") + (uint32_t)i * 0x1000000u, 1 + i % 3);
    CHECK(m && m->users == 1, "member %d", i);
    m->fd = 100 + i;
  }
  CHECK(t.n == 100, "100 memberships");
  for (int i = 99; i >= 0; i--) CHECK(tunctl_mcast_unref(&t, ip4("239.1.1.1") + (uint32_t)i * 0x1000000u, 1 + i % 3) == 100 + i, "unref %d", i);
  CHECK(t.n == 0, "all gone");
  tunctl_mcast_free(&t);
  return 0;
}

/* ---- isatap next hop ---- */

static struct tunctl_v6route R(const char *dst, int plen, const char *gw, uint32_t metric) {
  struct tunctl_v6route r;
  memset(&r, 0, sizeof r);
  inet_pton(AF_INET6, dst, r.dst);
  r.plen = plen;
  if (gw) r.has_gw = 1, inet_pton(AF_INET6, gw, r.gw);
  r.metric = metric;
  return r;
}

static int nh(const struct tunctl_v6route *r, int n, const char *dst, uint32_t *v4) {
  uint8_t d[16];
  inet_pton(AF_INET6, dst, d);
  *v4 = 0;
  return tunctl_isatap_nexthop(r, n, d, v4);
}

static int gateway_of_a_route_via_a_second_router(void) {
  /* default via router 1, a prefix via router 2: the prefix's packets go to router 2 */
  struct tunctl_v6route r[] = {R("::", 0, "fe80::200:5efe:c633:6402", 1024), R("2001:db8:10a::", 64, "fe80::200:5efe:cb00:7102", 1024)};
  uint32_t v4;
  CHECK(nh(r, 2, "2001:db8:10a::2", &v4) == ISATAP_NH_OK && v4 == ip4("203.0.113.2"), "the prefix's router");
  CHECK(nh(r, 2, "2001:db8:777::1", &v4) == ISATAP_NH_OK && v4 == ip4("198.51.100.2"), "others: the default route's");
  return 0;
}

static int on_link_route_takes_the_destination(void) {
  struct tunctl_v6route r[] = {R("2001:db8:8::", 64, NULL, 256), R("fe80::", 64, NULL, 256)};
  uint32_t v4;
  CHECK(nh(r, 2, "2001:db8:8::200:5efe:c633:6402", &v4) == ISATAP_NH_OK && v4 == ip4("198.51.100.2"), "ISATAP destination on link");
  CHECK(nh(r, 2, "fe80::5efe:c000:202", &v4) == ISATAP_NH_OK && v4 == ip4("192.0.2.2"), "link-local ISATAP (u/l bit 0)");
  CHECK(nh(r, 2, "2001:db8:8::1", &v4) == ISATAP_NH_ERROR, "a non-ISATAP destination on link: tx_error");
  return 0;
}

static int longest_prefix_then_metric(void) {
  struct tunctl_v6route r[] = {
      R("2001:db8::", 32, "fe80::5efe:a00:1", 1024),
      R("2001:db8:1::", 48, "fe80::5efe:a00:2", 1024),
      R("2001:db8:1:2::", 64, "fe80::5efe:a00:3", 1024),
      R("2001:db8:1:2::", 64, "fe80::5efe:a00:4", 10),
      R("2001:db8:1:2::", 64, "fe80::5efe:a00:5", 10),
      R("2001:db8:1:3::", 63, "fe80::5efe:a00:6", 1024),
  };
  uint32_t v4;
  CHECK(nh(r, 6, "2001:db8:1:2::9", &v4) == ISATAP_NH_OK && v4 == ip4("10.0.0.4"), "/64, lowest metric, first of equals: %08x", ntohl(v4));
  CHECK(nh(r, 6, "2001:db8:1:7::9", &v4) == ISATAP_NH_OK && v4 == ip4("10.0.0.2"), "/48");
  CHECK(nh(r, 6, "2001:db8:9::9", &v4) == ISATAP_NH_OK && v4 == ip4("10.0.0.1"), "/32");
  CHECK(nh(r, 6, "2001:db8:1:3:ffff::1", &v4) == ISATAP_NH_OK && v4 == ip4("10.0.0.6"), "/63 (odd prefix length), upper half");
  CHECK(nh(r, 6, "2001:db8:1:2::1", &v4) == ISATAP_NH_OK && v4 == ip4("10.0.0.4"), "2001:db8:1:2::/64 beats /63 2001:db8:1:2::/63");
  return 0;
}

static int non_isatap_gateway_is_an_error(void) {
  struct tunctl_v6route r[] = {R("::", 0, "fe80::1", 1024), R("2001:db8:5::", 64, "2001:db8::5efe:1:2:3", 1024)};
  uint32_t v4;
  CHECK(nh(r, 2, "2001:db8:9::1", &v4) == ISATAP_NH_ERROR, "gateway fe80::1 is not ISATAP: tx_error");
  CHECK(nh(r, 2, "2001:db8:5::1", &v4) == ISATAP_NH_ERROR, "interface identifier 5efe:1:2:3 without 0:/200: is not ISATAP");
  return 0;
}

static int no_route_is_not_modelled(void) {
  struct tunctl_v6route r[] = {R("2001:db8:8::", 64, NULL, 256)};
  uint32_t v4;
  CHECK(nh(r, 1, "2001:db8:9::200:5efe:c633:6402", &v4) == ISATAP_NH_NONE, "no matching route: the caller's fallback");
  CHECK(nh(r, 0, "2001:db8:8::200:5efe:c633:6402", &v4) == ISATAP_NH_NONE, "no routes at all");
  return 0;
}

static int multicast_destination_is_an_error(void) {
  struct tunctl_v6route r[] = {R("::", 0, "fe80::200:5efe:c633:6402", 1024)};
  uint32_t v4;
  CHECK(nh(r, 1, "ff02::2", &v4) == ISATAP_NH_ERROR, "ff02::2 (router solicitation): tx_error, not the default router");
  CHECK(nh(r, 0, "ff02::16", &v4) == ISATAP_NH_ERROR, "ff02::16 (MLD report) without routes too");
  return 0;
}

static int isatap_address_test(void) {
  uint8_t a[16];
  inet_pton(AF_INET6, "fe80::200:5efe:c000:201", a);
  CHECK(tunctl_is_isatap_addr(a), "200:5efe");
  inet_pton(AF_INET6, "fe80::5efe:c000:201", a);
  CHECK(tunctl_is_isatap_addr(a), "0:5efe");
  inet_pton(AF_INET6, "fe80::300:5efe:c000:201", a);
  CHECK(!tunctl_is_isatap_addr(a), "300:5efe is not (only the u/l bit may be set)");
  inet_pton(AF_INET6, "fe80::200:5eff:c000:201", a);
  CHECK(!tunctl_is_isatap_addr(a), "5eff is not");
  return 0;
}

int main(void) {
  (void)unhex; /* harness.h: not needed here */
  report("mcast: an up gre tunnel with a multicast remote joins its group", group_of_up_multicast_gre());
  report("mcast: no group for unicast / any remotes, 240/4, or other modes", no_group_otherwise());
  report("mcast: the first reference joins, the last one leaves (shared by two tunnels)", first_ref_joins_last_unref_leaves());
  report("mcast: a membership is per (group, device)", group_and_device_are_the_key());
  report("mcast: the table grows past its first allocation", many_memberships_grow());
  report("isatap: a route via a second ISATAP router takes its packets", gateway_of_a_route_via_a_second_router());
  report("isatap: an on-link route takes the destination as the neighbour", on_link_route_takes_the_destination());
  report("isatap: longest prefix, then lowest metric, then first", longest_prefix_then_metric());
  report("isatap: a gateway that is not an ISATAP address is an error", non_isatap_gateway_is_an_error());
  report("isatap: no matching route is not modelled (the caller decides)", no_route_is_not_modelled());
  report("isatap: a multicast destination is an error", multicast_destination_is_an_error());
  report("isatap: the ISATAP address test (ipv6_addr_is_isatap)", isatap_address_test());
  printf("%d cases, %d failed\n", ncases, nfailed);
  return nfailed ? 1 : 0;
}
