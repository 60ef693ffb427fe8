/* tunctl kernel twin: path MTU per outer destination, the tunnel's transmit-time MTU check, the outer IP ID.
 * Reproduces Linux 6.1: net/ipv4/route.c (__ip_rt_update_pmtu, update_or_create_fnhe, find_exception,
 * ip_idents_reserve / __ip_select_ident), net/ipv4/ip_tunnel.c (tnl_update_pmtu, iptunnel_xmit in
 * ip_tunnel_core.c), net/ipv6/sit.c (ipip6_tunnel_xmit). */
#include "pmtu.h"

#include <string.h>

#include "tunctl.h"

/* the outer protocols this tunnel sends (sit: 41, and 4 for IPv4 inside) */
static int tunctl_uses_proto_tx(const struct tunctl_cfg *cfg, int proto) {
  return tunctl_outer_proto(cfg) == proto || (proto == 4 && cfg->mode == TM_SIT && (cfg->inner & TP_IPV4));
}

void tunctl_pmtu_init(struct tunctl_pmtu *p) {
  memset(p, 0, sizeof *p);
  p->expires_ms = TUNCTL_MTU_EXPIRES_MS;
  p->min_pmtu = TUNCTL_MIN_PMTU;
}

static struct tunctl_pmtu_entry *find(struct tunctl_pmtu *p, uint32_t dst, uint64_t now) {
  for (int i = 0; i < TUNCTL_PMTU_SLOTS; i++) {
    struct tunctl_pmtu_entry *e = &p->e[i];
    if (!e->dst || e->dst != dst) continue;
    /* find_exception: an expired exception is deleted when met */
    if (now >= e->expires) {
      memset(e, 0, sizeof *e);
      return NULL;
    }
    return e;
  }
  return NULL;
}

int tunctl_pmtu_get(struct tunctl_pmtu *p, uint32_t dst, int route_mtu, uint64_t now, int *locked) {
  struct tunctl_pmtu_entry *e = find(p, dst, now);
  if (locked) *locked = e ? e->locked : 0;
  /* ipv4_mtu: rt_pmtu while not expired, else the device's */
  if (e && (route_mtu <= 0 || e->mtu < route_mtu)) return e->mtu;
  return route_mtu;
}

int tunctl_pmtu_update(struct tunctl_pmtu *p, uint32_t dst, int mtu, int route_mtu, uint64_t now) {
  if (!dst) return 0;
  struct tunctl_pmtu_entry *e = find(p, dst, now);
  int old_mtu = tunctl_pmtu_get(p, dst, route_mtu, now, NULL);
  int lock = 0;
  /* __ip_rt_update_pmtu */
  if (old_mtu > 0 && old_mtu < mtu) return 0;
  if (mtu < p->min_pmtu) {
    lock = 1;
    mtu = old_mtu > 0 && old_mtu < p->min_pmtu ? old_mtu : p->min_pmtu;
  }
  if (e && e->mtu == mtu && !lock && now < e->expires - p->expires_ms / 2) return 0;
  if (!e) {
    /* a free slot, else the entry closest to expiry (the kernel's fnhe_oldest, per nexthop bucket) */
    int victim = 0;
    for (int i = 0; i < TUNCTL_PMTU_SLOTS; i++) {
      if (!p->e[i].dst) {
        victim = i;
        break;
      }
      if (p->e[i].expires < p->e[victim].expires) victim = i;
    }
    e = &p->e[victim];
  }
  e->dst = dst;
  e->mtu = mtu;
  e->locked = lock;
  e->expires = now + p->expires_ms;
  return 1;
}

int tunctl_tnl_pmtu_check(int sit6, int hlen, int df, const uint8_t *inner, size_t len, int path_mtu, int dev_mtu,
                          int *clear_df) {
  *clear_df = 0;
  if (len < 1 || path_mtu <= 0) return 0;
  int v6 = (inner[0] >> 4) == 6;
  if (sit6) {
    /* ipip6_tunnel_xmit: only with DF (tiph->frag_off) */
    if (!df) return 0;
    int mtu = path_mtu - 20;
    if (mtu < 68) return -1; /* IPV4_MIN_MTU: collisions++, dropped */
    if (mtu < 1280) {
      mtu = 1280; /* IPV6_MIN_MTU: sent without DF */
      *clear_df = 1;
    }
    return len > (size_t)mtu ? mtu : 0;
  }
  /* tnl_update_pmtu: pkt_size is the inner packet (skb->len less the tunnel header pushed by gre) */
  int mtu = df ? path_mtu - (20 + hlen) : dev_mtu;
  if (!v6) {
    if (len < 20 || (inner[0] >> 4) != 4) return 0;
    int inner_df = (inner[6] & 0x40) != 0;
    return inner_df && (size_t)mtu < len ? mtu : 0;
  }
  return mtu >= 1280 && (size_t)mtu < len ? mtu : 0;
}

/* a keyed mix of the three values (the kernel uses siphash_3u32 with net->ipv4.ip_id_key) */
static uint32_t mix(uint32_t a, uint32_t b, uint32_t c, uint32_t key) {
  uint32_t h = key ^ 0x9e3779b9u;
  uint32_t v[3] = {a, b, c};
  for (int i = 0; i < 3; i++) {
    h ^= v[i];
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
  }
  return h;
}

uint16_t tunctl_ident_next(struct tunctl_ident *s, uint32_t daddr, uint32_t saddr, uint8_t proto, uint64_t now,
                           uint32_t rnd) {
  uint32_t b = mix(daddr, saddr, proto, s->key) % TUNCTL_IDENT_SLOTS;
  uint32_t delta = 0;
  /* ip_idents_reserve: delta = prandom_u32_max(now - old) when the bucket's timestamp moved */
  if (s->stamp[b] != now) {
    uint64_t gap = now - s->stamp[b];
    if (gap > 0xffffffffu) gap = 0xffffffffu;
    delta = (uint32_t)(((uint64_t)rnd * gap) >> 32);
    s->stamp[b] = now;
  }
  uint16_t id = (uint16_t)(s->id[b] + delta);
  s->id[b] = (uint16_t)(id + 1);
  return id;
}

int tunctl_routing_loop(const struct tunctl_cfg *cfg, const uint8_t *pkt, size_t len) {
  if (len < 20 || (pkt[0] >> 4) != 4 || (!cfg->local && !cfg->remote)) return 0;
  if (!tunctl_uses_proto_tx(cfg, pkt[9])) return 0;
  if (cfg->local && memcmp(pkt + 12, &cfg->local, 4) != 0) return 0;
  if (cfg->remote && memcmp(pkt + 16, &cfg->remote, 4) != 0) return 0;
  return 1;
}

void tunctl_outer_fixup(uint8_t *o, uint16_t id, int clear_df) {
  o[4] = (uint8_t)(id >> 8);
  o[5] = (uint8_t)id;
  if (clear_df) o[6] &= (uint8_t)~0x40;
  o[10] = o[11] = 0;
  uint16_t c = tunctl_csum(o, 20, 0);
  o[10] = (uint8_t)(c >> 8);
  o[11] = (uint8_t)c;
}
