/* Receive dispatch of the userspace engine: the kernel's choice of the one tunnel that takes a packet.
 *
 * protocol 47 (ip_gre.c gre_rcv → ipgre_rcv → __ipgre_rcv): ip_tunnel_lookup over the gre tunnels with the GRE
 *   header's flags and key (gre_parse_header). gretap/erspan do not exist here, so TEB payloads try the gre table
 *   too, as ipgre_rcv does when no gretap tunnel matches.
 * protocol 4 (tunnel4.c tunnel4_rcv walks the handlers by priority): ipip.c's ipip_handler (priority 1) runs
 *   ip_tunnel_lookup over the ipip tunnels with IP_TUNNEL_NO_KEY; only if it finds none does sit.c's ipip_handler
 *   (priority 2) run ipip6_tunnel_lookup over the sit/isatap tunnels.
 * protocol 41 (sit.c sit_handler → ipip6_rcv): ipip6_tunnel_lookup over the sit/isatap tunnels.
 *
 * A handler only exists when its module is loaded; here, when the table holds a tunnel of its mode.
 * The kernel hashes tunnels into chains (ip_tunnel_hash / sit's HASH) and walks one chain per pass; every tunnel
 * that can satisfy a pass's condition is in the chain walked, so walking the whole table with the same condition
 * gives the same answer. Chains are newest first (hlist_add_head_rcu / ipip6_tunnel_link), so we walk backwards. */
#include "dispatch.h"

#include <string.h>

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t ld32n(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static int is_multicast(uint32_t a_net) { return (((const uint8_t *)&a_net)[0] & 0xf0) == 0xe0; }

#define F_CSUM 0x8000
#define F_ROUTING 0x4000
#define F_KEY 0x2000
#define F_SEQ 0x1000

/* the packet's identity as the lookups see it */
struct pkt_id {
  uint32_t saddr, daddr; /* network order: remote, local */
  int has_key;           /* TUNNEL_KEY in tpi->flags */
  int no_key;            /* IP_TUNNEL_NO_KEY (ipip) */
  uint32_t key;          /* host order (the kernel compares __be32 values; equality is the same) */
};

/* ip_tunnel.c ip_tunnel_key_match */
static int key_match(const struct tunctl_cfg *c, const struct pkt_id *p) {
  if (!p->has_key) return !c->has_ikey;
  return c->has_ikey && c->ikey == p->key;
}

static uint32_t i_key(const struct tunctl_cfg *c) { return c->has_ikey ? c->ikey : 0; }

/* ip_tunnel.c ip_tunnel_lookup, over the entries of mode `mode`. -1 if none. */
static int ip_tunnel_lookup(const struct tunctl_table *tab, int mode, int link, const struct pkt_id *p) {
  const struct tunctl_entry *e = tab->entries;
  int cand = -1;
  /* 1: local and remote exact, key matching; `cand = t` (not `if (!cand)`): the last one walked, i.e. the oldest.
   * Passes 1 and 2 walk the chain of hash(key, remote); ip_bucket files a multicast-remote tunnel under remote 0,
   * so it is only ever found by pass 3 (ip_route_input drops multicast sources anyway). */
  for (int i = tab->n - 1; i >= 0; i--) {
    const struct tunctl_cfg *c = &e[i].cfg;
    if (c->mode != mode || is_multicast(c->remote) || p->daddr != c->local || p->saddr != c->remote || !e[i].up) continue;
    if (!key_match(c, p)) continue;
    if (e[i].link == link) return i;
    cand = i;
  }
  /* 2: remote exact, local any */
  for (int i = tab->n - 1; i >= 0; i--) {
    const struct tunctl_cfg *c = &e[i].cfg;
    if (c->mode != mode || is_multicast(c->remote) || p->saddr != c->remote || c->local != 0 || !e[i].up) continue;
    if (!key_match(c, p)) continue;
    if (e[i].link == link) return i;
    if (cand < 0) cand = i;
  }
  /* 3: local exact and remote any, or a multicast remote equal to the packet's destination */
  for (int i = tab->n - 1; i >= 0; i--) {
    const struct tunctl_cfg *c = &e[i].cfg;
    if (c->mode != mode) continue;
    if ((p->daddr != c->local || c->remote != 0) && (p->daddr != c->remote || !is_multicast(p->daddr))) continue;
    if (!e[i].up) continue;
    if (!key_match(c, p)) continue;
    if (e[i].link == link) return i;
    if (cand < 0) cand = i;
  }
  /* 4: wildcard; the key compared by value only (no TUNNEL_KEY flag test: an unkeyed packet has key 0) */
  for (int i = tab->n - 1; i >= 0; i--) {
    const struct tunctl_cfg *c = &e[i].cfg;
    if (c->mode != mode) continue;
    if ((!p->no_key && i_key(c) != p->key) || c->local != 0 || c->remote != 0 || !e[i].up) continue;
    if (e[i].link == link) return i;
    if (cand < 0) cand = i;
  }
  if (cand >= 0) return cand;
  /* collect_md_tun: tunctl creates no external (metadata) tunnels. Then the fallback device (tunl0 / gre0). */
  for (int i = 0; i < tab->n; i++)
    if (e[i].cfg.mode == mode && e[i].fallback) return e[i].up ? i : -1;
  return -1;
}

static int is_sit(int mode) { return mode == TM_SIT || mode == TM_ISATAP; }

/* sit.c ipip6_tunnel_lookup: first match wins in each pass; a tunnel with a link only takes packets that arrived
 * on that link (sifindex, the l3mdev slave, is not modelled: no VRF here). */
static int ipip6_tunnel_lookup(const struct tunctl_table *tab, int ifindex, uint32_t remote, uint32_t local) {
  const struct tunctl_entry *e = tab->entries;
#define LINK_OK(i) (!e[i].link || e[i].link == ifindex)
  for (int i = tab->n - 1; i >= 0; i--) /* tunnels_r_l */
    if (is_sit(e[i].cfg.mode) && e[i].cfg.local && e[i].cfg.remote && local == e[i].cfg.local &&
        remote == e[i].cfg.remote && LINK_OK(i) && e[i].up)
      return i;
  for (int i = tab->n - 1; i >= 0; i--) /* tunnels_r */
    if (is_sit(e[i].cfg.mode) && !e[i].cfg.local && e[i].cfg.remote && remote == e[i].cfg.remote && LINK_OK(i) &&
        e[i].up)
      return i;
  for (int i = tab->n - 1; i >= 0; i--) /* tunnels_l */
    if (is_sit(e[i].cfg.mode) && e[i].cfg.local && !e[i].cfg.remote && local == e[i].cfg.local && LINK_OK(i) &&
        e[i].up)
      return i;
#undef LINK_OK
  /* tunnels_wc[0]: only the head of the chain (the newest wildcard, sit0 being the oldest) is looked at, whatever
   * its link, and only if it is up */
  for (int i = tab->n - 1; i >= 0; i--)
    if (is_sit(e[i].cfg.mode) && !e[i].cfg.local && !e[i].cfg.remote) return e[i].up ? i : -1;
  return -1;
}

static int has_mode(const struct tunctl_table *tab, int mode) {
  for (int i = 0; i < tab->n; i++)
    if (tab->entries[i].cfg.mode == mode || (mode == TM_SIT && tab->entries[i].cfg.mode == TM_ISATAP)) return 1;
  return 0;
}

int tunctl_select(const struct tunctl_table *tab, const uint8_t *pkt, size_t len, int ifindex, int *why) {
  int dummy;
  if (!why) why = &dummy;
  *why = SEL_MALFORMED;
  /* ip_rcv has validated the outer header before raw sockets and handlers see it; be as strict here */
  if (len < 20 || (pkt[0] >> 4) != 4) return TUNCTL_SEL_NONE;
  size_t ihl = (size_t)(pkt[0] & 15) * 4;
  if (ihl < 20 || ihl > len) return TUNCTL_SEL_NONE;
  size_t tot = rd16(pkt + 2);
  if (tot < ihl || tot > len) return TUNCTL_SEL_NONE;
  struct pkt_id p = {.saddr = ld32n(pkt + 12), .daddr = ld32n(pkt + 16)};
  int proto = pkt[9], r = -1;
  *why = SEL_NO_HANDLER;
  if (proto == 47) {
    if (!has_mode(tab, TM_GRE)) return TUNCTL_SEL_NONE;
    /* gre_parse_header: the flags and key; version, routing and checksum are the selected tunnel's to judge
     * (tunctl_decap; see native/README.md on where the kernel drops them) */
    const uint8_t *g = pkt + ihl;
    size_t rem = tot - ihl;
    *why = SEL_MALFORMED;
    if (rem < 4) return TUNCTL_SEL_NONE;
    uint16_t flags = rd16(g);
    size_t off = 4 + ((flags & F_CSUM) ? 4 : 0);
    if (flags & F_KEY) {
      if (rem < off + 4) return TUNCTL_SEL_NONE;
      p.has_key = 1;
      p.key = rd32(g + off);
    }
    r = ip_tunnel_lookup(tab, TM_GRE, ifindex, &p);
  } else if (proto == 4) {
    p.no_key = 1;
    int ipip = has_mode(tab, TM_IPIP), sit = has_mode(tab, TM_SIT);
    if (!ipip && !sit) return TUNCTL_SEL_NONE;
    if (ipip) r = ip_tunnel_lookup(tab, TM_IPIP, ifindex, &p); /* ipip.c ipip_handler, priority 1 */
    if (r < 0 && sit) r = ipip6_tunnel_lookup(tab, ifindex, p.saddr, p.daddr); /* sit.c ipip_handler, priority 2 */
  } else if (proto == 41) {
    if (!has_mode(tab, TM_SIT)) return TUNCTL_SEL_NONE;
    r = ipip6_tunnel_lookup(tab, ifindex, p.saddr, p.daddr);
  } else {
    return TUNCTL_SEL_NONE;
  }
  if (r < 0) {
    *why = SEL_NO_TUNNEL;
    return TUNCTL_SEL_NONE;
  }
  *why = SEL_OK;
  return r;
}

int tunctl_uses_proto(const struct tunctl_cfg *c, int proto) {
  return tunctl_outer_proto(c) == proto || (proto == 4 && c->mode == TM_SIT && (c->inner & TP_IPV4));
}

int tunctl_receive(const struct tunctl_table *tab, int self, struct tunctl_rxstate *rx, uint8_t *pkt, size_t len,
                   int ifindex, uint8_t **inner, size_t *inner_len, int *drop) {
  int why;
  *drop = DR_OK;
  int sel = tunctl_select(tab, pkt, len, ifindex, &why);
  if (sel == self) {
    struct tunctl_cfg cfg = tab->entries[self].cfg;
    cfg.dispatched = 1;
    int r = tunctl_decap(&cfg, rx, pkt, len, inner, inner_len);
    if (r == DR_OK) return RXV_DELIVER;
    *drop = r;
    return RXV_DROP;
  }
  if (sel != TUNCTL_SEL_NONE) return RXV_SIBLING;
  /* nobody's: counted once, by the oldest tunnel listening on this protocol */
  int proto = len >= 20 ? pkt[9] : -1;
  for (int i = 0; i < tab->n; i++) {
    if (proto >= 0 && !tunctl_uses_proto(&tab->entries[i].cfg, proto)) continue;
    if (i != self) return RXV_IGNORE;
    break;
  }
  if (why == SEL_MALFORMED) {
    /* the codec says how (truncated vs malformed) */
    struct tunctl_cfg cfg = tab->entries[self].cfg;
    uint8_t *in;
    size_t il;
    struct tunctl_rxstate scratch = {0};
    int r = tunctl_decap(&cfg, &scratch, pkt, len, &in, &il);
    *drop = r == DR_TRUNCATED ? DR_TRUNCATED : DR_MALFORMED;
  } else {
    *drop = DR_NO_TUNNEL;
  }
  return RXV_NO_TUNNEL;
}
