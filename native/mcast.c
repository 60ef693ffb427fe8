/* Multicast gre group memberships: reference counts per (group, device), see mcast.h. */
#include "mcast.h"

#include <stdlib.h>
#include <string.h>

static int is_multicast(uint32_t a_net) { return (((const uint8_t *)&a_net)[0] & 0xf0) == 0xe0; }

uint32_t tunctl_mcast_group(const struct tunctl_cfg *cfg, int up) {
  if (!up || cfg->mode != TM_GRE || !is_multicast(cfg->remote)) return 0;
  return cfg->remote;
}

static int find(const struct tunctl_mcast *t, uint32_t group, int ifindex) {
  for (int i = 0; i < t->n; i++)
    if (t->m[i].group == group && t->m[i].ifindex == ifindex) return i;
  return -1;
}

struct tunctl_mc_member *tunctl_mcast_ref(struct tunctl_mcast *t, uint32_t group, int ifindex) {
  int i = find(t, group, ifindex);
  if (i >= 0) {
    t->m[i].users++;
    return &t->m[i];
  }
  if (t->n == t->cap) {
    int cap = t->cap ? t->cap * 2 : 8;
    struct tunctl_mc_member *m = realloc(t->m, sizeof *m * (size_t)cap);
    if (!m) return NULL;
    t->m = m;
    t->cap = cap;
  }
  t->m[t->n] = (struct tunctl_mc_member){.group = group, .ifindex = ifindex, .users = 1, .fd = -1};
  return &t->m[t->n++];
}

int tunctl_mcast_unref(struct tunctl_mcast *t, uint32_t group, int ifindex) {
  int i = find(t, group, ifindex);
  if (i < 0) return -1;
  if (--t->m[i].users > 0) return -1;
  int fd = t->m[i].fd;
  t->m[i] = t->m[--t->n];
  return fd;
}

int tunctl_mcast_users(const struct tunctl_mcast *t, uint32_t group, int ifindex) {
  int i = find(t, group, ifindex);
  return i < 0 ? 0 : t->m[i].users;
}

void tunctl_mcast_free(struct tunctl_mcast *t) {
  free(t->m);
  memset(t, 0, sizeof *t);
}
