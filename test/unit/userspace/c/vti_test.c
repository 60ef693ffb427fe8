/* Tests of the userspace vti data path (native/vti.c over native/esp.c), run by test/unit/userspace/vti.test.ts:
 *   cc -pthread -Inative test/unit/userspace/c/vti_test.c native/vti.c native/esp.c native/codec.c -lcrypto
 *   ./a.out test/fixtures/esp/kernel-esp.txt
 * One line per case, `ok NAME` or `not ok NAME<tab>WHY`, then `N cases, M failed`; exit 1 if a case failed.
 * Interop: every packet the Linux kernel's vti + esp4 sent (test/fixtures/esp/kernel-esp.txt, outer header
 * included) is received by a userspace vti, and a userspace vti sends the same inner packet as the same bytes
 * (given the kernel's sequence number, IV and IP id). */
#include "vti.h"
#include "tunctl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *RX(int r) { return r == TUNCTL_VTI_OTHER ? "other" : r >= 0 && r < TUNCTL_VTI_RX__COUNT ? tunctl_vti_rx_names[r] : "?"; }

#define A_ADDR "192.0.2.1"
#define B_ADDR "192.0.2.2"

/* the fixture's keys: side a sends with spi[0] / key[0], side b with spi[1] / key[1] */
struct kkeys {
  int alg;
  uint32_t spi[2];
  uint8_t key[2][36], auth[2][32];
  size_t klen;
};

/* vti of side `side` (0: a = 192.0.2.1, 1: b = 192.0.2.2) with ikey 1 / okey 1 */
static int make_vti(struct tunctl_vti *v, const struct kkeys *k, int side, uint32_t resume) {
  int gcm = k->alg <= TUNCTL_ESP_AES_GCM_256;
  struct tunctl_esp_params p = {
    .alg = k->alg, .spi_out = k->spi[side], .spi_in = k->spi[!side],
    .key_out = k->key[side], .key_in = k->key[!side], .key_out_len = k->klen, .key_in_len = k->klen,
    .auth_out = gcm ? NULL : k->auth[side], .auth_in = gcm ? NULL : k->auth[!side],
    .auth_out_len = gcm ? 0 : 32, .auth_in_len = gcm ? 0 : 32, .replay_window = 32,
  };
  const char *err;
  struct tunctl_esp_sa *sa = tunctl_esp_sa_new(&p, &err);
  if (!sa) {
    snprintf(why, sizeof(why), "SA: %s", err);
    return -1;
  }
  uint32_t me = ip4(side ? B_ADDR : A_ADDR), peer = ip4(side ? A_ADDR : B_ADDR);
  return tunctl_vti_init(v, me, peer, 1, 1, k->spi[!side], sa, resume);
}

static uint8_t buf[70000], icmp[2048], pkt[70000];

/* dir 0: the kernel's a->b packet: b's vti receives it; a's vti sends the inner packet again: same bytes */
static int kernel_case(struct kkeys *k, struct tunctl_vti *rx, const uint8_t *ip, size_t iplen, int dir) {
  memcpy(pkt, ip, iplen);
  uint8_t *inner;
  size_t ilen;
  int r = tunctl_vti_decap(rx, pkt, iplen, &inner, &ilen);
  CHECK(r == VRX_OK, "receiving the kernel's packet: %s", RX(r));
  struct tunctl_vti tx;
  if (make_vti(&tx, k, dir, 0) < 0) return 1;
  uint32_t seq = (uint32_t)ip[24] << 24 | ip[25] << 16 | ip[26] << 8 | ip[27];
  int gcm = k->alg <= TUNCTL_ESP_AES_GCM_256;
  tunctl_esp_test_next_iv(tx.sa, ip + 28);
  int ok = seq <= 1 || tunctl_esp_set_tx_seq(tx.sa, seq - 1) == 0;
  tx.tx_seq = seq - 1;
  tx.outer.id = (uint16_t)(ip[4] << 8 | ip[5]);
  memcpy(buf + TUNCTL_VTI_HEADROOM, inner, ilen);
  uint8_t *out;
  size_t olen;
  int t = tunctl_vti_encap(&tx, buf, sizeof(buf), ilen, &out, &olen, icmp);
  tunctl_vti_free(&tx);
  CHECK(ok, "setting the sequence number");
  CHECK(t == VTI_TX_SEND, "encap: %d", t);
  CHECK(olen == iplen, "length %zu, kernel %zu (%s)", olen, iplen, gcm ? "gcm" : "cbc");
  for (size_t i = 0; i < iplen; i++) CHECK(out[i] == ip[i], "byte %zu: %02x, kernel %02x", i, out[i], ip[i]);
  return 0;
}

static char line[200000];
static uint8_t raw[70000];
static uint8_t first[2][70000];
static size_t firstlen[2];

static int replay_case(struct tunctl_vti *rx, int d) {
  memcpy(pkt, first[d], firstlen[d]);
  uint8_t *inner;
  size_t ilen;
  int r = tunctl_vti_decap(rx, pkt, firstlen[d], &inner, &ilen);
  CHECK(r == VRX_ESP + ESP_REPLAY, "got %s", RX(r));
  CHECK(rx->rxdrops[VRX_ESP + ESP_REPLAY] == 1, "replay counter %llu", (unsigned long long)rx->rxdrops[VRX_ESP + ESP_REPLAY]);
  return 0;
}

static void kernel_tests(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(why, sizeof(why), "cannot open %s", path);
    report("kernel fixtures", 1);
    return;
  }
  struct kkeys k = {0};
  struct tunctl_vti rx[2];
  int have = 0, idx = 0;
  char name[160], algname[32] = "";
  for (;;) {
    char *l = fgets(line, sizeof(line), f);
    int isnew = !l || !strncmp(l, "# aes-", 6);
    if (isnew && have) {
      for (int d = 0; d < 2; d++) {
        snprintf(name, sizeof(name), "kernel %s %s: its first packet again is dropped and counted as replay", algname, d ? "b->a" : "a->b");
        report(name, firstlen[d] ? replay_case(&rx[!d], d) : (snprintf(why, sizeof(why), "no packet"), 1));
      }
      for (int d = 0; d < 2; d++) tunctl_vti_free(&rx[d]), firstlen[d] = 0;
      have = 0;
    }
    if (!l) break;
    if (isnew) {
      char ko[80], ki[80], ao[80], ai[80];
      unsigned so, si;
      if (sscanf(l, "# %31s spi-out %x key-out %79s auth-out %79s spi-in %x key-in %79s auth-in %79s", algname, &so, ko, ao, &si, ki, ai) != 7) continue;
      memset(&k, 0, sizeof(k));
      k.alg = tunctl_esp_alg_from_name(algname);
      k.spi[0] = so, k.spi[1] = si;
      k.klen = unhex(ko, k.key[0], 36);
      unhex(ki, k.key[1], 36);
      unhex(ao, k.auth[0], 32);
      unhex(ai, k.auth[1], 32);
      if (make_vti(&rx[0], &k, 0, 0) < 0 || make_vti(&rx[1], &k, 1, 0) < 0) {
        report("fixture SAs", 1);
        break;
      }
      have = 1;
      idx = 0;
      continue;
    }
    char a[32], dir[8];
    int off;
    if (!have || sscanf(l, "%31s %7s %n", a, dir, &off) != 2) continue;
    size_t n = unhex(l + off, raw, sizeof(raw));
    int d = !strcmp(dir, "in"); /* out: a->b (kernel side a), in: b->a */
    if (!firstlen[d]) memcpy(first[d], raw, n), firstlen[d] = n;
    snprintf(name, sizeof(name), "kernel %s %s packet %d (%zu bytes): received, and sent again byte for byte", algname, d ? "b->a" : "a->b", ++idx, n);
    report(name, kernel_case(&k, &rx[!d], raw, n, d));
  }
  fclose(f);
}

/* ---- synthetic cases ---- */
static struct kkeys K(int alg) {
  struct kkeys k = {.alg = alg, .spi = {0x1001, 0x2001}};
  int gcm = alg <= TUNCTL_ESP_AES_GCM_256;
  size_t aes = alg == TUNCTL_ESP_AES_GCM_128 || alg == TUNCTL_ESP_AES_CBC_128_HMAC_SHA256 ? 16 : 32;
  k.klen = aes + (gcm ? 4 : 0);
  for (size_t i = 0; i < 36; i++) k.key[0][i] = (uint8_t)i, k.key[1][i] = (uint8_t)(0xa0 + i);
  for (size_t i = 0; i < 32; i++) k.auth[0][i] = (uint8_t)(0x40 + i), k.auth[1][i] = (uint8_t)(0xc0 + i);
  return k;
}

/* an inner IPv4 (or IPv6) packet of len bytes from 10.0.0.1 to 10.0.0.2 (2001:db8::1 → ::2), tos, DF */
static size_t inner_packet(uint8_t *p, size_t len, int v6, uint8_t tos, int df) {
  memset(p, 0, len);
  if (v6) {
    p[0] = (uint8_t)(0x60 | tos >> 4);
    p[1] = (uint8_t)(tos << 4);
    p[4] = (uint8_t)((len - 40) >> 8), p[5] = (uint8_t)(len - 40);
    p[6] = 59, p[7] = 64;
    p[8] = 0x20, p[9] = 0x01, p[10] = 0x0d, p[11] = 0xb8, p[23] = 1;
    p[24] = 0x20, p[25] = 0x01, p[26] = 0x0d, p[27] = 0xb8, p[39] = 2;
  } else {
    p[0] = 0x45, p[1] = tos, p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
    p[6] = df ? 0x40 : 0, p[8] = 64, p[9] = 17;
    p[12] = 10, p[15] = 1, p[16] = 10, p[19] = 2;
    uint16_t c = tunctl_csum(p, 20, 0);
    p[10] = (uint8_t)(c >> 8), p[11] = (uint8_t)c;
  }
  for (size_t i = v6 ? 40 : 20; i < len; i++) p[i] = (uint8_t)(i * 7);
  return len;
}

struct pair { struct tunctl_vti a, b; struct kkeys k; };

static int pair_new(struct pair *p, int alg) {
  p->k = K(alg);
  if (make_vti(&p->a, &p->k, 0, 0) < 0) return -1;
  if (make_vti(&p->b, &p->k, 1, 0) < 0) return -1;
  return 0;
}
static void pair_free(struct pair *p) {
  tunctl_vti_free(&p->a);
  tunctl_vti_free(&p->b);
}

/* a sends one inner packet; the outer packet is copied to pkt */
static int send_one(struct tunctl_vti *v, size_t len, int v6, uint8_t tos, int df, size_t *olen) {
  inner_packet(buf + TUNCTL_VTI_HEADROOM, len, v6, tos, df);
  uint8_t *out;
  int t = tunctl_vti_encap(v, buf, sizeof(buf), len, &out, olen, icmp);
  if (t != VTI_TX_SEND) return t;
  memcpy(pkt, out, *olen);
  return VTI_TX_SEND;
}

static int roundtrip_case(int alg, int v6) {
  struct pair p;
  CHECK(pair_new(&p, alg) == 0, "setting up the SAs failed");
  int fail = 0;
  for (size_t len = v6 ? 40 : 20; len <= 1400 && !fail; len += 97) {
    uint8_t want[1500];
    inner_packet(want, len, v6, 0, 1);
    size_t olen;
    int t = send_one(&p.a, len, v6, 0, 1, &olen);
    if (t != VTI_TX_SEND) { snprintf(why, sizeof(why), "encap %zu: %d", len, t); fail = 1; break; }
    if (pkt[9] != 50 || !(pkt[6] & 0x40) || pkt[8] != 64) { snprintf(why, sizeof(why), "outer header"); fail = 1; break; }
    uint8_t *inner;
    size_t ilen;
    int r = tunctl_vti_decap(&p.b, pkt, olen, &inner, &ilen);
    if (r != VRX_OK || ilen != len || memcmp(inner, want, len)) { snprintf(why, sizeof(why), "decap %zu: %s", len, RX(r)); fail = 1; }
  }
  if (!fail && (p.b.rx_packets == 0 || p.a.tx_packets != p.b.rx_packets)) snprintf(why, sizeof(why), "counters"), fail = 1;
  pair_free(&p);
  return fail;
}

/* tampering: each altered packet is dropped with its reason and counted; the untouched one still passes after */
static int tamper_case(int alg, int where, int expect) {
  struct pair p;
  CHECK(pair_new(&p, alg) == 0, "setting up the SAs failed");
  size_t olen;
  int t = send_one(&p.a, 200, 0, 0, 1, &olen);
  uint8_t good[2048];
  memcpy(good, pkt, olen);
  int fail = 0;
  if (t != VTI_TX_SEND) snprintf(why, sizeof(why), "encap"), fail = 1;
  if (!fail) {
    size_t at = where == 0 ? 20 + 3 /* SPI */ : where == 1 ? olen - 40 /* payload */ : where == 2 ? olen - 1 /* ICV */
              : where == 3 ? 16 /* outer source */ : 9 /* protocol */;
    pkt[at] ^= where == 3 ? 0x08 : 0x01;
    uint8_t *inner;
    size_t ilen;
    int r = tunctl_vti_decap(&p.b, pkt, olen, &inner, &ilen);
    if (where == 3) {
      /* the destination no longer ours: another tunnel's packet, not a drop */
      if (r != TUNCTL_VTI_OTHER || p.b.rx_other != 1) snprintf(why, sizeof(why), "got %s", RX(r)), fail = 1;
    } else if (r != expect || p.b.rxdrops[expect] != 1) {
      snprintf(why, sizeof(why), "got %s, expected %s (counter %llu)", RX(r), RX(expect), (unsigned long long)p.b.rxdrops[expect]);
      fail = 1;
    }
    memcpy(pkt, good, olen);
    if (!fail && (r = tunctl_vti_decap(&p.b, pkt, olen, &inner, &ilen)) != VRX_OK)
      snprintf(why, sizeof(why), "the untouched packet after it: %s", RX(r)), fail = 1;
    memcpy(pkt, good, olen);
    if (!fail && (r = tunctl_vti_decap(&p.b, pkt, olen, &inner, &ilen)) != VRX_ESP + ESP_REPLAY)
      snprintf(why, sizeof(why), "the untouched packet again: %s, expected replay", RX(r)), fail = 1;
  }
  pair_free(&p);
  return fail;
}

static int mtu_case(void) {
  struct pair p;
  CHECK(pair_new(&p, TUNCTL_ESP_AES_GCM_128) == 0, "setting up the SAs failed");
  int mtu = tunctl_vti_xfrm_mtu(&p.a), fail = 0;
  /* esp4_get_mtu(1500), gcm: ((1500 - 20 - 8 - 8 - 16) & ~3) - 2 = 1446 */
  if (mtu != 1446) snprintf(why, sizeof(why), "xfrm mtu %d", mtu), fail = 1;
  size_t olen;
  if (!fail && send_one(&p.a, 1446, 0, 0, 1, &olen) != VTI_TX_SEND) snprintf(why, sizeof(why), "1446 bytes not sent"), fail = 1;
  if (!fail && olen != 1500) snprintf(why, sizeof(why), "1446 bytes → %zu, expected 1500", olen), fail = 1;
  inner_packet(buf + TUNCTL_VTI_HEADROOM, 1447, 0, 0, 1);
  uint8_t *out;
  int t = fail ? 0 : tunctl_vti_encap(&p.a, buf, sizeof(buf), 1447, &out, &olen, icmp);
  if (!fail && (t != VTI_TX_ICMP || out[20] != 3 || out[21] != 4 || (out[26] << 8 | out[27]) != 1446))
    snprintf(why, sizeof(why), "1447 bytes with DF: %d, expected ICMP frag needed mtu 1446", t), fail = 1;
  if (!fail && send_one(&p.a, 1447, 0, 0, 0, &olen) != VTI_TX_SEND) snprintf(why, sizeof(why), "1447 bytes without DF not sent"), fail = 1;
  if (!fail && (pkt[6] & 0x40)) snprintf(why, sizeof(why), "DF set on the outer packet of an inner packet without DF"), fail = 1;
  if (!fail && p.a.icmp_sent != 1) snprintf(why, sizeof(why), "icmp counter"), fail = 1;
  pair_free(&p);
  return fail;
}

static int tos_case(void) {
  struct pair p;
  CHECK(pair_new(&p, TUNCTL_ESP_AES_CBC_256_HMAC_SHA256) == 0, "setting up the SAs failed");
  size_t olen;
  int fail = 0;
  /* inner DSCP copied, ECN CE becomes ECT(0) outside (RFC 6040 normal mode) */
  if (send_one(&p.a, 100, 0, 0xbb, 1, &olen) != VTI_TX_SEND || pkt[1] != 0xba) snprintf(why, sizeof(why), "outer tos %02x for inner bb", pkt[1]), fail = 1;
  /* an outer CE on an ECT(0) inner packet marks it CE */
  if (!fail && send_one(&p.a, 100, 0, 0x02, 1, &olen) == VTI_TX_SEND) {
    pkt[1] |= 3;
    pkt[10] = pkt[11] = 0; /* the receive path does not re-check the outer checksum (ip_rcv did) */
    uint8_t *inner;
    size_t ilen;
    int r = tunctl_vti_decap(&p.b, pkt, olen, &inner, &ilen);
    if (r != VRX_OK || (inner[1] & 3) != 3) snprintf(why, sizeof(why), "outer CE: %s, inner ecn %d", RX(r), inner ? inner[1] & 3 : -1), fail = 1;
    else if (tunctl_csum(inner, 20, 0) != 0) snprintf(why, sizeof(why), "inner checksum after CE"), fail = 1;
  }
  /* IPv6 inside: next header 41, DF always set */
  if (!fail && (send_one(&p.a, 200, 1, 0, 0, &olen) != VTI_TX_SEND || !(pkt[6] & 0x40))) snprintf(why, sizeof(why), "IPv6 inner: DF"), fail = 1;
  pair_free(&p);
  return fail;
}

static int seq_case(void) {
  struct pair p;
  CHECK(pair_new(&p, TUNCTL_ESP_AES_GCM_256) == 0, "setting up the SAs failed");
  size_t olen;
  int fail = 0;
  /* a reservation: packets beyond it are refused until it is raised */
  p.a.seq_limit = 2;
  if (send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_SEND || send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_SEND)
    snprintf(why, sizeof(why), "within the reservation"), fail = 1;
  if (!fail && send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_DROP) snprintf(why, sizeof(why), "beyond the reservation: sent"), fail = 1;
  if (!fail && p.a.txdrops[VTX_SEQ_RESERVED] != 1) snprintf(why, sizeof(why), "seq_reserved counter"), fail = 1;
  p.a.seq_limit = 10;
  if (!fail && (send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_SEND || (pkt[24] << 24 | pkt[25] << 16 | pkt[26] << 8 | pkt[27]) != 3))
    snprintf(why, sizeof(why), "after raising the limit: seq 3 expected"), fail = 1;
  pair_free(&p);
  /* resuming after a restart: the first packet carries resume + 1 and the peer accepts it */
  if (!fail && pair_new(&p, TUNCTL_ESP_AES_GCM_256) == 0) {
    tunctl_vti_free(&p.a);
    make_vti(&p.a, &p.k, 0, 1u << 22);
    if (send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_SEND || (pkt[24] << 24 | pkt[25] << 16 | pkt[26] << 8 | pkt[27]) != (1u << 22) + 1)
      snprintf(why, sizeof(why), "resumed sequence number"), fail = 1;
    uint8_t *inner;
    size_t ilen;
    if (!fail && tunctl_vti_decap(&p.b, pkt, olen, &inner, &ilen) != VRX_OK) snprintf(why, sizeof(why), "peer refused the resumed packet"), fail = 1;
    /* the last sequence number: 2^32 - 1 is sent, then the SA stops (never wraps) */
    tunctl_vti_free(&p.a);
    make_vti(&p.a, &p.k, 0, 0xfffffffeu);
    if (!fail && send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_SEND) snprintf(why, sizeof(why), "seq 2^32-1 not sent"), fail = 1;
    if (!fail && (send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_DROP || p.a.txdrops[VTX_SEQ_EXHAUSTED] != 1))
      snprintf(why, sizeof(why), "after 2^32-1: not stopped"), fail = 1;
    /* the same with the engine's reservation ending at 2^32 - 1 too: the drop says why (exhausted, not reserved),
     * as show and the stats do */
    tunctl_vti_free(&p.a);
    make_vti(&p.a, &p.k, 0, 0xfffffffeu);
    p.a.seq_limit = 0xffffffffu;
    if (!fail && send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_SEND) snprintf(why, sizeof(why), "limit 2^32-1: seq 2^32-1 not sent"), fail = 1;
    if (!fail && (send_one(&p.a, 100, 0, 0, 1, &olen) != VTI_TX_DROP || p.a.txdrops[VTX_SEQ_EXHAUSTED] != 1 ||
                  p.a.txdrops[VTX_SEQ_RESERVED] != 0))
      snprintf(why, sizeof(why), "limit 2^32-1: counted as seq_reserved (%llu), not seq_exhausted (%llu)",
               (unsigned long long)p.a.txdrops[VTX_SEQ_RESERVED], (unsigned long long)p.a.txdrops[VTX_SEQ_EXHAUSTED]), fail = 1;
    pair_free(&p);
  }
  return fail;
}

static int nosa_case(void) {
  struct tunctl_vti v;
  tunctl_vti_init(&v, ip4(A_ADDR), ip4(B_ADDR), 1, 1, 0x2001, NULL, 0);
  size_t olen;
  int t = send_one(&v, 100, 0, 0, 1, &olen);
  CHECK(t == VTI_TX_DROP && v.txdrops[VTX_NO_STATE] == 1, "send without SA: %d", t);
  struct pair p;
  CHECK(pair_new(&p, TUNCTL_ESP_AES_GCM_128) == 0, "setting up the SAs failed");
  send_one(&p.b, 100, 0, 0, 1, &olen);
  uint8_t *inner;
  size_t ilen;
  int r = tunctl_vti_decap(&v, pkt, olen, &inner, &ilen);
  pair_free(&p);
  CHECK(r == VRX_NO_STATE && v.rxdrops[VRX_NO_STATE] == 1, "receive without SA: %s", RX(r));
  return 0;
}

static int malformed_case(void) {
  struct pair p;
  CHECK(pair_new(&p, TUNCTL_ESP_AES_GCM_128) == 0, "setting up the SAs failed");
  size_t olen;
  send_one(&p.a, 100, 0, 0, 1, &olen);
  uint8_t good[256];
  memcpy(good, pkt, olen);
  uint8_t *inner;
  size_t ilen;
  int fail = 0;
  struct { const char *what; size_t at; uint8_t val; size_t len; int expect; } cases[] = {
    {"a fragment", 7, 0x10, 0, VRX_MALFORMED},
    {"total length beyond the packet", 2, 0xff, 0, VRX_MALFORMED},
    {"ihl 4", 0, 0x44, 0, VRX_MALFORMED},
    {"ESP header cut", 0, 0x45, 26, VRX_ESP + ESP_TRUNCATED},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && !fail; i++) {
    memcpy(pkt, good, olen);
    pkt[cases[i].at] = cases[i].val;
    size_t n = olen;
    if (cases[i].len) n = cases[i].len, pkt[2] = 0, pkt[3] = (uint8_t)n;
    int r = tunctl_vti_decap(&p.b, pkt, n, &inner, &ilen);
    if (r != cases[i].expect) snprintf(why, sizeof(why), "%s: %s", cases[i].what, RX(r)), fail = 1;
  }
  memcpy(buf + TUNCTL_VTI_HEADROOM, "\x50\x00", 2);
  uint8_t *out;
  if (!fail && tunctl_vti_encap(&p.a, buf, sizeof(buf), 40, &out, &olen, icmp) != VTI_TX_DROP) snprintf(why, sizeof(why), "version 5 sent"), fail = 1;
  pair_free(&p);
  return fail;
}

int main(int argc, char **argv) {
  static const int algs[] = {TUNCTL_ESP_AES_GCM_128, TUNCTL_ESP_AES_GCM_256, TUNCTL_ESP_AES_CBC_128_HMAC_SHA256, TUNCTL_ESP_AES_CBC_256_HMAC_SHA256};
  char name[160];
  for (int i = 0; i < 4; i++)
    for (int v6 = 0; v6 < 2; v6++) {
      snprintf(name, sizeof(name), "%s: IPv%d inside, 20..1400 bytes, a → b", tunctl_esp_alg_name(algs[i]), v6 ? 6 : 4);
      report(name, roundtrip_case(algs[i], v6));
    }
  static const char *where[] = {"the SPI", "a payload bit", "an ICV bit", "the outer destination", "the outer protocol"};
  for (int i = 0; i < 4; i += 3)
    for (int w = 0; w < 5; w++) {
      int expect = w == 0 ? VRX_NO_STATE : w == 4 ? VRX_MALFORMED : VRX_ESP + ESP_BAD_ICV;
      snprintf(name, sizeof(name), "%s: flipping %s → %s (then the intact packet passes once, and is a replay after)", tunctl_esp_alg_name(algs[i]), where[w], w == 3 ? "another tunnel's" : RX(expect));
      report(name, tamper_case(algs[i], w, expect));
    }
  report("xfrm MTU: esp4_get_mtu(1500) = 1446 for gcm; bigger DF packet → ICMP frag needed, without DF → sent", mtu_case());
  report("outer tos/ECN from the inner packet; outer CE marks an ECT inner packet CE; IPv6 inside sets DF", tos_case());
  report("sequence numbers: reservation limit, resume after restart, stop at 2^32 - 1", seq_case());
  report("no SA: sending and receiving are dropped as no_state", nosa_case());
  report("malformed outer packets and a bad inner version are dropped", malformed_case());
  if (argc > 1) kernel_tests(argv[1]);
  printf("%d cases, %d failed\n", ncases, nfailed);
  return nfailed ? 1 : 0;
}
