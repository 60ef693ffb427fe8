/* tunctl userspace ESP codec (see esp.h): RFC 4303 tunnel mode over OpenSSL 3 EVP. */
#include "esp.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

const char *const tunctl_esp_result_names[ESP__COUNT] = {
  "ok",      "truncated",       "bad_spi", "replay",        "too_old", "bad_icv", "bad_pad",
  "bad_next_header", "dummy", "inner_malformed", "seq_exhausted", "no_room", "too_big", "crypto",
};

/* anti-replay bitmap: a ring of RING_WORDS 64-bit words (RFC 6479), at least window + 64 bits */
#define RING_WORDS 128
#define RING_BITS (RING_WORDS * 64)

struct esp_tx {
  EVP_CIPHER_CTX *ctx; /* GCM or CBC, keyed */
  EVP_MAC_CTX *mac;    /* CBC: HMAC-SHA256, keyed */
  EVP_CIPHER_CTX *ivgen; /* CBC: AES-ECB with a random key, IV = E(counter) */
  uint32_t spi;        /* network order */
  uint32_t seq;        /* last sent */
  uint64_t ivctr;      /* IV counter: never reused */
  uint8_t salt[4];     /* GCM: nonce salt from the key material */
  uint8_t ivsalt[8];   /* GCM: random per SA, IV = ivctr ^ ivsalt (the kernel's seqiv) */
  int have_test_iv;
  uint8_t test_iv[16];
  uint64_t packets, bytes, errors[ESP__COUNT];
};

struct esp_rx {
  EVP_CIPHER_CTX *ctx;
  EVP_MAC_CTX *mac;
  uint32_t spi; /* network order */
  uint32_t top; /* highest authenticated sequence number */
  unsigned window;
  uint8_t salt[4];
  uint64_t packets, bytes, drops[ESP__COUNT];
  uint64_t bmp[RING_WORDS];
};

struct tunctl_esp_sa {
  int alg, gcm;
  size_t ivlen;    /* 8 (GCM) / 16 (CBC) */
  size_t blk;      /* payload alignment: 4 (GCM) / 16 (CBC) */
  /* one cache line apart: the TX and RX threads write only their own half */
  _Alignas(64) struct esp_tx tx;
  _Alignas(64) struct esp_rx rx;
};

static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

int tunctl_esp_alg_from_name(const char *name) {
  if (!name) return 0;
  if (!strcmp(name, "aes-gcm-128")) return TUNCTL_ESP_AES_GCM_128;
  if (!strcmp(name, "aes-gcm-256")) return TUNCTL_ESP_AES_GCM_256;
  if (!strcmp(name, "aes-cbc-128")) return TUNCTL_ESP_AES_CBC_128_HMAC_SHA256;
  if (!strcmp(name, "aes-cbc-256")) return TUNCTL_ESP_AES_CBC_256_HMAC_SHA256;
  return 0;
}

const char *tunctl_esp_alg_name(int alg) {
  switch (alg) {
  case TUNCTL_ESP_AES_GCM_128: return "aes-gcm-128";
  case TUNCTL_ESP_AES_GCM_256: return "aes-gcm-256";
  case TUNCTL_ESP_AES_CBC_128_HMAC_SHA256: return "aes-cbc-128";
  case TUNCTL_ESP_AES_CBC_256_HMAC_SHA256: return "aes-cbc-256";
  default: return NULL;
  }
}

int tunctl_esp_sa_alg(const struct tunctl_esp_sa *sa) { return sa->alg; }

static EVP_CIPHER_CTX *cipher_ctx(const char *name, const uint8_t *key, int enc) {
  EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
  if (!c) return NULL;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int ok = ctx && EVP_CipherInit_ex(ctx, c, NULL, NULL, NULL, enc) == 1;
  if (ok && strstr(name, "GCM")) ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1;
  if (ok) ok = EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, enc) == 1;
  if (ok) ok = EVP_CIPHER_CTX_set_padding(ctx, 0) == 1;
  EVP_CIPHER_free(c); /* the context keeps its own reference */
  if (!ok) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

static EVP_MAC_CTX *hmac_ctx(const uint8_t *key, size_t len) {
  EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (!m) return NULL;
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(m);
  EVP_MAC_free(m);
  if (!ctx) return NULL;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(ctx, key, len, params) != 1) {
    EVP_MAC_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

struct tunctl_esp_sa *tunctl_esp_sa_new(const struct tunctl_esp_params *p, const char **err) {
  const char *dummy;
  if (!err) err = &dummy;
  *err = NULL;
  if (!p) return (*err = "no parameters"), NULL;
  size_t aes;
  int gcm;
  switch (p->alg) {
  case TUNCTL_ESP_AES_GCM_128: aes = 16, gcm = 1; break;
  case TUNCTL_ESP_AES_GCM_256: aes = 32, gcm = 1; break;
  case TUNCTL_ESP_AES_CBC_128_HMAC_SHA256: aes = 16, gcm = 0; break;
  case TUNCTL_ESP_AES_CBC_256_HMAC_SHA256: aes = 32, gcm = 0; break;
  default: return (*err = "unknown algorithm"), NULL;
  }
  if (!p->spi_out || !p->spi_in) return (*err = "SPI 0 is reserved"), NULL;
  if (p->replay_window > TUNCTL_ESP_MAX_WINDOW) return (*err = "replay window must be 0..4096"), NULL;
  size_t klen = aes + (gcm ? 4 : 0);
  if (!p->key_out || !p->key_in || p->key_out_len != klen || p->key_in_len != klen)
    return (*err = gcm ? (aes == 16 ? "aes-gcm-128 keys must be 20 bytes (16-byte key + 4-byte salt)"
                                    : "aes-gcm-256 keys must be 36 bytes (32-byte key + 4-byte salt)")
                       : (aes == 16 ? "aes-cbc-128 keys must be 16 bytes" : "aes-cbc-256 keys must be 32 bytes")),
           NULL;
  if (gcm && (p->auth_out || p->auth_in || p->auth_out_len || p->auth_in_len))
    return (*err = "aes-gcm takes no auth key"), NULL;
  if (!gcm && (!p->auth_out || !p->auth_in || p->auth_out_len != 32 || p->auth_in_len != 32))
    return (*err = "hmac-sha256 auth keys must be 32 bytes"), NULL;

  struct tunctl_esp_sa *sa = aligned_alloc(64, (sizeof(*sa) + 63) & ~(size_t)63);
  if (!sa) return (*err = "out of memory"), NULL;
  memset(sa, 0, sizeof(*sa));
  sa->alg = p->alg;
  sa->gcm = gcm;
  sa->ivlen = gcm ? 8 : 16;
  sa->blk = gcm ? 4 : 16;
  uint8_t spi[4];
  wr32(spi, p->spi_out);
  memcpy(&sa->tx.spi, spi, 4);
  wr32(spi, p->spi_in);
  memcpy(&sa->rx.spi, spi, 4);
  sa->rx.window = p->replay_window;

  const char *cname = gcm ? (aes == 16 ? "AES-128-GCM" : "AES-256-GCM") : (aes == 16 ? "AES-128-CBC" : "AES-256-CBC");
  sa->tx.ctx = cipher_ctx(cname, p->key_out, 1);
  sa->rx.ctx = cipher_ctx(cname, p->key_in, 0);
  int ok = sa->tx.ctx && sa->rx.ctx;
  if (gcm) {
    memcpy(sa->tx.salt, p->key_out + aes, 4);
    memcpy(sa->rx.salt, p->key_in + aes, 4);
    if (ok && RAND_bytes(sa->tx.ivsalt, sizeof(sa->tx.ivsalt)) != 1) return tunctl_esp_sa_free(sa), (*err = "RAND_bytes failed"), NULL;
  } else if (ok) {
    sa->tx.mac = hmac_ctx(p->auth_out, 32);
    sa->rx.mac = hmac_ctx(p->auth_in, 32);
    uint8_t ivkey[16];
    if (RAND_bytes(ivkey, sizeof(ivkey)) != 1) return tunctl_esp_sa_free(sa), (*err = "RAND_bytes failed"), NULL;
    sa->tx.ivgen = cipher_ctx("AES-128-ECB", ivkey, 1);
    OPENSSL_cleanse(ivkey, sizeof(ivkey));
    ok = sa->tx.mac && sa->rx.mac && sa->tx.ivgen;
  }
  if (!ok) return tunctl_esp_sa_free(sa), (*err = "OpenSSL could not set up the cipher"), NULL;
  return sa;
}

void tunctl_esp_sa_free(struct tunctl_esp_sa *sa) {
  if (!sa) return;
  /* the contexts cleanse their key schedules when freed */
  EVP_CIPHER_CTX_free(sa->tx.ctx);
  EVP_CIPHER_CTX_free(sa->rx.ctx);
  EVP_CIPHER_CTX_free(sa->tx.ivgen);
  EVP_MAC_CTX_free(sa->tx.mac);
  EVP_MAC_CTX_free(sa->rx.mac);
  OPENSSL_cleanse(sa, sizeof(*sa));
  free(sa);
}

size_t tunctl_esp_header_len(const struct tunctl_esp_sa *sa) { return 8 + sa->ivlen; }

static size_t padded_len(const struct tunctl_esp_sa *sa, size_t inner_len) {
  return (inner_len + 2 + sa->blk - 1) & ~(sa->blk - 1);
}

size_t tunctl_esp_encap_len(const struct tunctl_esp_sa *sa, size_t inner_len) {
  return 8 + sa->ivlen + padded_len(sa, inner_len) + TUNCTL_ESP_ICV_LEN;
}

int tunctl_esp_max_inner(const struct tunctl_esp_sa *sa, int mtu) {
  /* esp4_get_mtu, tunnel mode: ((mtu - header_len - authsize) & ~(blksize - 1)) - 2, header_len = 20 + 8 + iv */
  int room = mtu - 20 - 8 - (int)sa->ivlen - TUNCTL_ESP_ICV_LEN;
  if (room < (int)sa->blk) return 0;
  return (room & ~((int)sa->blk - 1)) - 2;
}

void tunctl_esp_test_next_iv(struct tunctl_esp_sa *sa, const uint8_t *iv) {
  memcpy(sa->tx.test_iv, iv, sa->ivlen);
  sa->tx.have_test_iv = 1;
}

void tunctl_esp_test_reset(struct tunctl_esp_sa *sa) {
  sa->tx.seq = 0;
  sa->tx.have_test_iv = 0;
  sa->rx.top = 0;
  memset(sa->rx.bmp, 0, sizeof(sa->rx.bmp));
}

int tunctl_esp_set_tx_seq(struct tunctl_esp_sa *sa, uint32_t last_sent) {
  if (last_sent < sa->tx.seq) return -1;
  sa->tx.seq = last_sent;
  return 0;
}

/* Encrypts out[hl .. hl+n) in place (the plaintext is already there) and appends the ICV; header written here. */
static int seal(struct tunctl_esp_sa *sa, uint8_t *out, size_t n) {
  struct esp_tx *tx = &sa->tx;
  size_t hl = 8 + sa->ivlen;
  uint32_t seq = tx->seq + 1;
  memcpy(out, &tx->spi, 4);
  wr32(out + 4, seq);
  uint8_t *iv = out + 8, *ct = out + hl, *icv = out + hl + n;
  uint64_t ctr = ++tx->ivctr;
  int len;
  if (tx->have_test_iv) {
    memcpy(iv, tx->test_iv, sa->ivlen);
    tx->have_test_iv = 0;
  } else if (sa->gcm) {
    for (int i = 0; i < 8; i++) iv[i] = (uint8_t)(ctr >> (56 - 8 * i)) ^ tx->ivsalt[i];
  } else {
    uint8_t blk[16] = {0};
    for (int i = 0; i < 8; i++) blk[8 + i] = (uint8_t)(ctr >> (56 - 8 * i));
    if (EVP_EncryptUpdate(tx->ivgen, iv, &len, blk, 16) != 1 || len != 16) return ESP_CRYPTO;
  }
  if (sa->gcm) {
    uint8_t nonce[12];
    memcpy(nonce, tx->salt, 4);
    memcpy(nonce + 4, iv, 8);
    if (EVP_EncryptInit_ex(tx->ctx, NULL, NULL, NULL, nonce) != 1) return ESP_CRYPTO;
    if (EVP_EncryptUpdate(tx->ctx, NULL, &len, out, 8) != 1) return ESP_CRYPTO; /* AAD = SPI || seq */
    if (EVP_EncryptUpdate(tx->ctx, ct, &len, ct, (int)n) != 1) return ESP_CRYPTO;
    if (EVP_EncryptFinal_ex(tx->ctx, ct + len, &len) != 1) return ESP_CRYPTO;
    if (EVP_CIPHER_CTX_ctrl(tx->ctx, EVP_CTRL_AEAD_GET_TAG, TUNCTL_ESP_ICV_LEN, icv) != 1) return ESP_CRYPTO;
  } else {
    if (EVP_EncryptInit_ex(tx->ctx, NULL, NULL, NULL, iv) != 1) return ESP_CRYPTO;
    if (EVP_EncryptUpdate(tx->ctx, ct, &len, ct, (int)n) != 1 || (size_t)len != n) return ESP_CRYPTO;
    uint8_t mac[32];
    size_t ml;
    if (EVP_MAC_init(tx->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(tx->mac, out, hl + n) != 1 ||
        EVP_MAC_final(tx->mac, mac, &ml, sizeof(mac)) != 1)
      return ESP_CRYPTO;
    memcpy(icv, mac, TUNCTL_ESP_ICV_LEN);
  }
  tx->seq = seq;
  tx->packets++;
  tx->bytes += hl + n + TUNCTL_ESP_ICV_LEN;
  return ESP_OK;
}

static int tx_fail(struct tunctl_esp_sa *sa, int why) {
  sa->tx.errors[why]++;
  return why;
}

int tunctl_esp_encap(struct tunctl_esp_sa *sa, const uint8_t *inner, size_t len, uint8_t *out, size_t cap,
                     size_t *out_len) {
  *out_len = 0;
  if (sa->tx.seq == UINT32_MAX) return tx_fail(sa, ESP_SEQ_EXHAUSTED);
  int nh;
  if (len >= 20 && (inner[0] >> 4) == 4 && (inner[0] & 15) >= 5) nh = 4;
  else if (len >= 40 && (inner[0] >> 4) == 6) nh = 41;
  else return tx_fail(sa, ESP_INNER_MALFORMED);
  size_t hl = 8 + sa->ivlen, n = padded_len(sa, len), total = hl + n + TUNCTL_ESP_ICV_LEN;
  if (total + 20 > 65535) return tx_fail(sa, ESP_TOO_BIG);
  if (total > cap) return tx_fail(sa, ESP_NO_ROOM);
  uint8_t *pt = out + hl;
  if (pt != inner) memmove(pt, inner, len);
  size_t padlen = n - len - 2;
  for (size_t i = 0; i < padlen; i++) pt[len + i] = (uint8_t)(i + 1);
  pt[n - 2] = (uint8_t)padlen;
  pt[n - 1] = (uint8_t)nh;
  int r = seal(sa, out, n);
  if (r != ESP_OK) return tx_fail(sa, r);
  *out_len = total;
  return ESP_OK;
}

int tunctl_esp_test_seal(struct tunctl_esp_sa *sa, const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                         size_t *out_len) {
  size_t hl = 8 + sa->ivlen, total = hl + len + TUNCTL_ESP_ICV_LEN;
  *out_len = 0;
  if (sa->tx.seq == UINT32_MAX) return tx_fail(sa, ESP_SEQ_EXHAUSTED);
  if (total > cap) return tx_fail(sa, ESP_NO_ROOM);
  if (!sa->gcm && len % 16) return tx_fail(sa, ESP_INNER_MALFORMED);
  if (out + hl != payload) memmove(out + hl, payload, len);
  int r = seal(sa, out, len);
  if (r != ESP_OK) return tx_fail(sa, r);
  *out_len = total;
  return ESP_OK;
}

/* RFC 4303 3.4.3 / RFC 6479 sliding window, as the kernel's xfrm_replay_check: seq 0 never valid, seq more than
 * window - 1 behind the highest received one too old, a seen one a replay */
static int replay_check(const struct esp_rx *rx, uint32_t seq) {
  if (!rx->window) return ESP_OK;
  if (seq == 0) return ESP_REPLAY;
  if (seq > rx->top) return ESP_OK;
  if (rx->top - seq >= rx->window) return ESP_TOO_OLD;
  uint32_t bit = seq & (RING_BITS - 1);
  return (rx->bmp[bit / 64] >> (bit % 64)) & 1 ? ESP_REPLAY : ESP_OK;
}

static void replay_update(struct esp_rx *rx, uint32_t seq) {
  if (!rx->window) {
    if (seq > rx->top) rx->top = seq;
    return;
  }
  if (seq > rx->top) {
    uint32_t cur = rx->top / 64, diff = seq / 64 - cur;
    if (diff > RING_WORDS) diff = RING_WORDS;
    for (uint32_t i = 1; i <= diff; i++) rx->bmp[(cur + i) & (RING_WORDS - 1)] = 0;
    rx->top = seq;
  }
  uint32_t bit = seq & (RING_BITS - 1);
  rx->bmp[bit / 64] |= 1ull << (bit % 64);
}

static int rx_drop(struct tunctl_esp_sa *sa, int why) {
  sa->rx.drops[why]++;
  return why;
}

int tunctl_esp_decap(struct tunctl_esp_sa *sa, const uint8_t *esp, size_t len, uint8_t *out, size_t cap,
                     size_t *out_len, int *next_header) {
  struct esp_rx *rx = &sa->rx;
  *out_len = 0;
  *next_header = 0;
  if (len < 8) return rx_drop(sa, ESP_TRUNCATED);
  if (memcmp(esp, &rx->spi, 4)) return rx_drop(sa, ESP_BAD_SPI);
  size_t hl = 8 + sa->ivlen;
  if (len < hl + TUNCTL_ESP_ICV_LEN + (sa->gcm ? 2 : 16)) return rx_drop(sa, ESP_TRUNCATED);
  size_t n = len - hl - TUNCTL_ESP_ICV_LEN;
  if (n > INT32_MAX || (!sa->gcm && n % 16)) return rx_drop(sa, ESP_TRUNCATED);
  if (cap < n) return rx_drop(sa, ESP_NO_ROOM);
  uint32_t seq = rd32(esp + 4);
  int r = replay_check(rx, seq);
  if (r != ESP_OK) return rx_drop(sa, r);

  const uint8_t *iv = esp + 8, *ct = esp + hl, *icv = esp + hl + n;
  int outl;
  if (sa->gcm) {
    uint8_t nonce[12], tag[TUNCTL_ESP_ICV_LEN];
    memcpy(nonce, rx->salt, 4);
    memcpy(nonce + 4, iv, 8);
    memcpy(tag, icv, sizeof(tag));
    if (EVP_DecryptInit_ex(rx->ctx, NULL, NULL, NULL, nonce) != 1 ||
        EVP_CIPHER_CTX_ctrl(rx->ctx, EVP_CTRL_AEAD_SET_TAG, sizeof(tag), tag) != 1 ||
        EVP_DecryptUpdate(rx->ctx, NULL, &outl, esp, 8) != 1 || EVP_DecryptUpdate(rx->ctx, out, &outl, ct, (int)n) != 1)
      return rx_drop(sa, ESP_CRYPTO);
    if (EVP_DecryptFinal_ex(rx->ctx, out + outl, &outl) != 1) {
      OPENSSL_cleanse(out, n); /* never hand out unauthenticated plaintext */
      return rx_drop(sa, ESP_BAD_ICV);
    }
  } else {
    uint8_t mac[32];
    size_t ml;
    if (EVP_MAC_init(rx->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(rx->mac, esp, hl + n) != 1 ||
        EVP_MAC_final(rx->mac, mac, &ml, sizeof(mac)) != 1)
      return rx_drop(sa, ESP_CRYPTO);
    if (CRYPTO_memcmp(mac, icv, TUNCTL_ESP_ICV_LEN)) return rx_drop(sa, ESP_BAD_ICV);
    if (EVP_DecryptInit_ex(rx->ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_DecryptUpdate(rx->ctx, out, &outl, ct, (int)n) != 1 || (size_t)outl != n)
      return rx_drop(sa, ESP_CRYPTO);
  }
  /* authentic: the window moves even if the content is refused below (the kernel's order too) */
  replay_update(rx, seq);

  size_t padlen = out[n - 2];
  int nh = out[n - 1];
  if (padlen + 2 > n) return rx_drop(sa, ESP_BAD_PAD);
  size_t plen = n - 2 - padlen;
  for (size_t i = 0; i < padlen; i++)
    if (out[plen + i] != (uint8_t)(i + 1)) return rx_drop(sa, ESP_BAD_PAD);
  if (nh == 59) return rx_drop(sa, ESP_DUMMY);
  if (nh != 4 && nh != 41) return rx_drop(sa, ESP_BAD_NEXT_HEADER);
  if (plen < 1 || (out[0] >> 4) != (nh == 4 ? 4 : 6)) return rx_drop(sa, ESP_BAD_NEXT_HEADER);
  size_t ilen;
  if (nh == 4) {
    if (plen < 20 || (out[0] & 15) < 5) return rx_drop(sa, ESP_INNER_MALFORMED);
    ilen = rd16(out + 2);
    if (ilen < (size_t)(out[0] & 15) * 4 || ilen > plen) return rx_drop(sa, ESP_INNER_MALFORMED);
  } else {
    if (plen < 40) return rx_drop(sa, ESP_INNER_MALFORMED);
    ilen = 40 + (size_t)rd16(out + 4);
    if (ilen > plen) return rx_drop(sa, ESP_INNER_MALFORMED);
  }
  /* bytes between the inner packet's end and the padding are TFC padding (RFC 4303 2.7): dropped */
  *out_len = ilen;
  *next_header = nh;
  rx->packets++;
  rx->bytes += len;
  return ESP_OK;
}

void tunctl_esp_stats(const struct tunctl_esp_sa *sa, struct tunctl_esp_stats *st) {
  memset(st, 0, sizeof(*st));
  st->tx_packets = sa->tx.packets;
  st->tx_bytes = sa->tx.bytes;
  st->rx_packets = sa->rx.packets;
  st->rx_bytes = sa->rx.bytes;
  memcpy(st->tx_errors, sa->tx.errors, sizeof(st->tx_errors));
  memcpy(st->rx_drops, sa->rx.drops, sizeof(st->rx_drops));
  st->tx_seq = sa->tx.seq;
  st->rx_seq = sa->rx.top;
}

static uint16_t csum20(const uint8_t *h) {
  uint32_t s = 0;
  for (int i = 0; i < 20; i += 2) s += (uint32_t)(h[i] << 8 | h[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

size_t tunctl_esp_outer_ipv4(uint8_t *o, size_t esp_len, const uint8_t *inner, const struct tunctl_esp_outer *oh) {
  if (esp_len + 20 > 65535) return 0;
  int v6 = (inner[0] >> 4) == 6;
  uint8_t itos = v6 ? (uint8_t)(((inner[0] & 0x0f) << 4) | (inner[1] >> 4)) : inner[1];
  uint8_t tos = oh->dont_encap_dscp ? 0 : (uint8_t)(itos & ~3);
  uint8_t iecn = itos & 3;
  tos |= oh->noecn ? 0 : (iecn == 3 ? 2 : iecn); /* INET_ECN_encapsulate */
  int df = !oh->nopmtudisc && (v6 || (inner[6] & 0x40));
  size_t tot = esp_len + 20;
  o[0] = 0x45;
  o[1] = tos;
  o[2] = (uint8_t)(tot >> 8);
  o[3] = (uint8_t)tot;
  o[4] = (uint8_t)(oh->id >> 8);
  o[5] = (uint8_t)oh->id;
  o[6] = df ? 0x40 : 0;
  o[7] = 0;
  o[8] = oh->ttl ? oh->ttl : 64;
  o[9] = 50;
  o[10] = o[11] = 0;
  memcpy(o + 12, &oh->saddr, 4);
  memcpy(o + 16, &oh->daddr, 4);
  uint16_t c = csum20(o);
  o[10] = (uint8_t)(c >> 8);
  o[11] = (uint8_t)c;
  return 20;
}

int tunctl_esp_ecn_decap(uint8_t outer_tos, uint8_t *inner, size_t len) {
  if ((outer_tos & 3) != 3) return 0;
  if ((inner[0] >> 4) == 4 && len >= 20) {
    uint8_t ecn = inner[1] & 3;
    if (ecn == 0 || ecn == 3) return 0;
    /* IP_ECN_set_ce: incremental checksum update (RFC 1624) for the tos byte going from ECT to CE */
    uint16_t old = (uint16_t)(inner[0] << 8 | inner[1]), neu = (uint16_t)(old | 3);
    uint32_t c = (uint16_t)~(inner[10] << 8 | inner[11]);
    c += (uint16_t)~old;
    c += neu;
    while (c >> 16) c = (c & 0xffff) + (c >> 16);
    c = ~c & 0xffff;
    inner[1] |= 3;
    inner[10] = (uint8_t)(c >> 8);
    inner[11] = (uint8_t)c;
    return 1;
  }
  if ((inner[0] >> 4) == 6 && len >= 40) {
    uint8_t ecn = (inner[1] >> 4) & 3;
    if (ecn == 0 || ecn == 3) return 0;
    inner[1] |= 0x30;
    return 1;
  }
  return 0;
}
