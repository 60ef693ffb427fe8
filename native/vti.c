/* tunctl userspace vti data path (see vti.h): ip_vti.c + xfrm4 tunnel mode over the ESP codec. Pure. */
#include "vti.h"
#include "tunctl.h"

#include <string.h>

const char *const tunctl_vti_rx_names[TUNCTL_VTI_RX__COUNT] = {
  "ok", "malformed", "no_state",
  /* the codec's reasons, as esp.c names them */
  "esp_ok", "truncated", "bad_spi", "replay", "too_old", "bad_icv", "bad_pad", "bad_next_header", "dummy",
  "inner_malformed", "seq_exhausted", "no_room", "too_big", "crypto",
};
const char *const tunctl_vti_tx_names[VTX__COUNT] = {
  "ok", "no_state", "malformed", "seq_exhausted", "seq_reserved", "too_big", "no_room", "crypto",
};

/* one writer per counter (TX or RX thread); readers elsewhere */
#define ADD(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)

int tunctl_vti_init(struct tunctl_vti *v, uint32_t local, uint32_t remote, uint32_t ikey, uint32_t okey,
                    uint32_t spi_in, struct tunctl_esp_sa *sa, uint32_t resume_seq) {
  memset(v, 0, sizeof(*v));
  v->local = local;
  v->remote = remote;
  v->ikey = ikey;
  v->okey = okey;
  v->sa = sa;
  v->outer.saddr = local;
  v->outer.daddr = remote;
  v->outer.ttl = 0; /* 64: ip4_dst_hoplimit of a route without a hop limit */
  if (sa) {
    struct tunctl_esp_stats st;
    tunctl_esp_stats(sa, &st);
    if (resume_seq && tunctl_esp_set_tx_seq(sa, resume_seq) < 0) return -1;
    v->tx_seq = resume_seq ? resume_seq : st.tx_seq;
  }
  uint8_t b[4] = {(uint8_t)(spi_in >> 24), (uint8_t)(spi_in >> 16), (uint8_t)(spi_in >> 8), (uint8_t)spi_in};
  memcpy(&v->spi_in, b, 4);
  return 0;
}

void tunctl_vti_free(struct tunctl_vti *v) {
  tunctl_esp_sa_free(v->sa);
  v->sa = NULL;
}

int tunctl_vti_xfrm_mtu(const struct tunctl_vti *v) {
  int pmtu = v->pmtu > 0 ? v->pmtu : 1500;
  return v->sa ? tunctl_esp_max_inner(v->sa, pmtu) : pmtu - 20;
}

static int tx_drop(struct tunctl_vti *v, int why) {
  ADD(v->txdrops[why], 1);
  return VTI_TX_DROP;
}

int tunctl_vti_encap(struct tunctl_vti *v, uint8_t *buf, size_t cap, size_t len, uint8_t **out, size_t *out_len,
                     uint8_t *icmpbuf) {
  *out = NULL;
  *out_len = 0;
  if (!v->sa) return tx_drop(v, VTX_NO_STATE);
  if (cap < TUNCTL_VTI_HEADROOM || len > cap - TUNCTL_VTI_HEADROOM) return tx_drop(v, VTX_NO_ROOM);
  uint8_t *inner = buf + TUNCTL_VTI_HEADROOM;
  int ver = len ? inner[0] >> 4 : 0;
  if (!((ver == 4 && len >= 20 && (inner[0] & 15) >= 5) || (ver == 6 && len >= 40))) return tx_drop(v, VTX_MALFORMED);
  /* vti_xmit: larger than the xfrm path MTU → ICMP for DF/IPv6 packets, IPv4 without DF goes out (fragmented) */
  int mtu = tunctl_vti_xfrm_mtu(v);
  if (len > (size_t)mtu && (ver == 6 || (inner[6] & 0x40))) {
    if (ver == 6 && mtu < 1280) mtu = 1280;
    if (ver == 6 && len <= (size_t)mtu) goto send; /* IPV6_MIN_MTU: the kernel does not go below it */
    size_t n = tunctl_icmp_too_big(inner, len, mtu, icmpbuf);
    if (!n) return tx_drop(v, VTX_TOO_BIG);
    ADD(v->icmp_sent, 1);
    *out = icmpbuf;
    *out_len = n;
    return VTI_TX_ICMP;
  }
send:
  /* beyond the reservation, unless the SA is spent (2^32 - 1 sent: the codec says seq_exhausted, the true reason) */
  if (v->seq_limit && __atomic_load_n(&v->tx_seq, __ATOMIC_RELAXED) >= __atomic_load_n(&v->seq_limit, __ATOMIC_RELAXED) &&
      __atomic_load_n(&v->tx_seq, __ATOMIC_RELAXED) != UINT32_MAX)
    return tx_drop(v, VTX_SEQ_RESERVED);
  size_t hl = tunctl_esp_header_len(v->sa);
  uint8_t *esp = inner - hl;
  size_t esplen;
  uint8_t head[8]; /* what the outer header takes from the inner one (tos/traffic class, DF), before encryption */
  memcpy(head, inner, sizeof(head));
  int r = tunctl_esp_encap(v->sa, inner, len, esp, (size_t)(buf + cap - esp), &esplen);
  if (r != ESP_OK) {
    int why = r == ESP_SEQ_EXHAUSTED ? VTX_SEQ_EXHAUSTED : r == ESP_INNER_MALFORMED ? VTX_MALFORMED
            : r == ESP_TOO_BIG ? VTX_TOO_BIG : r == ESP_NO_ROOM ? VTX_NO_ROOM : VTX_CRYPTO;
    return tx_drop(v, why);
  }
  uint8_t *o = esp - 20;
  if (tunctl_esp_outer_ipv4(o, esplen, head, &v->outer) != 20) return tx_drop(v, VTX_TOO_BIG);
  __atomic_store_n(&v->tx_seq, v->tx_seq + 1, __ATOMIC_RELAXED);
  ADD(v->tx_packets, 1);
  ADD(v->tx_bytes, esplen + 20);
  *out = o;
  *out_len = esplen + 20;
  return VTI_TX_SEND;
}

static int rx_drop(struct tunctl_vti *v, int why) {
  ADD(v->rxdrops[why], 1);
  return why;
}

int tunctl_vti_decap(struct tunctl_vti *v, uint8_t *pkt, size_t len, uint8_t **inner, size_t *inner_len) {
  *inner = NULL;
  *inner_len = 0;
  /* ip_rcv has checked version, ihl, length and checksum before a raw socket sees the packet, and reassembled
   * fragments; checked again here because the codec is also fed by tests and the fuzzer */
  if (len < 20 || (pkt[0] >> 4) != 4 || (pkt[0] & 15) < 5) return rx_drop(v, VRX_MALFORMED);
  size_t ihl = (size_t)(pkt[0] & 15) * 4, tot = (size_t)(pkt[2] << 8 | pkt[3]);
  if (ihl > len || tot < ihl || tot > len || pkt[9] != 50 || ((pkt[6] << 8 | pkt[7]) & 0x3fff))
    return rx_drop(v, VRX_MALFORMED);
  uint32_t saddr, daddr;
  memcpy(&saddr, pkt + 12, 4);
  memcpy(&daddr, pkt + 16, 4);
  /* vti_input: ip_tunnel_lookup(saddr, daddr) finds this tunnel or another */
  if (saddr != v->remote || daddr != v->local) {
    ADD(v->rx_other, 1);
    return TUNCTL_VTI_OTHER;
  }
  uint8_t *esp = pkt + ihl;
  size_t esplen = tot - ihl;
  /* xfrm_input: xfrm_state_lookup(mark = ikey, daddr, spi): this tunnel's one inbound SA */
  if (!v->sa || esplen < 8 || memcmp(esp, &v->spi_in, 4)) return rx_drop(v, esplen < 8 && v->sa ? VRX_ESP + ESP_TRUNCATED : VRX_NO_STATE);
  size_t hl = tunctl_esp_header_len(v->sa), n;
  if (esplen < hl) return rx_drop(v, VRX_ESP + ESP_TRUNCATED);
  int nh, r = tunctl_esp_decap(v->sa, esp, esplen, esp + hl, esplen - hl, &n, &nh);
  if (r != ESP_OK) return rx_drop(v, VRX_ESP + r);
  /* xfrm4 tunnel mode input: ipip_ecn_decapsulate */
  tunctl_esp_ecn_decap(pkt[1], esp + hl, n);
  ADD(v->rx_packets, 1);
  ADD(v->rx_bytes, tot);
  *inner = esp + hl;
  *inner_len = n;
  return VRX_OK;
}
