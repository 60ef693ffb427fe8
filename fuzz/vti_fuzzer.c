/* libFuzzer harness for the userspace vti receive path (native/vti.c over native/esp.c), as the engine's ESP
 * receive thread runs it (engine.c, `---- vti: ESP`): a received outer IPv4 packet is offered to the namespace's
 * vtis newest first; each checks the outer header, then its (source, destination) (else "another's",
 * TUNCTL_VTI_OTHER), then (destination, SPI) against its one inbound SA — the vti's ikey is that SA's mark, so the
 * SA of another vti is never found (no_state) — then the codec decapsulates and the inner packet is checked.
 * Built and run by fuzz/run-vti.sh.
 *
 * The table (built once, from fixed keys): 8 vtis over the addresses 192.0.2.1-4, both algorithm families, windows
 * 0, 1, 32, 64, 2048, 4096, two vtis with the same addresses (the newer shadows the older), one SPI at two
 * destinations, one vti without SA. Vtis 0-3 and 5 take the kernel's "out" packets of test/fixtures/esp/kernel-esp.txt
 * (SPI 0x1001-0x1004, 192.0.2.1 → 192.0.2.2, the fixture's keys; the seeds rewrite the source for vtis 1-3), vti 4
 * its "in" packets: valid seeds (fuzz/run-vti.sh). Each vti
 * with an SA has a peer (addresses, SPIs and keys mirrored) that encapsulates with tunctl_vti_encap.
 * Every SA is reset for each input (libFuzzer wants determinism).
 *
 * Input: byte 0 the mode and flags, byte 1 which vtis are in the table (bit i: vti i; 0 = all), then:
 *   mode 0 (bits 0-1 = 0): byte 2 the outer addresses (bit 7: rewrite; bits 0-1 source, 2-3 destination from
 *          192.0.2.1-4), byte 3 the SPI (bit 7: rewrite with vti (bits 0-2)'s inbound SPI), then a received outer
 *          packet (exact-size heap copy).
 *   mode 1: byte 2 the sending peer (bits 0-2), bytes 3-4 a bit to flip in the outer packet (>= its length: none),
 *          byte 5 the peer's path MTU (0: 1500, else 256 × it), then an inner packet the peer encapsulates; the
 *          outer packet is received, then received again (the replay).
 *   mode 2/3: records (peer 1 byte, seq 4 bytes, flags 1 byte: bit 0 corrupt the ICV, bit 1 seq = that SA's highest
 *          minus flags >> 2) sent by the peers in that order: per-SA anti-replay verdicts against a model (the SAs
 *          must not share any state); a peer that sent 2^32 - 1 (its reservation ending there too, as the engine's
 *          does) must refuse the next packet as seq_exhausted.
 * What must hold, whatever the input: no memory error (ASan) or undefined behaviour (UBSan); exactly the first vti
 * (newest first) that does not answer "another's" takes the packet, and it is the newest with the packet's
 * addresses (a malformed outer header: the newest vti); its counters move by exactly one, those in front of it
 * count one `rx_other`, those behind are untouched; no_state iff no SA or another SPI; an accepted inner packet
 * lies inside the outer one and is an IPv4/IPv6 packet of its stated length; what a peer sent arrives unchanged
 * at its vti, a replay of it is dropped as `replay` (window > 0), any flipped bit of the ESP part is caught; the
 * outer tos a peer builds carries the inner DSCP and ECN (CE as ECT(0)), and an outer CE marks an ECT inner packet
 * CE on receive (ipip_ecn_decapsulate).
 * A violation aborts (TRAP names the line). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../native/vti.h"

#define TRAP() (fprintf(stderr, "vti_fuzzer: invariant at line %d broken\n", __LINE__), abort())
#define NV 8

static uint32_t be(uint32_t v) { return __builtin_bswap32(v); }
static const uint32_t ADDRS[4] = {0xc0000201u, 0xc0000202u, 0xc0000203u, 0xc0000204u}; /* 192.0.2.1-4 */

/* the fixture's keys (kernel-esp.txt): "out" = K/A, "in" = the same with the first byte ff */
static const uint8_t K[32] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
                              0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static const uint8_t A[32] = {0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
                              0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f};

struct row {
  int alg;          /* 0: no SA */
  unsigned window;
  int local, remote; /* index into ADDRS */
  uint32_t spi_in, spi_out;
  int keys_in;      /* the inbound keys are the fixture's "in" keys (else "out"); outbound the other set */
  uint32_t ikey, okey;
};
static const struct row ROWS[NV] = {
  {TUNCTL_ESP_AES_GCM_128, 32, 1, 0, 0x1001, 0x2001, 0, 10, 10},
  {TUNCTL_ESP_AES_GCM_256, 4096, 1, 2, 0x1002, 0x2002, 0, 11, 11},
  {TUNCTL_ESP_AES_CBC_128_HMAC_SHA256, 1, 1, 3, 0x1003, 0x2003, 0, 12, 12},
  {TUNCTL_ESP_AES_CBC_256_HMAC_SHA256, 0, 3, 0, 0x1004, 0x2004, 0, 13, 13},
  {TUNCTL_ESP_AES_GCM_128, 64, 0, 1, 0x2001, 0x1001, 1, 14, 14},     /* the mirror of vti 0 */
  {TUNCTL_ESP_AES_CBC_256_HMAC_SHA256, 32, 1, 0, 0x1004, 0x2005, 0, 15, 16}, /* vti 0's addresses; vti 3's SPI */
  {TUNCTL_ESP_AES_GCM_256, 2048, 2, 1, 0x3002, 0x3003, 1, 17, 17},
  {0, 0, 2, 3, 0x4000, 0x4001, 0, 18, 18},                          /* no SA: carries nothing */
};

static struct tunctl_vti vti[NV], peer[NV];

static struct tunctl_esp_sa *sa_new(int alg, unsigned window, uint32_t spi_out, int keys_out, uint32_t spi_in,
                                    int keys_in) {
  int gcm = alg <= 2;
  size_t aes = alg == 1 || alg == 3 ? 16 : 32, kl = aes + (gcm ? 4 : 0);
  uint8_t ko[36], ki[36], ao[32], ai[32];
  memcpy(ko, K, aes);
  if (gcm) memcpy(ko + aes, "\xa0\xa1\xa2\xa3", 4);
  memcpy(ki, ko, kl);
  memcpy(ao, A, 32);
  memcpy(ai, A, 32);
  if (keys_out) ko[0] = ao[0] = 0xff;
  if (keys_in) ki[0] = ai[0] = 0xff;
  struct tunctl_esp_params p = {.alg = alg, .spi_out = spi_out, .spi_in = spi_in, .key_out = ko, .key_in = ki,
                                .key_out_len = kl, .key_in_len = kl, .replay_window = window};
  if (!gcm) p.auth_out = ao, p.auth_in = ai, p.auth_out_len = p.auth_in_len = 32;
  struct tunctl_esp_sa *sa = tunctl_esp_sa_new(&p, NULL);
  if (!sa) abort();
  return sa;
}

static void setup(void) {
  static int done;
  if (done) return;
  done = 1;
  for (int i = 0; i < NV; i++) {
    const struct row *r = &ROWS[i];
    struct tunctl_esp_sa *sa = NULL, *psa = NULL;
    if (r->alg) {
      sa = sa_new(r->alg, r->window, r->spi_out, !r->keys_in, r->spi_in, r->keys_in);
      psa = sa_new(r->alg, 0, r->spi_in, r->keys_in, r->spi_out, !r->keys_in);
    }
    if (tunctl_vti_init(&vti[i], be(ADDRS[r->local]), be(ADDRS[r->remote]), r->ikey, r->okey, r->spi_in, sa, 0) < 0 ||
        tunctl_vti_init(&peer[i], be(ADDRS[r->remote]), be(ADDRS[r->local]), r->okey, r->ikey, r->spi_out, psa, 0) < 0)
      abort();
  }
}

static void reset(void) {
  for (int i = 0; i < NV; i++) {
    if (vti[i].sa) tunctl_esp_test_reset(vti[i].sa);
    if (peer[i].sa) tunctl_esp_test_reset(peer[i].sa);
    vti[i].tx_seq = peer[i].tx_seq = 0;
    peer[i].seq_limit = 0;
    peer[i].pmtu = 0;
  }
}

static uint64_t moved(const struct tunctl_vti *now, const struct tunctl_vti *was) {
  uint64_t d = (now->rx_packets - was->rx_packets) + (now->rx_other - was->rx_other);
  for (int k = 0; k < TUNCTL_VTI_RX__COUNT; k++) d += now->rxdrops[k] - was->rxdrops[k];
  return d;
}

/* The engine's ESP receive loop (engine.c rx_main, proto 50) over the vtis in mask, with the invariants above.
 * Returns the verdict of the vti that took the packet (TUNCTL_VTI_OTHER: none), its index in *who. */
static int receive(unsigned mask, uint8_t *pkt, size_t len, int *who, uint8_t **inner, size_t *ilen) {
  static struct tunctl_vti before[NV];
  memcpy(before, vti, sizeof(vti));
  uint32_t saddr = 0, daddr = 0;
  int wellformed = len >= 20 && pkt[0] >> 4 == 4 && (pkt[0] & 15) >= 5 && (size_t)(pkt[0] & 15) * 4 <= len &&
                   (size_t)(pkt[2] << 8 | pkt[3]) >= (size_t)(pkt[0] & 15) * 4 && (size_t)(pkt[2] << 8 | pkt[3]) <= len &&
                   pkt[9] == 50 && !((pkt[6] << 8 | pkt[7]) & 0x3fff);
  if (len >= 20) memcpy(&saddr, pkt + 12, 4), memcpy(&daddr, pkt + 16, 4);
  uint8_t spi[4] = {0};
  size_t ihl = len ? (size_t)(pkt[0] & 15) * 4 : 0;
  if (wellformed && len >= ihl + 4) memcpy(spi, pkt + ihl, 4);
  int r = TUNCTL_VTI_OTHER, first = -1;
  *who = -1;
  for (int i = NV - 1; i >= 0; i--) {
    if (!(mask >> i & 1)) continue;
    if (first < 0) first = i;
    int mine = vti[i].remote == saddr && vti[i].local == daddr;
    r = tunctl_vti_decap(&vti[i], pkt, len, inner, ilen);
    if (r == TUNCTL_VTI_OTHER) {
      if (!wellformed || mine || *inner || *ilen) TRAP();
      continue;
    }
    *who = i;
    if (!wellformed ? (r != VRX_MALFORMED || i != first) : !mine) TRAP();
    if (r == VRX_MALFORMED && wellformed) TRAP();
    /* the SA lookup: (destination, SPI) with this vti's mark finds its one inbound SA or nothing; an ESP part too
     * short for a header is truncated */
    size_t tot = len >= 4 ? (size_t)(pkt[2] << 8 | pkt[3]) : 0;
    if (wellformed && vti[i].sa && tot < ihl + 8 && r != VRX_ESP + ESP_TRUNCATED) TRAP();
    if (wellformed && vti[i].sa && tot >= ihl + 8 && (r == VRX_NO_STATE) != !!memcmp(spi, &vti[i].spi_in, 4)) TRAP();
    if (!vti[i].sa && r != VRX_NO_STATE && r != VRX_MALFORMED) TRAP();
    if (r == VRX_OK) {
      size_t n = *ilen;
      uint8_t *p = *inner;
      if (p < pkt || p + n > pkt + len || n < 20) TRAP();
      if (p[0] >> 4 == 4 ? (size_t)(p[2] << 8 | p[3]) != n : p[0] >> 4 == 6 ? (size_t)(p[4] << 8 | p[5]) + 40 != n : 1)
        TRAP();
      if (vti[i].rx_packets != before[i].rx_packets + 1) TRAP();
    } else if (r <= 0 || r >= TUNCTL_VTI_RX__COUNT || r == VRX_ESP || *inner || *ilen ||
               vti[i].rxdrops[r] != before[i].rxdrops[r] + 1) {
      TRAP();
    }
    break;
  }
  /* counters: the taker moved by one, those in front by one rx_other each, the others not at all */
  for (int i = 0; i < NV; i++) {
    uint64_t d = moved(&vti[i], &before[i]);
    int in_front = (mask >> i & 1) && i > *who;
    if (i == *who ? d != 1 : in_front ? d != 1 || vti[i].rx_other != before[i].rx_other + 1 : d != 0) TRAP();
  }
  if (*who < 0 && (r != TUNCTL_VTI_OTHER || !wellformed) && mask) TRAP();
  return *who < 0 ? TUNCTL_VTI_OTHER : r;
}

/* which vti of mask takes a well-formed packet from peer p's addresses: the newest with them */
static int owner(unsigned mask, int p) {
  for (int i = NV - 1; i >= 0; i--)
    if ((mask >> i & 1) && vti[i].local == vti[p].local && vti[i].remote == vti[p].remote) return i;
  return -1;
}

static uint8_t buf[70000], icmp[2048], copy[70000];

static void mode_packet(unsigned mask, const uint8_t *data, size_t size) {
  if (size < 2) return;
  uint8_t asel = data[0], ssel = data[1];
  data += 2, size -= 2;
  uint8_t *pkt = malloc(size ? size : 1); /* exact size: ASan sees any read past the packet */
  memcpy(pkt, data, size);
  if ((asel & 0x80) && size >= 20) {
    uint32_t s = be(ADDRS[asel & 3]), d = be(ADDRS[asel >> 2 & 3]);
    memcpy(pkt + 12, &s, 4);
    memcpy(pkt + 16, &d, 4);
  }
  size_t ihl = size ? (size_t)(pkt[0] & 15) * 4 : 0;
  if ((ssel & 0x80) && ihl >= 20 && size >= ihl + 4) memcpy(pkt + ihl, &vti[ssel & 7].spi_in, 4);
  int who;
  uint8_t *inner;
  size_t ilen;
  receive(mask, pkt, size, &who, &inner, &ilen);
  free(pkt);
}

static void mode_peer(unsigned mask, const uint8_t *data, size_t size) {
  if (size < 4) return;
  int p = data[0] & 7;
  unsigned flip = (unsigned)data[1] << 8 | data[2];
  peer[p].pmtu = data[3] ? 256 * data[3] : 0;
  data += 4, size -= 4;
  if (size > 65000) size = 65000;
  memcpy(buf + TUNCTL_VTI_HEADROOM, data, size);
  uint8_t *out;
  size_t olen;
  uint64_t sent = peer[p].tx_packets;
  int t = tunctl_vti_encap(&peer[p], buf, sizeof(buf), size, &out, &olen, icmp);
  if (t == VTI_TX_ICMP) {
    if (!olen || olen > sizeof(icmp) || out != icmp || peer[p].tx_packets != sent) TRAP();
    return;
  }
  if (t != VTI_TX_SEND) {
    if (!peer[p].sa ? peer[p].txdrops[VTX_NO_STATE] == 0 : 0) TRAP();
    return;
  }
  if (!peer[p].sa || out < buf || out + olen > buf + sizeof(buf) || olen < 20 + 8) TRAP();
  /* the outer header is the peer's: protocol 50, its addresses */
  if (out[9] != 50 || memcmp(out + 12, &peer[p].local, 4) || memcmp(out + 16, &peer[p].remote, 4)) TRAP();
  int o = owner(mask, p), flipped = flip < olen * 8;
  /* the outer tos the peer built (xfrm4 tunnel mode): the inner DSCP, the inner ECN with CE sent as ECT(0) */
  int v4 = data[0] >> 4 == 4;
  uint8_t itos = v4 ? data[1] : (uint8_t)(data[0] << 4 | data[1] >> 4);
  if (out[1] >> 2 != itos >> 2 || (out[1] & 3) != ((itos & 3) == 3 ? 2 : (itos & 3))) TRAP();
  if (flipped) out[flip / 8] ^= (uint8_t)(1 << (flip % 8));
  uint8_t *pkt = malloc(olen);
  memcpy(pkt, out, olen);
  int who;
  uint8_t *inner;
  size_t ilen;
  int r = receive(mask, pkt, olen, &who, &inner, &ilen);
  /* what the vti must deliver: the inner packet as its header states it (TFC padding after it removed), if its
   * stated length fits what was sent */
  size_t want = 0;
  if (data[0] >> 4 == 4) {
    size_t tl = (size_t)(data[2] << 8 | data[3]);
    if (tl >= (size_t)(data[0] & 15) * 4 && tl <= size) want = tl;
  } else if (40 + (size_t)(data[4] << 8 | data[5]) <= size) {
    want = 40 + (size_t)(data[4] << 8 | data[5]);
  }
  if (!flipped) {
    if (who != o) TRAP();
    /* the peer's vti takes it whole and unchanged; a vti shadowing it (same addresses) finds no SA for the SPI */
    if (o == p && (want ? r != VRX_OK || ilen != want || memcmp(inner, data, want) : r != VRX_ESP + ESP_INNER_MALFORMED))
      TRAP();
    if (o != p && r != (o < 0 ? TUNCTL_VTI_OTHER : VRX_NO_STATE)) TRAP();
  } else if (flip / 8 >= 20 && r == VRX_OK) {
    TRAP(); /* SPI (no SA), sequence number, IV, payload and ICV: every bit is checked */
  } else if (r == VRX_OK) {
    /* the outer header is not authenticated (addresses, tos, ttl, id, checksum): the inner packet arrives as sent
     * but for the ECN an outer CE sets (IPv4: tos and checksum) */
    if (ilen != want) TRAP();
    for (size_t k = 0; k < want; k++)
      if (inner[k] != data[k] && !(k == 1 || (data[0] >> 4 == 4 && (k == 10 || k == 11)))) TRAP();
  }
  if (r == VRX_OK) {
    /* ipip_ecn_decapsulate: an outer CE (only a flipped outer bit makes one) marks an ECT inner packet CE */
    uint8_t got = v4 ? inner[1] : (uint8_t)(inner[0] << 4 | inner[1] >> 4);
    int want_ecn = (out[1] & 3) == 3 && (itos & 3) ? 3 : (itos & 3);
    if ((got & 3) != want_ecn || got >> 2 != itos >> 2) TRAP();
  }
  free(pkt);
  if (r != VRX_OK) return;
  /* the replay: dropped (window > 0) or accepted again (no window) */
  int first = who;
  pkt = malloc(olen);
  memcpy(pkt, out, olen);
  r = receive(mask, pkt, olen, &who, &inner, &ilen);
  if (who != first || r != (ROWS[first].window ? VRX_ESP + ESP_REPLAY : VRX_OK)) TRAP();
  free(pkt);
}

static void mode_series(unsigned mask, const uint8_t *data, size_t size) {
  static const uint8_t inner4[40] = {0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 17};
  uint32_t top[NV] = {0}, acc[NV][32];
  int nacc[NV] = {0};
  for (size_t i = 0; i + 6 <= size && i < 6 * 96; i += 6) {
    int p = data[i] & 7;
    if (!peer[p].sa) continue;
    uint32_t seq = (uint32_t)data[i + 1] << 24 | data[i + 2] << 16 | data[i + 3] << 8 | data[i + 4];
    uint8_t fl = data[i + 5];
    if (fl & 2) seq = top[p] - (fl >> 2);
    if (seq == 0) seq = 1;
    tunctl_esp_test_reset(peer[p].sa);
    peer[p].tx_seq = seq - 1;
    /* the engine's reservation ends at 2^32 - 1 once it gets there (src/userspace/engine.ts reserveSeq) */
    peer[p].seq_limit = seq == 0xffffffffu ? 0xffffffffu : 0;
    if (tunctl_esp_set_tx_seq(peer[p].sa, seq - 1) < 0) TRAP();
    memcpy(buf + TUNCTL_VTI_HEADROOM, inner4, sizeof(inner4));
    uint8_t *out;
    size_t olen;
    if (tunctl_vti_encap(&peer[p], buf, sizeof(buf), sizeof(inner4), &out, &olen, icmp) != VTI_TX_SEND) TRAP();
    if (fl & 1) out[olen - 1] ^= 1;
    if (seq == 0xffffffffu) {
      /* the sender's last sequence number: the next packet is refused as seq_exhausted (the SA is spent, whatever
       * the reservation says), never wrapped */
      uint64_t ex = peer[p].txdrops[VTX_SEQ_EXHAUSTED];
      uint8_t *o2;
      size_t l2;
      memcpy(copy + TUNCTL_VTI_HEADROOM, inner4, sizeof(inner4));
      if (tunctl_vti_encap(&peer[p], copy, sizeof(copy), sizeof(inner4), &o2, &l2, icmp) != VTI_TX_DROP ||
          peer[p].txdrops[VTX_SEQ_EXHAUSTED] != ex + 1)
        TRAP();
    }
    int o = owner(mask, p);
    int who;
    uint8_t *inner;
    size_t ilen;
    int r = receive(mask, out, olen, &who, &inner, &ilen);
    if (who != o) TRAP();
    if (o != p) {
      if (r == VRX_OK) TRAP();
      continue;
    }
    unsigned w = ROWS[p].window;
    int seen = 0;
    for (int j = 0; j < nacc[p]; j++) seen |= acc[p][j] == seq;
    int corrupt = fl & 1;
    int want = !w ? (corrupt ? ESP_BAD_ICV : ESP_OK)
               : seq > top[p] ? (corrupt ? ESP_BAD_ICV : ESP_OK)
               : top[p] - seq >= w ? ESP_TOO_OLD
               : seen ? ESP_REPLAY
               : corrupt ? ESP_BAD_ICV : ESP_OK;
    if (r != (want == ESP_OK ? VRX_OK : VRX_ESP + want)) TRAP();
    if (r == VRX_OK) {
      if (nacc[p] < 32) acc[p][nacc[p]++] = seq;
      else if (w) return; /* the model's memory is full: stop here rather than guess */
      if (seq > top[p]) top[p] = seq;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  setup();
  reset();
  unsigned mode = data[0] & 3, mask = data[1] ? data[1] : 0xff;
  data += 2, size -= 2;
  if (mode == 0) mode_packet(mask, data, size);
  else if (mode == 1) mode_peer(mask, data, size);
  else mode_series(mask, data, size);
  return 0;
}
