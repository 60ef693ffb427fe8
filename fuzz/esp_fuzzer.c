/* libFuzzer harness for the ESP codec's decapsulation (native/esp.c). Built and run by fuzz/run-esp.sh.
 * Input: byte 0 chooses the SA and the mode, byte 1 the key set, the rest is data:
 *   byte 0 bits 0-1  algorithm (aes-gcm-128, aes-gcm-256, aes-cbc-128, aes-cbc-256)
 *          bits 2-3  replay window 0, 1, 32, 4096
 *          bits 4-5  mode: 0 data is a received ESP packet (bit 6: its SPI set to the SA's; bit 7: decrypted in
 *                    place), 1 data is an authentic payload (sealed with the SA's keys, then decapsulated: reaches
 *                    the padding / next header / inner length checks), 2 data is an inner packet, encapsulated, then
 *                    bytes 2-3 of data say which bit to flip (or none), then decapsulated, 3 data is a series of
 *                    records (seq 4 bytes, flags 1 byte) of packets delivered in that order: the anti-replay verdicts
 *                    are checked against a model
 *   byte 1 bit 0     the key set (and the whole byte: the outer tos whose ECN goes onto the inner packet): the fixture's "out" keys (test/fixtures/esp/kernel-esp.txt) or its "in" keys
 *                    (first byte ff), so the kernel's packets are valid seeds; SPI 0x1001.. / 0x2001.. by algorithm.
 * Any result is fine for hostile input; what must hold: no memory error (ASan), no undefined behaviour (UBSan),
 * a decapsulated inner packet lies within the output and is what was sealed (modes 1-2), verdicts match the model
 * (mode 3). A violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../native/esp.h"

static const uint8_t K[32] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
                              0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};
static struct tunctl_esp_sa *make_sa_new(int alg, unsigned window, int inkeys);
static const uint8_t A[32] = {0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
                              0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f};

static struct tunctl_esp_sa *make_sa(int alg, unsigned window, int inkeys) {
  /* made once, reset for each input (SA setup costs more than a decapsulation) */
  static struct tunctl_esp_sa *cache[5][4][2];
  static const unsigned ws[4] = {0, 1, 32, 4096};
  int wi = 0;
  while (ws[wi] != window) wi++;
  struct tunctl_esp_sa **slot = &cache[alg][wi][inkeys];
  if (!*slot) *slot = make_sa_new(alg, window, inkeys);
  tunctl_esp_test_reset(*slot);
  return *slot;
}

/* the sender in mode 3: an SA of its own with the same keys */
static struct tunctl_esp_sa *sender(int alg, int inkeys) {
  static struct tunctl_esp_sa *cache[5][2];
  if (!cache[alg][inkeys]) cache[alg][inkeys] = make_sa_new(alg, 0, inkeys);
  tunctl_esp_test_reset(cache[alg][inkeys]);
  return cache[alg][inkeys];
}

static struct tunctl_esp_sa *make_sa_new(int alg, unsigned window, int inkeys) {
  int gcm = alg <= 2;
  size_t aes = alg == 1 || alg == 3 ? 16 : 32, kl = aes + (gcm ? 4 : 0);
  uint8_t key[36], auth[32];
  memcpy(key, K, aes);
  if (gcm) memcpy(key + aes, "\xa0\xa1\xa2\xa3", 4);
  memcpy(auth, A, 32);
  if (inkeys) key[0] = auth[0] = 0xff;
  uint32_t spi = (inkeys ? 0x2000u : 0x1000u) + (uint32_t)alg;
  struct tunctl_esp_params p = {.alg = alg, .spi_out = spi, .spi_in = spi, .key_out = key, .key_in = key,
                                .key_out_len = kl, .key_in_len = kl, .replay_window = window};
  if (!gcm) p.auth_out = p.auth_in = auth, p.auth_out_len = p.auth_in_len = 32;
  struct tunctl_esp_sa *sa = tunctl_esp_sa_new(&p, NULL);
  if (!sa) abort();
  return sa;
}

static uint8_t out[70000], back[70000];

static uint8_t outer_tos;

static void check_ok(int r, size_t n, int nh, size_t cap, uint8_t *inner) {
  if (r != ESP_OK) {
    if (n != 0 || nh != 0) abort();
    return;
  }
  if (n > cap || n < 20 || (nh != 4 && nh != 41)) abort();
  /* what the receive path does next: the outer ECN onto the inner packet */
  if (tunctl_esp_ecn_decap(outer_tos, inner, n) && (inner[0] >> 4 == 4 ? inner[1] & 3 : inner[1] >> 4 & 3) != 3) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  static const unsigned windows[4] = {0, 1, 32, 4096};
  uint8_t sel = data[0];
  int alg = 1 + (sel & 3), mode = (sel >> 4) & 3;
  unsigned w = windows[(sel >> 2) & 3];
  struct tunctl_esp_sa *sa = make_sa(alg, w, data[1] & 1);
  outer_tos = data[1];
  data += 2, size -= 2;
  size_t hl = tunctl_esp_header_len(sa), n = 0, olen;
  int nh = 0, r;
  if (mode == 0) {
    /* an exact-size heap copy: ASan sees any read past the packet */
    uint8_t *pkt = malloc(size ? size : 1);
    memcpy(pkt, data, size);
    if ((sel & 0x40) && size >= 4) { /* the SA's SPI */
      pkt[0] = pkt[1] = 0;
      pkt[2] = (data[-1] & 1) ? 0x20 : 0x10;
      pkt[3] = (uint8_t)alg;
    }
    if ((sel & 0x80) && size >= hl) {
      size_t cap = size - hl;
      r = tunctl_esp_decap(sa, pkt, size, pkt + hl, cap, &n, &nh);
      check_ok(r, n, nh, cap, pkt + hl);
    } else {
      size_t cap = size;
      uint8_t *o = malloc(cap ? cap : 1);
      r = tunctl_esp_decap(sa, pkt, size, o, cap, &n, &nh);
      check_ok(r, n, nh, cap, o);
      free(o);
    }
    free(pkt);
  } else if (mode == 1) {
    if (size > 65000) size = 65000;
    if (alg > 2) size &= ~(size_t)15;
    r = tunctl_esp_test_seal(sa, data, size, out, sizeof(out), &olen);
    if (r == ESP_OK) {
      r = tunctl_esp_decap(sa, out, olen, back, sizeof(back), &n, &nh);
      if (r == ESP_OK && memcmp(back, data, n)) abort();
      check_ok(r, n, nh, size, back);
      if (r == ESP_BAD_ICV || r == ESP_REPLAY || r == ESP_TOO_OLD || r == ESP_BAD_SPI) abort(); /* it is authentic */
    }
  } else if (mode == 2) {
    if (size < 2) goto done;
    unsigned flip = (unsigned)data[0] << 8 | data[1];
    data += 2, size -= 2;
    if (size > 65000) size = 65000;
    r = tunctl_esp_encap(sa, data, size, out, sizeof(out), &olen);
    if (r != ESP_OK) goto done;
    if (flip < olen * 8) out[flip / 8] ^= (uint8_t)(1 << (flip % 8));
    r = tunctl_esp_decap(sa, out, olen, back, sizeof(back), &n, &nh);
    if (flip >= olen * 8 && r == ESP_OK && (n > size || memcmp(back, data, n))) abort();
    check_ok(r, n, nh, size, back);
    if (flip >= olen * 8 && r != ESP_OK && r != ESP_INNER_MALFORMED && r != ESP_BAD_NEXT_HEADER) abort();
    if (flip < olen * 8 && flip >= 32 && r == ESP_OK) abort(); /* only a flipped SPI bit is not an ICV failure */
  } else {
    /* anti-replay against the model: records of (seq, flags) */
    uint8_t inner[40] = {0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 17};
    uint32_t top = 0, accepted[64];
    int na = 0;
    for (size_t i = 0; i + 5 <= size && i < 5 * 64; i += 5) {
      uint32_t seq = (uint32_t)data[i] << 24 | data[i + 1] << 16 | data[i + 2] << 8 | data[i + 3];
      int corrupt = data[i + 4] & 1;
      if (data[i + 4] & 2) seq = top - (data[i + 4] >> 2); /* near the top: where the window matters */
      if (seq == 0) seq = 1;
      struct tunctl_esp_sa *tx = sender(alg, data[-1] & 1);
      tunctl_esp_set_tx_seq(tx, seq - 1);
      r = tunctl_esp_encap(tx, inner, sizeof(inner), out, sizeof(out), &olen);
      if (r != ESP_OK) abort();
      if (corrupt) out[olen - 1] ^= 1;
      int seen = 0;
      for (int j = 0; j < na; j++) seen |= accepted[j] == seq;
      int want = !w ? (corrupt ? ESP_BAD_ICV : ESP_OK)
                 : seq > top ? (corrupt ? ESP_BAD_ICV : ESP_OK)
                 : top - seq >= w ? ESP_TOO_OLD
                 : seen ? ESP_REPLAY
                 : corrupt ? ESP_BAD_ICV : ESP_OK;
      r = tunctl_esp_decap(sa, out, olen, back, sizeof(back), &n, &nh);
      if (r != want) abort();
      if (r == ESP_OK) {
        accepted[na++] = seq;
        if (seq > top) top = seq;
      }
    }
  }
done:
  return 0;
}
