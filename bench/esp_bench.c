/* Single-thread throughput of the ESP codec (native/esp.c): encap and decap of 1400-byte inner IPv4 packets, each
 * algorithm, then the bare OpenSSL EVP primitives on the same sizes (what the codec cannot go below: encap minus
 * these is the codec's own cost per packet). Not a test. Build and run:
 *   cc -O2 -Inative -o /tmp/esp_bench bench/esp_bench.c native/esp.c -lcrypto && /tmp/esp_bench [SECONDS=2]
 * Encap: inner packet copied into the output buffer, padded, encrypted, ICV (what the TUN -> socket thread does).
 * Decap: batches of 1024 distinct packets (sequence numbers in order, anti-replay window 4096), each decrypted into a
 * separate buffer and checked (what the socket -> TUN thread does). Gbit/s counts inner bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esp.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum { LEN = 1400, BATCH = 1024 };
static uint8_t inner[LEN], out[2048], back[2048];
static uint8_t batch[BATCH][1500];
static size_t blen[BATCH];

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2.0;
  uint8_t key[36], auth[32];
  for (int i = 0; i < 36; i++) key[i] = (uint8_t)i;
  for (int i = 0; i < 32; i++) auth[i] = (uint8_t)(0x20 + i);
  for (int i = 0; i < LEN; i++) inner[i] = (uint8_t)i;
  inner[0] = 0x45, inner[2] = LEN >> 8, inner[3] = LEN & 0xff, inner[8] = 64, inner[9] = 17;
  printf("%-12s %12s %10s %12s %10s\n", "algorithm", "encap pkt/s", "Gbit/s", "decap pkt/s", "Gbit/s");
  for (int alg = 1; alg <= 4; alg++) {
    int gcm = alg <= 2;
    size_t kl = (alg == 1 || alg == 3 ? 16 : 32) + (gcm ? 4 : 0);
    struct tunctl_esp_params p = {.alg = alg, .spi_out = 0x1000, .spi_in = 0x1000, .key_out = key, .key_in = key,
                                  .key_out_len = kl, .key_in_len = kl, .replay_window = 4096};
    if (!gcm) p.auth_out = p.auth_in = auth, p.auth_out_len = p.auth_in_len = 32;
    const char *err;
    struct tunctl_esp_sa *sa = tunctl_esp_sa_new(&p, &err);
    if (!sa) return fprintf(stderr, "%s\n", err), 1;
    size_t olen, n;
    int nh;
    /* encap */
    unsigned long long ne = 0;
    double t0 = now(), te;
    do {
      for (int i = 0; i < 1000; i++)
        if (tunctl_esp_encap(sa, inner, LEN, out, sizeof(out), &olen) != ESP_OK) return 1;
      ne += 1000;
    } while ((te = now() - t0) < secs);
    /* decap */
    unsigned long long nd = 0;
    double td = 0;
    while (td < secs) {
      tunctl_esp_test_reset(sa);
      for (int i = 0; i < BATCH; i++)
        if (tunctl_esp_encap(sa, inner, LEN, batch[i], sizeof(batch[i]), &blen[i]) != ESP_OK) return 1;
      double t1 = now();
      for (int i = 0; i < BATCH; i++)
        if (tunctl_esp_decap(sa, batch[i], blen[i], back, sizeof(back), &n, &nh) != ESP_OK || n != LEN) return 2;
      td += now() - t1;
      nd += BATCH;
    }
    printf("%-12s %12.0f %10.2f %12.0f %10.2f\n", tunctl_esp_alg_name(alg), ne / te, ne / te * LEN * 8 / 1e9, nd / td,
           nd / td * LEN * 8 / 1e9);
    tunctl_esp_sa_free(sa);
  }
  /* the primitives alone, one context each keyed once (as the codec keeps them), only the IV set per call */
  enum { N = 200000 };
  static uint8_t buf[1448], mac[32];
  int ol;
  size_t ml;
  printf("\nEVP primitives, us per call:\n");
  const char *ciphers[] = {"AES-128-GCM", "AES-128-CBC", "AES-256-CBC"};
  for (int c = 0; c < 3; c++) {
    EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, ciphers[c], NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ci || !ctx || EVP_EncryptInit_ex(ctx, ci, NULL, key, NULL) != 1) return 3;
    int gcm = c == 0;
    size_t len = gcm ? 1408 : 1440; /* the payload of a 1400-byte inner packet: padded to 4 (GCM) / 16 (CBC) */
    double t0 = now();
    for (int i = 0; i < N; i++) {
      if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, auth) != 1) return 3;
      if (gcm && EVP_EncryptUpdate(ctx, NULL, &ol, auth, 8) != 1) return 3;
      if (EVP_EncryptUpdate(ctx, buf, &ol, buf, (int)len) != 1) return 3;
      if (gcm && (EVP_EncryptFinal_ex(ctx, buf + ol, &ol) != 1 || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, mac) != 1))
        return 3;
    }
    printf("  %-36s %6.3f\n", gcm ? "AES-128-GCM encrypt+tag 1408 B" : c == 1 ? "AES-128-CBC encrypt 1440 B" : "AES-256-CBC encrypt 1440 B",
           (now() - t0) / N * 1e6);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(ci);
  }
  EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *mc = m ? EVP_MAC_CTX_new(m) : NULL;
  char dg[] = "SHA256";
  OSSL_PARAM prm[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, dg, 0), OSSL_PARAM_construct_end()};
  if (!mc || EVP_MAC_init(mc, auth, 32, prm) != 1) return 3;
  double t0 = now();
  for (int i = 0; i < N; i++)
    if (EVP_MAC_init(mc, NULL, 0, NULL) != 1 || EVP_MAC_update(mc, buf, 1448) != 1 || EVP_MAC_final(mc, mac, &ml, 32) != 1) return 3;
  printf("  %-36s %6.3f\n", "HMAC-SHA256 1448 B (pre-keyed)", (now() - t0) / N * 1e6);
  EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
  EVP_MD_CTX *mdc = EVP_MD_CTX_new();
  unsigned ul;
  t0 = now();
  for (int i = 0; i < N; i++)
    if (EVP_DigestInit_ex(mdc, md, NULL) != 1 || EVP_DigestUpdate(mdc, buf, 1448) != 1 || EVP_DigestFinal_ex(mdc, mac, &ul) != 1) return 3;
  printf("  %-36s %6.3f\n", "SHA-256 1448 B (no key)", (now() - t0) / N * 1e6);
  EVP_MD_CTX_free(mdc);
  EVP_MD_free(md);
  EVP_MAC_CTX_free(mc);
  EVP_MAC_free(m);
  return 0;
}
