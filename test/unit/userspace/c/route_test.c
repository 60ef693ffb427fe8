/* Unit tests of the engine's routing-derived state (pure parts):
 * - native/mcast.c: the group a gre tunnel joins (ipgre_open: multicast remote, device up) and the reference counts
 *   per (group, device) that make several tunnels share one membership.
 * Built and run by test/unit/userspace/route.test.ts; prints `ok NAME` / `not ok NAME<tab>WHY` per case. */
#include "harness.h"
#include "mcast.h"

#include <arpa/inet.h>
#include <string.h>

static uint32_t A(const char *s) {
  struct in_addr a;
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

static struct tunctl_cfg gre(const char *local, const char *remote) {
  struct tunctl_cfg c;
  tunctl_cfg_init(&c);
  c.mode = TM_GRE;
  c.local = local ? A(local) : 0;
  c.remote = remote ? A(remote) : 0;
  return c;
}

/* ---- mcast ---- */

static int group_of_up_multicast_gre(void) {
  struct tunctl_cfg c = gre("203.0.113.1", "239.1.1.1");
  CHECK(tunctl_mcast_group(&c, 1) == A("239.1.1.1"), "up: the group");
  CHECK(tunctl_mcast_group(&c, 0) == 0, "down: none (ipgre_close)");
  c = gre("203.0.113.1", "224.0.0.251");
  CHECK(tunctl_mcast_group(&c, 1) == A("224.0.0.251"), "224/4 lower end");
  c = gre("203.0.113.1", "239.255.255.255");
  CHECK(tunctl_mcast_group(&c, 1) == A("239.255.255.255"), "224/4 upper end");
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
  uint32_t g = A("239.1.1.1");
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
  uint32_t g = A("239.1.1.1"), h = A("239.1.1.2");
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
    struct tunctl_mc_member *m = tunctl_mcast_ref(&t, A("239.1.1.1") + (uint32_t)i * 0x1000000u, 1 + i % 3);
    CHECK(m && m->users == 1, "member %d", i);
    m->fd = 100 + i;
  }
  CHECK(t.n == 100, "100 memberships");
  for (int i = 99; i >= 0; i--) CHECK(tunctl_mcast_unref(&t, A("239.1.1.1") + (uint32_t)i * 0x1000000u, 1 + i % 3) == 100 + i, "unref %d", i);
  CHECK(t.n == 0, "all gone");
  tunctl_mcast_free(&t);
  return 0;
}

int main(void) {
  (void)unhex; /* harness.h: not needed here */
  report("mcast: an up gre tunnel with a multicast remote joins its group", group_of_up_multicast_gre());
  report("mcast: no group for unicast / any remotes, 240/4, or other modes", no_group_otherwise());
  report("mcast: the first reference joins, the last one leaves (shared by two tunnels)", first_ref_joins_last_unref_leaves());
  report("mcast: a membership is per (group, device)", group_and_device_are_the_key());
  report("mcast: the table grows past its first allocation", many_memberships_grow());
  printf("%d cases, %d failed\n", ncases, nfailed);
  return nfailed ? 1 : 0;
}
