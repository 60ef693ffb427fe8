/* Tests of the ESP codec (esp.c), run by test/unit/userspace/esp.test.ts:
 *   cc -O1 -pthread -Inative -o esp_test test/unit/userspace/c/esp_test.c native/esp.c -lcrypto
 *   ./esp_test test/fixtures/esp/kernel-esp.txt
 * Prints one line per case, `ok NAME` or `not ok NAME<tab>WHY`, then `done CASES FAILED`. Exit status 1 if a case failed.
 * Interop: every packet the Linux kernel sent in test/fixtures/esp/kernel-esp.txt is decapsulated, and encapsulated
 * again (same sequence number and IV) to the same bytes, outer IPv4 header included. */
#include "esp.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *R(int r) { return r >= 0 && r < ESP__COUNT ? tunctl_esp_result_names[r] : "?"; }

/* ---- keys and SAs ---- */
static const uint8_t K32[32] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
                                0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static const uint8_t KA[32] = {0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
                               0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f};

static int is_gcm(int alg) { return alg == TUNCTL_ESP_AES_GCM_128 || alg == TUNCTL_ESP_AES_GCM_256; }
static size_t aes_len(int alg) { return alg == TUNCTL_ESP_AES_GCM_128 || alg == TUNCTL_ESP_AES_CBC_128_HMAC_SHA256 ? 16 : 32; }

/* loopback SA: out and in share SPI and keys, so decap(encap(x)) works */
static struct tunctl_esp_sa *mk(int alg, unsigned window, uint32_t spi, const uint8_t *key, const uint8_t *auth) {
  uint8_t k[36];
  size_t kl = aes_len(alg);
  memcpy(k, key, kl);
  if (is_gcm(alg)) memcpy(k + kl, "\xa0\xa1\xa2\xa3", 4), kl += 4;
  struct tunctl_esp_params p = {.alg = alg, .spi_out = spi, .spi_in = spi, .key_out = k, .key_in = k,
                                .key_out_len = kl, .key_in_len = kl, .replay_window = window};
  if (!is_gcm(alg)) p.auth_out = p.auth_in = auth, p.auth_out_len = p.auth_in_len = 32;
  const char *err;
  struct tunctl_esp_sa *sa = tunctl_esp_sa_new(&p, &err);
  if (!sa) fprintf(stderr, "sa_new: %s\n", err);
  return sa;
}
static struct tunctl_esp_sa *mk_std(int alg, unsigned window) { return mk(alg, window, 0x1234, K32, KA); }

static const int ALGS[] = {TUNCTL_ESP_AES_GCM_128, TUNCTL_ESP_AES_GCM_256, TUNCTL_ESP_AES_CBC_128_HMAC_SHA256,
                           TUNCTL_ESP_AES_CBC_256_HMAC_SHA256};

/* an inner packet: IPv4 (UDP) or IPv6 (UDP) of total length len */
static size_t mkinner(uint8_t *b, int v6, size_t len, unsigned seed) {
  memset(b, 0, len);
  for (size_t i = 0; i < len; i++) b[i] = (uint8_t)(i * 31 + seed);
  if (v6) {
    b[0] = 0x60, b[1] = 0, b[2] = 0, b[3] = 0;
    b[4] = (uint8_t)((len - 40) >> 8), b[5] = (uint8_t)(len - 40), b[6] = 17, b[7] = 64;
  } else {
    b[0] = 0x45, b[1] = 0, b[2] = (uint8_t)(len >> 8), b[3] = (uint8_t)len, b[6] = 0x40, b[7] = 0, b[8] = 64, b[9] = 17;
  }
  return len;
}

static uint8_t pkt[70000], out[70000], back[70000];

/* ---- kernel interop ---- */
struct kkeys {
  char alg[16];
  uint32_t spi[2];       /* out (a->b), in (b->a) */
  uint8_t key[2][36], auth[2][32];
  size_t klen;
};

static int kernel_case(const struct kkeys *kk, int alg, const uint8_t *ip, size_t iplen, struct tunctl_esp_sa *rxsa[2],
                       int dir) {
  CHECK(iplen > 20 + 8 && ip[0] == 0x45 && ip[9] == 50, "not an IPv4 ESP packet");
  const uint8_t *esp = ip + 20;
  size_t elen = iplen - 20;
  CHECK(((size_t)ip[2] << 8 | ip[3]) == iplen, "outer length");
  uint32_t spi = (uint32_t)esp[0] << 24 | esp[1] << 16 | esp[2] << 8 | esp[3];
  CHECK(spi == kk->spi[dir], "SPI %#x, expected %#x", spi, kk->spi[dir]);
  size_t n;
  int nh;
  int r = tunctl_esp_decap(rxsa[dir], esp, elen, out, sizeof(out), &n, &nh);
  CHECK(r == ESP_OK, "decap of the kernel's packet: %s", R(r));
  int v6 = (out[0] >> 4) == 6;
  CHECK(nh == (v6 ? 41 : 4), "next header %d for IPv%d", nh, v6 ? 6 : 4);
  /* the inner packet is the ping: ICMP echo (8/0) or ICMPv6 echo (128/129) between the inner addresses */
  if (v6) CHECK(out[6] == 58 && (out[40] == 128 || out[40] == 129) && out[23] == (dir ? 2 : 1), "not the ICMPv6 echo");
  else CHECK(out[9] == 1 && (out[20] == 8 || out[20] == 0) && out[15] == (dir ? 2 : 1) && out[19] == (dir ? 1 : 2),
             "not the ICMP echo");
  /* encapsulate it again with the kernel's sequence number and IV: the same bytes */
  struct tunctl_esp_params p = {.alg = alg, .spi_out = spi, .spi_in = spi, .key_out = kk->key[dir],
                                .key_in = kk->key[dir], .key_out_len = kk->klen, .key_in_len = kk->klen};
  if (!is_gcm(alg)) p.auth_out = p.auth_in = kk->auth[dir], p.auth_out_len = p.auth_in_len = 32;
  struct tunctl_esp_sa *tx = tunctl_esp_sa_new(&p, NULL);
  CHECK(tx, "sa");
  uint32_t seq = (uint32_t)esp[4] << 24 | esp[5] << 16 | esp[6] << 8 | esp[7];
  tunctl_esp_set_tx_seq(tx, seq - 1);
  tunctl_esp_test_next_iv(tx, esp + 8);
  size_t olen;
  r = tunctl_esp_encap(tx, out, n, back, sizeof(back), &olen);
  tunctl_esp_sa_free(tx);
  CHECK(r == ESP_OK, "encap: %s", R(r));
  CHECK(olen == elen, "encap gave %zu bytes, the kernel %zu", olen, elen);
  for (size_t i = 0; i < elen; i++) CHECK(back[i] == esp[i], "byte %zu differs: %02x, kernel %02x", i, back[i], esp[i]);
  /* the outer header, as the kernel's xfrm tunnel mode built it (id: the kernel's choice) */
  struct tunctl_esp_outer oh = {.ttl = 0, .id = (uint16_t)(ip[4] << 8 | ip[5])};
  memcpy(&oh.saddr, ip + 12, 4);
  memcpy(&oh.daddr, ip + 16, 4);
  uint8_t hdr[20];
  CHECK(tunctl_esp_outer_ipv4(hdr, olen, out, &oh) == 20, "outer header");
  for (int i = 0; i < 20; i++) CHECK(hdr[i] == ip[i], "outer header byte %d: %02x, kernel %02x", i, hdr[i], ip[i]);
  return 0;
}

static void kernel_tests(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(why, sizeof(why), "cannot open %s", path);
    report("kernel fixtures", 1);
    return;
  }
  static char line[200000];
  struct kkeys kk = {0};
  struct tunctl_esp_sa *rxsa[2] = {0};
  uint8_t first[2][2048];
  size_t firstlen[2] = {0};
  int alg = 0, idx = 0;
  char name[128];
  for (;;) {
    char *l = fgets(line, sizeof(line), f);
    int isnew = !l || !strncmp(l, "# aes-", 6);
    if (isnew && alg) {
      /* end of an algorithm's packets: replaying the first packet of each direction is refused */
      for (int d = 0; d < 2; d++) {
        snprintf(name, sizeof(name), "kernel %s %s: replaying its first packet is dropped as replay", kk.alg,
                 d ? "in" : "out");
        size_t n;
        int nh, r = firstlen[d] ? tunctl_esp_decap(rxsa[d], first[d] + 20, firstlen[d] - 20, out, sizeof(out), &n, &nh) : -1;
        snprintf(why, sizeof(why), "got %s", r < 0 ? "no packet" : R(r));
        report(name, r != ESP_REPLAY);
        tunctl_esp_sa_free(rxsa[d]);
        rxsa[d] = NULL;
        firstlen[d] = 0;
      }
      alg = 0;
    }
    if (!l) break;
    if (isnew) {
      char ko[80], ao[80], ki[80], ai[80];
      unsigned so, si;
      if (sscanf(l, "# %15s spi-out %x key-out %79s auth-out %79s spi-in %x key-in %79s auth-in %79s", kk.alg, &so, ko,
                 ao, &si, ki, ai) != 7)
        continue;
      alg = tunctl_esp_alg_from_name(kk.alg);
      kk.spi[0] = so, kk.spi[1] = si;
      kk.klen = unhex(ko, kk.key[0], 36);
      unhex(ki, kk.key[1], 36);
      unhex(ao, kk.auth[0], 32);
      unhex(ai, kk.auth[1], 32);
      for (int d = 0; d < 2; d++) {
        /* the receiving SA for direction d: in = the kernel's keys for it, window 32 as the kernel's */
        struct tunctl_esp_params p = {.alg = alg, .spi_out = kk.spi[d], .spi_in = kk.spi[d], .key_out = kk.key[d],
                                      .key_in = kk.key[d], .key_out_len = kk.klen, .key_in_len = kk.klen,
                                      .replay_window = 32};
        if (!is_gcm(alg)) p.auth_out = p.auth_in = kk.auth[d], p.auth_out_len = p.auth_in_len = 32;
        rxsa[d] = tunctl_esp_sa_new(&p, NULL);
      }
      idx = 0;
      continue;
    }
    char a[16], d[8];
    static char hex[140000];
    if (!alg || sscanf(l, "%15s %7s %139999s", a, d, hex) != 3) continue;
    int dir = !strcmp(d, "in");
    size_t iplen = unhex(hex, pkt, sizeof(pkt));
    idx++;
    snprintf(name, sizeof(name), "kernel %s %s packet %d (%zu bytes): decap, then encap to the same bytes and outer header",
             kk.alg, d, idx, iplen);
    if (!firstlen[dir] && iplen <= sizeof(first[dir])) memcpy(first[dir], pkt, iplen), firstlen[dir] = iplen;
    report(name, !rxsa[dir] ? (snprintf(why, sizeof(why), "no SA"), 1) : kernel_case(&kk, alg, pkt, iplen, rxsa, dir));
  }
  fclose(f);
}

/* ---- published vectors: the Linux kernel's crypto/testmgr.h rfc4106(gcm(aes)) encryption vectors ----
 * key fe ff e9 92 86 65 73 1c 6d 6a 8f 94 67 30 83 08 + salt 00000000, assoc (= SPI || seq) 0101010101010101 */
static int testmgr_case(const uint8_t *iv, const uint8_t *pt, size_t ptlen, const char *expect_hex) {
  static const uint8_t key[20] = {0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c, 0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08, 0, 0, 0, 0};
  uint8_t expect[256];
  size_t elen = unhex(expect_hex, expect, sizeof(expect));
  struct tunctl_esp_params p = {.alg = TUNCTL_ESP_AES_GCM_128, .spi_out = 0x01010101, .spi_in = 0x01010101,
                                .key_out = key, .key_in = key, .key_out_len = 20, .key_in_len = 20, .replay_window = 32};
  struct tunctl_esp_sa *sa = tunctl_esp_sa_new(&p, NULL);
  CHECK(sa, "sa");
  tunctl_esp_set_tx_seq(sa, 0x01010100);
  tunctl_esp_test_next_iv(sa, iv);
  size_t olen, n;
  int nh, r = tunctl_esp_test_seal(sa, pt, ptlen, out, sizeof(out), &olen);
  int ok = r == ESP_OK && olen == 16 + elen && !memcmp(out + 16, expect, elen) && !memcmp(out, "\1\1\1\1\1\1\1\1", 8) &&
           !memcmp(out + 8, iv, 8);
  /* decap authenticates it (and then refuses its content: these payloads are no ESP trailers) */
  int r2 = tunctl_esp_decap(sa, out, olen, back, sizeof(back), &n, &nh);
  tunctl_esp_sa_free(sa);
  CHECK(r == ESP_OK, "seal: %s", R(r));
  CHECK(ok, "ciphertext || ICV differs from testmgr.h");
  CHECK(r2 != ESP_BAD_ICV && r2 != ESP_TRUNCATED && r2 != ESP_REPLAY, "decap: %s", R(r2));
  return 0;
}

static void testmgr_tests(void) {
  uint8_t ones[64];
  memset(ones, 1, sizeof(ones));
  static const uint8_t iv0[8] = {0}, iv1[8] = {0, 0, 0, 0, 0, 0, 0, 1};
  report("testmgr.h rfc4106(gcm(aes)) vector: 16 x 01, IV 0",
         testmgr_case(iv0, ones, 16, "4BB1B5E3257170DE7FC99CA51419F2AC9092B7E35FA39A637ED71FD8D37C4BF5"));
  report("testmgr.h rfc4106(gcm(aes)) vector: 16 x 01, IV 1",
         testmgr_case(iv1, ones, 16, "C10C8A430E8E351989B0C4BDC4B7D7296450F93213FB7461F4ED52D3C510553C"));
  report("testmgr.h rfc4106(gcm(aes)) vector: 64 x 01, IV 1",
         testmgr_case(iv1, ones, 64,
                      "C10C8A430E8E351989B0C4BDC4B7D7299814A1423780FD90681201A89189B9835B1177129BFF2489945F1812BA270939"
                      "99967642151CCDCBDCD3DA6573AF80CDD2B6C24A76C29285BDCF62985814E5BD"));
}

/* ---- round trips ---- */
static int roundtrip(int alg, int v6, int inplace) {
  struct tunctl_esp_sa *sa = mk_std(alg, 64);
  CHECK(sa, "sa");
  static const size_t sizes[] = {20, 21, 22, 23, 24, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 63, 64, 100, 576, 1280,
                                 1400, 1438, 1446, 9000, 65535 - 20 - 57};
  size_t hl = tunctl_esp_header_len(sa);
  uint32_t seq = 0;
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t len = sizes[i];
    if (v6 && len < 40) continue;
    seq++;
    uint8_t *in = inplace ? out + hl : pkt;
    mkinner(in, v6, len, (unsigned)i);
    memcpy(back, in, len);
    size_t olen, n;
    int nh, r = tunctl_esp_encap(sa, in, len, out, sizeof(out), &olen);
    CHECK(r == ESP_OK, "encap %zu: %s", len, R(r));
    CHECK(olen == tunctl_esp_encap_len(sa, len), "length");
    CHECK((olen - hl - 16) % (is_gcm(alg) ? 4 : 16) == 0, "alignment");
    size_t padlen = olen - hl - 16 - 2 - len;
    CHECK(padlen < (is_gcm(alg) ? 4u : 16u), "pad length %zu", padlen);
    CHECK(((uint32_t)out[4] << 24 | out[5] << 16 | out[6] << 8 | out[7]) == seq, "sequence number");
    CHECK(memcmp(out + hl, back, len < 64 ? len : 64), "payload not encrypted");
    uint8_t *dst = inplace ? out + hl : pkt;
    r = tunctl_esp_decap(sa, out, olen, dst, sizeof(out) - (inplace ? hl : 0), &n, &nh);
    CHECK(r == ESP_OK, "decap %zu: %s", len, R(r));
    CHECK(n == len && !memcmp(dst, back, len), "inner packet of %zu bytes differs", len);
    CHECK(nh == (v6 ? 41 : 4), "next header %d", nh);
  }
  struct tunctl_esp_stats st;
  tunctl_esp_stats(sa, &st);
  tunctl_esp_sa_free(sa);
  CHECK(st.tx_packets == st.rx_packets && st.tx_packets >= 19 && st.tx_bytes == st.rx_bytes, "stats");
  return 0;
}

/* ---- tampering ---- */
static int tamper(int alg, const char *what, int expect) {
  struct tunctl_esp_sa *sa = mk_std(alg, 32);
  CHECK(sa, "sa");
  size_t len = mkinner(pkt, 0, 100, 7), olen = 0, n;
  int nh, r = -1;
  for (int i = 0; i < 3; i++) r = tunctl_esp_encap(sa, pkt, len, out, sizeof(out), &olen); /* seq 3 */
  CHECK(r == ESP_OK, "encap");
  size_t hl = tunctl_esp_header_len(sa);
  if (!strcmp(what, "payload")) out[hl + 5] ^= 0x10;
  else if (!strcmp(what, "last payload byte")) out[olen - 17] ^= 0x01;
  else if (!strcmp(what, "ICV")) out[olen - 1] ^= 0x80;
  else if (!strcmp(what, "SPI")) out[2] ^= 0x01;
  else if (!strcmp(what, "sequence number")) out[7] ^= 0x04; /* 3 -> 7: in the window, unseen */
  else if (!strcmp(what, "IV")) out[9] ^= 0x01;
  else if (!strcmp(what, "truncated")) olen -= 1;
  else if (!strcmp(what, "header only")) olen = 8;
  else if (!strcmp(what, "no payload")) olen = hl + 16;
  r = tunctl_esp_decap(sa, out, olen, back, sizeof(back), &n, &nh);
  struct tunctl_esp_stats st;
  tunctl_esp_stats(sa, &st);
  tunctl_esp_sa_free(sa);
  CHECK(r == expect, "got %s, expected %s", R(r), R(expect));
  CHECK(st.rx_drops[expect] == 1 && st.rx_packets == 0, "not counted");
  if (r == ESP_BAD_ICV && alg <= TUNCTL_ESP_AES_GCM_256) {
    for (size_t i = 0; i < olen - hl - 16; i++) CHECK(back[i] == 0, "unauthenticated plaintext left in the buffer");
  }
  return 0;
}

/* a sealed payload with arbitrary content (trailer included) */
static int content(int alg, const char *what, int expect) {
  struct tunctl_esp_sa *sa = mk_std(alg, 32);
  CHECK(sa, "sa");
  int v6 = strstr(what, "IPv6") != NULL;
  size_t ilen = mkinner(pkt, v6, v6 ? 60 : 50, 3), blk = is_gcm(alg) ? 4 : 16;
  size_t n = (ilen + 2 + blk - 1) / blk * blk, pad = n - ilen - 2, expect_len = ilen;
  if (pad < 3) n += blk, pad += blk; /* room for the padding cases */
  uint8_t *t = pkt + ilen;
  for (size_t i = 0; i < pad; i++) t[i] = (uint8_t)(i + 1);
  pkt[n - 2] = (uint8_t)pad;
  pkt[n - 1] = v6 ? 41 : 4;
  if (!strcmp(what, "padding 1,2,4")) t[2] = 4;
  else if (!strcmp(what, "padding 0,2,3")) t[0] = 0;
  else if (!strcmp(what, "pad length beyond the payload")) pkt[n - 2] = (uint8_t)(n - 1);
  else if (!strcmp(what, "pad length 255")) pkt[n - 2] = 255;
  else if (!strcmp(what, "next header 17")) pkt[n - 1] = 17;
  else if (!strcmp(what, "next header 4 with an IPv6 inner packet")) pkt[n - 1] = 4;
  else if (!strcmp(what, "next header 41 with an IPv4 inner packet")) pkt[n - 1] = 41;
  else if (!strcmp(what, "next header 59 (dummy packet)")) pkt[n - 1] = 59;
  else if (!strcmp(what, "IPv4 total length beyond the payload")) pkt[3] = (uint8_t)(ilen + 1);
  else if (!strcmp(what, "IPv4 total length below its header")) pkt[2] = 0, pkt[3] = 19;
  else if (!strcmp(what, "IPv4 ihl 4")) pkt[0] = 0x44;
  else if (!strcmp(what, "IPv6 payload length beyond the payload")) pkt[5] = (uint8_t)(ilen - 40 + 1);
  else if (!strcmp(what, "IPv4 with TFC padding")) pkt[3] = (uint8_t)(ilen - 10), expect_len = ilen - 10;
  else if (!strcmp(what, "IPv6 with TFC padding")) pkt[5] = (uint8_t)(ilen - 40 - 7), expect_len = ilen - 7;
  size_t olen, got;
  int nh, r = tunctl_esp_test_seal(sa, pkt, n, out, sizeof(out), &olen);
  CHECK(r == ESP_OK, "seal: %s", R(r));
  r = tunctl_esp_decap(sa, out, olen, back, sizeof(back), &got, &nh);
  struct tunctl_esp_stats st;
  tunctl_esp_stats(sa, &st);
  tunctl_esp_sa_free(sa);
  CHECK(r == expect, "got %s, expected %s", R(r), R(expect));
  if (expect == ESP_OK) CHECK(got == expect_len && !memcmp(back, pkt, got), "inner length %zu, expected %zu", got, expect_len);
  else CHECK(st.rx_drops[expect] == 1 && st.rx_packets == 0, "not counted");
  CHECK(st.rx_seq == 1, "an authentic packet moves the window even when its content is refused");
  return 0;
}

/* ---- anti-replay ---- */
static int decap_seq(struct tunctl_esp_sa *sa, struct tunctl_esp_sa *tx, uint32_t seq, int corrupt) {
  size_t len = mkinner(pkt, 0, 40, seq), olen, n;
  int nh;
  tx = tx ? tx : sa;
  /* reuse the tx SA at any sequence number: a fresh one per call would change the IV salt, harmless */
  struct tunctl_esp_stats st;
  tunctl_esp_stats(tx, &st);
  uint32_t at = seq ? seq : 1; /* seq 0 cannot be sent: patched in after (so its ICV is wrong too) */
  if (at - 1 < st.tx_seq) return -100; /* caller error */
  tunctl_esp_set_tx_seq(tx, at - 1);
  if (tunctl_esp_encap(tx, pkt, len, out, sizeof(out), &olen) != ESP_OK) return -101;
  if (!seq) memset(out + 4, 0, 4);
  if (corrupt) out[olen - 3] ^= 1;
  return tunctl_esp_decap(sa, out, olen, back, sizeof(back), &n, &nh);
}

/* packets with arbitrary sequence numbers: encapsulated by a separate SA per packet (same keys), so that the
 * sequence numbers may go backwards */
static int rx_at(struct tunctl_esp_sa *rx, int alg, uint32_t seq, int corrupt) {
  struct tunctl_esp_sa *tx = mk_std(alg, 0);
  if (!tx) return -102;
  int r = decap_seq(rx, tx, seq, corrupt);
  tunctl_esp_sa_free(tx);
  return r;
}

#define EXPECT_RX(seq, corrupt, want)                                                                                 \
  do {                                                                                                                \
    int r_ = rx_at(sa, alg, (seq), (corrupt));                                                                        \
    if (r_ != (want)) {                                                                                               \
      tunctl_esp_sa_free(sa);                                                                                         \
      CHECK(0, "seq %u%s: got %s, expected %s", (unsigned)(seq), (corrupt) ? " (bad ICV)" : "", R(r_), R(want));     \
    }                                                                                                                 \
  } while (0)

static int replay_basic(int alg) {
  struct tunctl_esp_sa *sa = mk_std(alg, 32);
  CHECK(sa, "sa");
  EXPECT_RX(1, 0, ESP_OK);
  EXPECT_RX(1, 0, ESP_REPLAY);
  EXPECT_RX(0, 0, ESP_REPLAY);
  EXPECT_RX(100, 0, ESP_OK);
  EXPECT_RX(100, 0, ESP_REPLAY);
  EXPECT_RX(69, 0, ESP_OK);      /* 31 behind: the window's left edge */
  EXPECT_RX(69, 0, ESP_REPLAY);
  EXPECT_RX(68, 0, ESP_TOO_OLD); /* exactly the window size behind */
  EXPECT_RX(2, 0, ESP_TOO_OLD);
  EXPECT_RX(99, 0, ESP_OK);
  EXPECT_RX(101, 0, ESP_OK);
  EXPECT_RX(69, 0, ESP_TOO_OLD); /* the window moved: now 32 behind */
  struct tunctl_esp_stats st;
  tunctl_esp_stats(sa, &st);
  tunctl_esp_sa_free(sa);
  CHECK(st.rx_drops[ESP_REPLAY] == 4 && st.rx_drops[ESP_TOO_OLD] == 3 && st.rx_packets == 5, "counters %llu %llu %llu",
        (unsigned long long)st.rx_drops[ESP_REPLAY], (unsigned long long)st.rx_drops[ESP_TOO_OLD],
        (unsigned long long)st.rx_packets);
  return 0;
}

static int replay_order(int alg) {
  /* the window is checked before the ICV (a replayed forgery is a replay) and updated only after it verified
   * (a forgery far ahead does not move it) */
  struct tunctl_esp_sa *sa = mk_std(alg, 32);
  CHECK(sa, "sa");
  EXPECT_RX(10, 0, ESP_OK);
  EXPECT_RX(10, 1, ESP_REPLAY);
  EXPECT_RX(1000, 1, ESP_BAD_ICV);
  EXPECT_RX(11, 0, ESP_OK); /* would be too old had the forgery moved the window */
  EXPECT_RX(1000, 0, ESP_OK);
  tunctl_esp_sa_free(sa);
  return 0;
}

static int replay_disabled(int alg) {
  struct tunctl_esp_sa *sa = mk_std(alg, 0);
  CHECK(sa, "sa");
  EXPECT_RX(5, 0, ESP_OK);
  EXPECT_RX(5, 0, ESP_OK);
  EXPECT_RX(1, 0, ESP_OK);
  EXPECT_RX(100000, 0, ESP_OK);
  EXPECT_RX(5, 0, ESP_OK);
  EXPECT_RX(5, 1, ESP_BAD_ICV);
  tunctl_esp_sa_free(sa);
  return 0;
}

static int replay_edges(int alg, unsigned w) {
  struct tunctl_esp_sa *sa = mk_std(alg, w);
  CHECK(sa, "sa");
  uint32_t top = 3 * w + 5000;
  EXPECT_RX(top, 0, ESP_OK);
  if (w > 1) {
    EXPECT_RX(top - w + 1, 0, ESP_OK); /* the left edge */
    EXPECT_RX(top - w + 1, 0, ESP_REPLAY);
  }
  EXPECT_RX(top - w, 0, ESP_TOO_OLD);
  EXPECT_RX(top + 1, 0, ESP_OK);
  EXPECT_RX(top - w + 1, 0, ESP_TOO_OLD);
  /* a jump of more than the whole bitmap ring: nothing stale is left */
  uint32_t t2 = top + 100000;
  EXPECT_RX(t2, 0, ESP_OK);
  EXPECT_RX(t2 - 1, 0, w > 1 ? ESP_OK : ESP_TOO_OLD);
  if (w > 2) EXPECT_RX(t2 - w + 1, 0, ESP_OK);
  /* numbers a multiple of 8192 (the ring size) after one received before the jump */
  for (uint32_t s = top + 8192; s < t2; s += 8192)
    if (t2 - s < w && s != t2 - 1 && s != t2 - w + 1) EXPECT_RX(s, 0, ESP_OK);
  EXPECT_RX(0xffffffffu, 0, ESP_OK);
  EXPECT_RX(0xffffffffu, 0, ESP_REPLAY);
  EXPECT_RX(0xffffffffu - w, 0, ESP_TOO_OLD);
  tunctl_esp_sa_free(sa);
  return 0;
}

/* random arrival orders against a model (the set of accepted numbers and the highest one) */
static int replay_model(unsigned w, unsigned seed) {
  int alg = TUNCTL_ESP_AES_GCM_128;
  struct tunctl_esp_sa *sa = mk_std(alg, w);
  CHECK(sa, "sa");
  enum { MAXSEQ = 1 << 24 };
  static uint8_t seen[MAXSEQ / 8];
  memset(seen, 0, sizeof(seen));
  uint32_t top = 0, base = 1;
  srand(seed);
  /* sent in order; delivered with duplicates, delays up to 2w, losses and bursts of losses */
  for (int i = 0; i < 6000; i++) {
    uint32_t seq;
    int k = rand() % 10;
    if (k < 5) seq = base++;
    else if (k < 8) seq = base > 2 * w + 2 ? base - 1 - (uint32_t)rand() % (2 * w + 1) : base;
    else if (k < 9) seq = base > 1 ? base - 1 : base;
    else base += (uint32_t)(rand() % (w + 50)), seq = base++;
    if (seq >= MAXSEQ) break;
    int seen_ = (seen[seq / 8] >> (seq % 8)) & 1;
    int want = seq == 0 ? ESP_REPLAY : seq > top ? ESP_OK : top - seq >= w ? ESP_TOO_OLD : seen_ ? ESP_REPLAY : ESP_OK;
    int r = rx_at(sa, alg, seq, 0);
    if (r != want) {
      tunctl_esp_sa_free(sa);
      CHECK(0, "step %d seq %u (top %u): got %s, expected %s", i, seq, top, R(r), R(want));
    }
    if (r == ESP_OK) {
      seen[seq / 8] |= (uint8_t)(1 << (seq % 8));
      if (seq > top) top = seq;
    }
  }
  tunctl_esp_sa_free(sa);
  return 0;
}

/* ---- sequence numbers and IVs ---- */
static int seq_exhaustion(int alg) {
  struct tunctl_esp_sa *sa = mk_std(alg, 32);
  CHECK(sa, "sa");
  size_t len = mkinner(pkt, 0, 60, 1), olen, n;
  int nh;
  CHECK(tunctl_esp_set_tx_seq(sa, 0xfffffffdu) == 0, "set_tx_seq");
  CHECK(tunctl_esp_set_tx_seq(sa, 5) == -1, "set_tx_seq went backwards");
  int r = tunctl_esp_encap(sa, pkt, len, out, sizeof(out), &olen);
  CHECK(r == ESP_OK && !memcmp(out + 4, "\xff\xff\xff\xfe", 4), "seq 2^32-2");
  r = tunctl_esp_encap(sa, pkt, len, out, sizeof(out), &olen);
  CHECK(r == ESP_OK && !memcmp(out + 4, "\xff\xff\xff\xff", 4), "seq 2^32-1: %s", R(r));
  CHECK(tunctl_esp_decap(sa, out, olen, back, sizeof(back), &n, &nh) == ESP_OK, "decap of seq 2^32-1");
  for (int i = 0; i < 3; i++) {
    r = tunctl_esp_encap(sa, pkt, len, out, sizeof(out), &olen);
    CHECK(r == ESP_SEQ_EXHAUSTED && olen == 0, "after 2^32-1: %s", R(r));
  }
  r = tunctl_esp_test_seal(sa, pkt, 64, out, sizeof(out), &olen);
  CHECK(r == ESP_SEQ_EXHAUSTED, "seal after 2^32-1: %s", R(r));
  struct tunctl_esp_stats st;
  tunctl_esp_stats(sa, &st);
  tunctl_esp_sa_free(sa);
  CHECK(st.tx_errors[ESP_SEQ_EXHAUSTED] == 4 && st.tx_seq == 0xffffffffu && st.tx_packets == 2, "counters");
  return 0;
}

static int seq_starts_at_1(int alg) {
  struct tunctl_esp_sa *sa = mk_std(alg, 32);
  CHECK(sa, "sa");
  size_t len = mkinner(pkt, 1, 80, 1), olen;
  for (uint32_t i = 1; i <= 3; i++) {
    CHECK(tunctl_esp_encap(sa, pkt, len, out, sizeof(out), &olen) == ESP_OK, "encap");
    CHECK(!memcmp(out, "\0\0\x12\x34", 4), "SPI");
    CHECK(((uint32_t)out[4] << 24 | out[5] << 16 | out[6] << 8 | out[7]) == i, "seq %u", i);
  }
  tunctl_esp_sa_free(sa);
  return 0;
}

static int iv_unique(int alg) {
  /* two SAs with the same keys (a restart): no IV repeats within or across them */
  size_t ivl = is_gcm(alg) ? 8 : 16, len = mkinner(pkt, 0, 40, 0), olen;
  enum { N = 2000 };
  static uint8_t ivs[2 * N][16];
  for (int s = 0; s < 2; s++) {
    struct tunctl_esp_sa *sa = mk_std(alg, 0);
    CHECK(sa, "sa");
    for (int i = 0; i < N; i++) {
      CHECK(tunctl_esp_encap(sa, pkt, len, out, sizeof(out), &olen) == ESP_OK, "encap");
      memcpy(ivs[s * N + i], out + 8, ivl);
    }
    tunctl_esp_sa_free(sa);
  }
  for (int i = 0; i < 2 * N; i++)
    for (int j = i + 1; j < 2 * N; j++) CHECK(memcmp(ivs[i], ivs[j], ivl), "IV %d repeats as %d", i, j);
  return 0;
}

/* ---- parameters, sizes, outer header ---- */
static int params_checked(void) {
  uint8_t k[36] = {0}, a[32] = {0};
  struct tunctl_esp_params ok = {.alg = TUNCTL_ESP_AES_GCM_128, .spi_out = 1, .spi_in = 2, .key_out = k, .key_in = k,
                                 .key_out_len = 20, .key_in_len = 20};
  const char *err;
  struct tunctl_esp_sa *sa = tunctl_esp_sa_new(&ok, &err);
  CHECK(sa, "valid params refused: %s", err);
  tunctl_esp_sa_free(sa);
  struct tunctl_esp_params p;
#define BAD(mod, what)                                                                                                \
  do {                                                                                                                \
    p = ok;                                                                                                           \
    mod;                                                                                                              \
    err = NULL;                                                                                                       \
    sa = tunctl_esp_sa_new(&p, &err);                                                                                 \
    if (sa) tunctl_esp_sa_free(sa);                                                                                   \
    CHECK(!sa && err, "accepted: %s", what);                                                                          \
  } while (0)
  BAD(p.key_out_len = 16, "gcm-128 key without salt");
  BAD(p.key_in_len = 36, "gcm-128 in key of 36 bytes");
  BAD((p.alg = TUNCTL_ESP_AES_GCM_256), "gcm-256 with 20-byte keys");
  BAD((p.auth_out = a, p.auth_out_len = 32), "gcm with an auth key");
  BAD(p.alg = 9, "unknown algorithm");
  BAD(p.spi_in = 0, "SPI 0");
  BAD(p.replay_window = 4097, "window 4097");
  BAD((p.alg = TUNCTL_ESP_AES_CBC_128_HMAC_SHA256, p.key_out_len = p.key_in_len = 16), "cbc without auth keys");
  BAD((p.alg = TUNCTL_ESP_AES_CBC_128_HMAC_SHA256, p.key_out_len = p.key_in_len = 16, p.auth_out = p.auth_in = a,
       p.auth_out_len = 20, p.auth_in_len = 32),
      "hmac-sha256 key of 20 bytes");
  p = ok, p.replay_window = 4096;
  sa = tunctl_esp_sa_new(&p, &err);
  CHECK(sa, "window 4096 refused");
  tunctl_esp_sa_free(sa);
  CHECK(tunctl_esp_alg_from_name("aes-cbc-256") == TUNCTL_ESP_AES_CBC_256_HMAC_SHA256 &&
            !strcmp(tunctl_esp_alg_name(TUNCTL_ESP_AES_GCM_256), "aes-gcm-256") && !tunctl_esp_alg_from_name("des"),
        "names");
  return 0;
}

static int sizes(int alg) {
  struct tunctl_esp_sa *sa = mk_std(alg, 0);
  CHECK(sa, "sa");
  size_t olen;
  for (int mtu = 576; mtu <= 9000; mtu += 1) {
    int m = tunctl_esp_max_inner(sa, mtu);
    CHECK(m > 0, "max inner for %d", mtu);
    CHECK(tunctl_esp_encap_len(sa, (size_t)m) + 20 <= (size_t)mtu, "max inner %d for %d does not fit", m, mtu);
    /* the kernel's formula rounds to whole blocks: m + 4 (GCM) / m + 16 (CBC) never fits */
    CHECK(tunctl_esp_encap_len(sa, (size_t)m + (is_gcm(alg) ? 4 : 16)) + 20 > (size_t)mtu, "max inner %d for %d too small", m, mtu);
  }
  CHECK(tunctl_esp_max_inner(sa, 1500) == (is_gcm(alg) ? 1446 : 1438), "max inner for 1500: %d", tunctl_esp_max_inner(sa, 1500));
  size_t len = mkinner(pkt, 0, 200, 0);
  CHECK(tunctl_esp_encap(sa, pkt, len, out, tunctl_esp_encap_len(sa, len) - 1, &olen) == ESP_NO_ROOM, "no room");
  CHECK(tunctl_esp_encap(sa, pkt, len, out, tunctl_esp_encap_len(sa, len), &olen) == ESP_OK, "exact room");
  CHECK(tunctl_esp_encap(sa, pkt, 65535 - 20, out, sizeof(out), &olen) == ESP_TOO_BIG, "too big");
  pkt[0] = 0x55;
  CHECK(tunctl_esp_encap(sa, pkt, len, out, sizeof(out), &olen) == ESP_INNER_MALFORMED, "not IP");
  CHECK(tunctl_esp_encap(sa, pkt, 19, out, sizeof(out), &olen) == ESP_INNER_MALFORMED, "short");
  struct tunctl_esp_stats st;
  tunctl_esp_stats(sa, &st);
  tunctl_esp_sa_free(sa);
  CHECK(st.tx_errors[ESP_NO_ROOM] == 1 && st.tx_errors[ESP_TOO_BIG] == 1 && st.tx_errors[ESP_INNER_MALFORMED] == 2 &&
            st.tx_seq == 1,
        "refusals must be counted and consume no sequence number");
  return 0;
}

static int outer_fields(void) {
  uint8_t in4[40], in6[60], h[20];
  mkinner(in4, 0, 40, 0);
  mkinner(in6, 1, 60, 0);
  struct tunctl_esp_outer oh = {.ttl = 0};
  inet_pton(AF_INET, "192.0.2.1", &oh.saddr);
  inet_pton(AF_INET, "192.0.2.2", &oh.daddr);
  in4[1] = 0xbb; /* DSCP 46, CE */
  tunctl_esp_outer_ipv4(h, 100, in4, &oh);
  CHECK(h[0] == 0x45 && h[1] == 0xba && h[2] == 0 && h[3] == 120 && h[6] == 0x40 && h[8] == 64 && h[9] == 50,
        "DSCP kept, CE -> ECT(0), DF copied, ttl 64, proto 50");
  uint32_t s = 0;
  for (int i = 0; i < 20; i += 2) s += (uint32_t)(h[i] << 8 | h[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  CHECK(s == 0xffff, "header checksum");
  in4[1] = 0xb9, in4[6] = 0;
  oh.ttl = 7, oh.noecn = 1;
  tunctl_esp_outer_ipv4(h, 100, in4, &oh);
  CHECK(h[1] == 0xb8 && h[6] == 0 && h[8] == 7, "noecn clears ECN, no DF copied, ttl 7");
  oh.noecn = 0, oh.dont_encap_dscp = 1;
  tunctl_esp_outer_ipv4(h, 100, in4, &oh);
  CHECK(h[1] == 0x01, "dont_encap_dscp: only ECN");
  oh.dont_encap_dscp = 0;
  in6[0] = 0x6b, in6[1] = 0x80; /* traffic class 0xb8 */
  tunctl_esp_outer_ipv4(h, 100, in6, &oh);
  CHECK(h[1] == 0xb8 && h[6] == 0x40, "IPv6 inner: traffic class, DF");
  oh.nopmtudisc = 1;
  tunctl_esp_outer_ipv4(h, 100, in6, &oh);
  CHECK(h[6] == 0, "nopmtudisc: no DF");
  CHECK(tunctl_esp_outer_ipv4(h, 65535 - 19, in6, &oh) == 0, "over 65535");
  return 0;
}

static int ecn_decap(void) {
  uint8_t in4[40], in6[60];
  for (unsigned seed = 0; seed < 512; seed++) /* checksums with every low byte: borrows into the high byte */
  for (int ecn = 0; ecn < 4; ecn++)
    for (int outer = 0; outer < 4; outer++) {
      mkinner(in4, 0, 40, seed);
      in4[12] = (uint8_t)seed, in4[13] = (uint8_t)(seed >> 8);
      in4[1] = (uint8_t)(0x88 | ecn);
      in4[10] = in4[11] = 0;
      uint32_t s = 0;
      for (int i = 0; i < 20; i += 2) s += (uint32_t)(in4[i] << 8 | in4[i + 1]);
      while (s >> 16) s = (s & 0xffff) + (s >> 16);
      in4[10] = (uint8_t)(~s >> 8), in4[11] = (uint8_t)~s;
      int want = outer == 3 && (ecn == 1 || ecn == 2);
      CHECK(tunctl_esp_ecn_decap((uint8_t)(0x20 | outer), in4, 40) == want, "IPv4 ecn %d outer %d", ecn, outer);
      CHECK(in4[1] == (want ? 0x8b : (0x88 | ecn)), "IPv4 tos %02x", in4[1]);
      s = 0;
      for (int i = 0; i < 20; i += 2) s += (uint32_t)(in4[i] << 8 | in4[i + 1]);
      while (s >> 16) s = (s & 0xffff) + (s >> 16);
      CHECK(s == 0xffff, "IPv4 checksum after marking");
      mkinner(in6, 1, 60, 9);
      in6[0] = 0x6a, in6[1] = (uint8_t)(ecn << 4 | 5);
      CHECK(tunctl_esp_ecn_decap((uint8_t)outer, in6, 60) == want, "IPv6 ecn %d outer %d", ecn, outer);
      CHECK(in6[0] == 0x6a && in6[1] == (uint8_t)((want ? 3 : ecn) << 4 | 5), "IPv6 traffic class");
    }
  return 0;
}

/* one thread encapsulating on an SA while another decapsulates on it (the data plane's two threads) */
struct thr {
  struct tunctl_esp_sa *sa, *peer;
  int fail;
  uint8_t (*pk)[256];
  size_t *pl;
  int n;
};
static void *tx_thread(void *arg) {
  struct thr *t = arg;
  uint8_t in[200], o[300];
  size_t ol;
  for (int i = 0; i < t->n; i++) {
    mkinner(in, i & 1, 200, (unsigned)i);
    if (tunctl_esp_encap(t->sa, in, 200, o, sizeof(o), &ol) != ESP_OK) t->fail = 1;
  }
  return NULL;
}
static void *rx_thread(void *arg) {
  struct thr *t = arg;
  uint8_t o[300], want[200];
  size_t n;
  int nh;
  for (int i = 0; i < t->n; i++) {
    mkinner(want, i & 1, 200, (unsigned)i + 7);
    if (tunctl_esp_decap(t->sa, t->pk[i], t->pl[i], o, sizeof(o), &n, &nh) != ESP_OK || n != 200 || memcmp(o, want, 200))
      t->fail = 1;
  }
  return NULL;
}
static int threads(int alg) {
  enum { N = 4000 };
  static uint8_t pk[N][256];
  static size_t pl[N];
  uint8_t k1[36], k2[36];
  memcpy(k1, K32, 32), memcpy(k1 + 32, "salt", 4);
  memcpy(k2, KA, 32), memcpy(k2 + 32, "SALT", 4);
  size_t kl = aes_len(alg) + (is_gcm(alg) ? 4 : 0);
  struct tunctl_esp_params pa = {.alg = alg, .spi_out = 0x100, .spi_in = 0x200, .key_out = k1, .key_in = k2,
                                 .key_out_len = kl, .key_in_len = kl, .replay_window = 64};
  struct tunctl_esp_params pb = {.alg = alg, .spi_out = 0x200, .spi_in = 0x100, .key_out = k2, .key_in = k1,
                                 .key_out_len = kl, .key_in_len = kl, .replay_window = 64};
  if (!is_gcm(alg)) {
    pa.auth_out = pb.auth_in = KA, pa.auth_in = pb.auth_out = K32;
    pa.auth_out_len = pa.auth_in_len = pb.auth_out_len = pb.auth_in_len = 32;
  }
  struct tunctl_esp_sa *a = tunctl_esp_sa_new(&pa, NULL), *b = tunctl_esp_sa_new(&pb, NULL);
  CHECK(a && b, "sa");
  uint8_t in[200];
  for (int i = 0; i < N; i++) {
    mkinner(in, i & 1, 200, (unsigned)i + 7);
    CHECK(tunctl_esp_encap(b, in, 200, pk[i], sizeof(pk[i]), &pl[i]) == ESP_OK, "peer encap");
  }
  struct thr t = {.sa = a, .pk = pk, .pl = pl, .n = N}, r = t;
  pthread_t pt, pr;
  pthread_create(&pt, NULL, tx_thread, &t);
  pthread_create(&pr, NULL, rx_thread, &r);
  pthread_join(pt, NULL);
  pthread_join(pr, NULL);
  struct tunctl_esp_stats st;
  tunctl_esp_stats(a, &st);
  tunctl_esp_sa_free(a), tunctl_esp_sa_free(b);
  CHECK(!t.fail && !r.fail, "a thread failed (tx %d, rx %d)", t.fail, r.fail);
  CHECK(st.tx_packets == N && st.rx_packets == N && st.tx_seq == N && st.rx_seq == N, "counters");
  return 0;
}

int main(int argc, char **argv) {
  char name[160];
  if (argc > 1) kernel_tests(argv[1]);
  testmgr_tests();
  for (size_t a = 0; a < 4; a++) {
    int alg = ALGS[a];
    const char *an = tunctl_esp_alg_name(alg);
    for (int v6 = 0; v6 < 2; v6++)
      for (int inplace = 0; inplace < 2; inplace++) {
        snprintf(name, sizeof(name), "%s: IPv%d round trips, 20..65458 bytes%s", an, v6 ? 6 : 4, inplace ? ", in place" : "");
        report(name, roundtrip(alg, v6, inplace));
      }
    static const struct { const char *what; int expect; } tam[] = {
      {"payload", ESP_BAD_ICV}, {"last payload byte", ESP_BAD_ICV}, {"ICV", ESP_BAD_ICV}, {"SPI", ESP_BAD_SPI},
      {"sequence number", ESP_BAD_ICV}, {"IV", ESP_BAD_ICV}, {"truncated", -1}, {"header only", ESP_TRUNCATED},
      {"no payload", ESP_TRUNCATED},
    };
    for (size_t i = 0; i < sizeof(tam) / sizeof(tam[0]); i++) {
      /* one byte less: GCM authenticates the shorter packet and fails; CBC is no longer whole blocks */
      int expect = tam[i].expect >= 0 ? tam[i].expect : is_gcm(alg) ? ESP_BAD_ICV : ESP_TRUNCATED;
      snprintf(name, sizeof(name), "%s: a flipped bit in the %s is dropped as %s", an, tam[i].what, R(expect));
      if (!strcmp(tam[i].what, "truncated") || !strcmp(tam[i].what, "header only") || !strcmp(tam[i].what, "no payload"))
        snprintf(name, sizeof(name), "%s: %s packet is dropped as %s", an, tam[i].what, R(expect));
      report(name, tamper(alg, tam[i].what, expect));
    }
    static const struct { const char *what; int expect; } con[] = {
      {"padding 1,2,4", ESP_BAD_PAD}, {"padding 0,2,3", ESP_BAD_PAD}, {"pad length beyond the payload", ESP_BAD_PAD},
      {"pad length 255", ESP_BAD_PAD}, {"next header 17", ESP_BAD_NEXT_HEADER},
      {"next header 4 with an IPv6 inner packet", ESP_BAD_NEXT_HEADER},
      {"next header 41 with an IPv4 inner packet", ESP_BAD_NEXT_HEADER}, {"next header 59 (dummy packet)", ESP_DUMMY},
      {"IPv4 total length beyond the payload", ESP_INNER_MALFORMED}, {"IPv4 total length below its header", ESP_INNER_MALFORMED},
      {"IPv4 ihl 4", ESP_INNER_MALFORMED}, {"IPv6 payload length beyond the payload", ESP_INNER_MALFORMED},
      {"IPv4 with TFC padding", ESP_OK}, {"IPv6 with TFC padding", ESP_OK},
    };
    for (size_t i = 0; i < sizeof(con) / sizeof(con[0]); i++) {
      snprintf(name, sizeof(name), "%s: authentic payload with %s: %s", an, con[i].what,
               con[i].expect == ESP_OK ? "accepted, inner packet trimmed to its IP length" : R(con[i].expect));
      report(name, content(alg, con[i].what, con[i].expect));
    }
    snprintf(name, sizeof(name), "%s: window 32: duplicates, seq 0, 31 behind ok, 32 behind too old", an);
    report(name, replay_basic(alg));
    snprintf(name, sizeof(name), "%s: window checked before the ICV, updated only after it", an);
    report(name, replay_order(alg));
    snprintf(name, sizeof(name), "%s: window 0 disables anti-replay", an);
    report(name, replay_disabled(alg));
    static const unsigned ws[] = {1, 64, 65, 4096};
    for (size_t i = 0; i < 4; i++) {
      snprintf(name, sizeof(name), "%s: window %u edges, jumps beyond the ring, seq 2^32-1", an, ws[i]);
      report(name, replay_edges(alg, ws[i]));
    }
    snprintf(name, sizeof(name), "%s: sequence numbers start at 1 behind the SPI", an);
    report(name, seq_starts_at_1(alg));
    snprintf(name, sizeof(name), "%s: sequence number exhausted at 2^32-1: refused, counted, never wraps", an);
    report(name, seq_exhaustion(alg));
    snprintf(name, sizeof(name), "%s: no IV repeats in 2 x 2000 packets of two SAs with the same keys", an);
    report(name, iv_unique(alg));
    snprintf(name, sizeof(name), "%s: one thread encapsulates while another decapsulates on the same SA", an);
    report(name, threads(alg));
    snprintf(name, sizeof(name), "%s: max inner size per MTU (esp4_get_mtu), no room, too big, not IP", an);
    report(name, sizes(alg));
  }
  static const unsigned mw[] = {1, 2, 32, 64, 100, 1024, 4096};
  for (size_t i = 0; i < sizeof(mw) / sizeof(mw[0]); i++) {
    snprintf(name, sizeof(name), "anti-replay window %u against a model: 6000 reordered, duplicated, lost packets", mw[i]);
    report(name, replay_model(mw[i], 17 + (unsigned)i));
  }
  report("SA parameters: key lengths, SPI 0, window > 4096, auth keys refused with a reason", params_checked());
  report("receive: outer CE marks an ECT inner packet CE (checksum updated), never a not-ECT one", ecn_decap());
  report("outer IPv4 header: DSCP/ECN, DF, ttl, noecn, dont_encap_dscp, nopmtudisc, checksum", outer_fields());
  printf("done %d %d\n", ncases, nfailed);
  return nfailed ? 1 : 0;
}
