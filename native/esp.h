/* tunctl userspace ESP codec: RFC 4303 tunnel mode (IPv4 outer, IPv4/IPv6 inner) with static SAs, as a vti uses
 * it. Pure (no I/O) over OpenSSL 3 libcrypto (EVP only). Byte-compatible with the Linux kernel's esp4:
 * test/fixtures/esp/kernel-esp.txt holds the kernel's own packets and test/unit/userspace/c/esp_test.c reproduces them.
 *
 * Algorithms (names as in the spec's ipsec: block):
 *   aes-gcm-128, aes-gcm-256   RFC 4106: key material = AES key + 4-byte salt (20 / 36 bytes, what
 *                              `ip xfrm state ... aead 'rfc4106(gcm(aes))' KEY 128` takes); 8-byte explicit IV,
 *                              16-byte ICV, AAD = SPI || sequence number (no ESN).
 *   aes-cbc-128, aes-cbc-256   RFC 3602 + RFC 4868: 16/32-byte AES key, 16-byte IV, HMAC-SHA256 with a 32-byte
 *                              key truncated to 16 bytes over SPI || seq || IV || ciphertext (encrypt-then-MAC).
 *
 * One SA object holds both directions of a tunnel (out: encap, in: decap), each with its own SPI, keys and
 * OpenSSL contexts (keyed once, at creation). Thread safety: tunctl_esp_encap may run in one thread while
 * tunctl_esp_decap runs in another (they share nothing mutable); two encaps (or two decaps) on one SA must not
 * run at once. tunctl_esp_stats may be read from any thread (counters are plain 64-bit words: a read may be a
 * packet behind).
 */
#ifndef TUNCTL_ESP_H
#define TUNCTL_ESP_H

#include <stddef.h>
#include <stdint.h>

enum tunctl_esp_alg {
  TUNCTL_ESP_AES_GCM_128 = 1,
  TUNCTL_ESP_AES_GCM_256 = 2,
  TUNCTL_ESP_AES_CBC_128_HMAC_SHA256 = 3, /* "aes-cbc-128" with hmac-sha256-128 */
  TUNCTL_ESP_AES_CBC_256_HMAC_SHA256 = 4, /* "aes-cbc-256" with hmac-sha256-128 */
};

#define TUNCTL_ESP_MAX_WINDOW 4096
#define TUNCTL_ESP_ICV_LEN 16
/* most bytes an ESP packet adds to its inner packet: header 8 + IV 16 + padding 15 + trailer 2 + ICV 16 */
#define TUNCTL_ESP_MAX_OVERHEAD 57

struct tunctl_esp_params {
  int alg;                      /* enum tunctl_esp_alg */
  uint32_t spi_out, spi_in;     /* host order, nonzero */
  /* aead: key + 4-byte salt (20 or 36 bytes); cbc: the AES key (16 or 32 bytes) */
  const uint8_t *key_out, *key_in;
  size_t key_out_len, key_in_len;
  /* cbc only: the HMAC-SHA256 keys (32 bytes); aead: NULL / 0 */
  const uint8_t *auth_out, *auth_in;
  size_t auth_out_len, auth_in_len;
  unsigned replay_window;       /* anti-replay window in packets (bits), 0..4096; 0 disables the check */
};

/* Results of encap and decap: 0 = ok, else the reason the packet was refused (encap) or dropped (decap). */
enum tunctl_esp_result {
  ESP_OK = 0,
  ESP_TRUNCATED,       /* decap: shorter than header + IV + ICV + trailer, or CBC ciphertext not whole blocks */
  ESP_BAD_SPI,         /* decap: SPI is not this SA's inbound SPI */
  ESP_REPLAY,          /* decap: sequence number already received (or 0) */
  ESP_TOO_OLD,         /* decap: sequence number left of the anti-replay window */
  ESP_BAD_ICV,         /* decap: integrity check failed (HMAC or GCM tag) */
  ESP_BAD_PAD,         /* decap: pad length beyond the payload or padding bytes not 1, 2, 3, ... */
  ESP_BAD_NEXT_HEADER, /* decap: next header not 4/41, or not the inner packet's IP version */
  ESP_DUMMY,           /* decap: next header 59, a dummy (TFC) packet, to be discarded silently (RFC 4303 2.6) */
  ESP_INNER_MALFORMED, /* decap: inner length inconsistent with its IP header; encap: not an IPv4/IPv6 packet */
  ESP_SEQ_EXHAUSTED,   /* encap: 2^32-1 packets sent; the sequence number never wraps: the SA needs rekeying */
  ESP_NO_ROOM,         /* encap/decap: the output buffer is too small */
  ESP_TOO_BIG,         /* encap: the outer IPv4 packet would exceed 65535 bytes */
  ESP_CRYPTO,          /* encap/decap: OpenSSL failed (not expected) */
  ESP__COUNT
};
extern const char *const tunctl_esp_result_names[ESP__COUNT];

struct tunctl_esp_sa;

/* Creates an SA from params (key bytes are copied into the OpenSSL contexts). NULL on error, *err (if err) then
 * says why (a static string). Draws the per-SA IV salt from RAND_bytes. */
struct tunctl_esp_sa *tunctl_esp_sa_new(const struct tunctl_esp_params *params, const char **err);
/* Frees the SA; key material (in the SA and in its OpenSSL contexts) is zeroed (OPENSSL_cleanse). NULL is ok. */
void tunctl_esp_sa_free(struct tunctl_esp_sa *sa);

/* "aes-gcm-128", "aes-gcm-256", "aes-cbc-128", "aes-cbc-256" <-> enum tunctl_esp_alg (0 / NULL if unknown) */
int tunctl_esp_alg_from_name(const char *name);
const char *tunctl_esp_alg_name(int alg);
int tunctl_esp_sa_alg(const struct tunctl_esp_sa *sa);

/* ESP header + IV: where the payload starts in an ESP packet (16 for GCM, 24 for CBC) */
size_t tunctl_esp_header_len(const struct tunctl_esp_sa *sa);
/* length of the ESP packet (header, IV, payload, padding, trailer, ICV) carrying an inner packet of inner_len */
size_t tunctl_esp_encap_len(const struct tunctl_esp_sa *sa, size_t inner_len);
/* largest inner packet whose outer IPv4 + ESP packet fits outer_mtu (the kernel's esp4_get_mtu, tunnel mode) */
int tunctl_esp_max_inner(const struct tunctl_esp_sa *sa, int outer_mtu);

/* Tunnel-mode encapsulation of one inner IPv4/IPv6 packet into out (cap bytes): ESP header (SPI, next sequence
 * number, starting at 1), explicit IV, encrypted inner || padding 1,2,3.. || pad length || next header (4 / 41),
 * ICV. *out_len = tunctl_esp_encap_len(). inner may lie at out + tunctl_esp_header_len(sa) (no copy then) or
 * anywhere else (copied). Returns ESP_OK or ESP_SEQ_EXHAUSTED / ESP_INNER_MALFORMED / ESP_NO_ROOM / ESP_TOO_BIG /
 * ESP_CRYPTO (counted in the stats; no sequence number is consumed then). */
int tunctl_esp_encap(struct tunctl_esp_sa *sa, const uint8_t *inner, size_t len, uint8_t *out, size_t cap,
                     size_t *out_len);

/* Decapsulates one ESP packet (the bytes after the outer IPv4 header) into out (cap >= len - header - ICV; out
 * may be esp + tunctl_esp_header_len(sa) to decrypt in place, else must not overlap esp). Order: SPI, length,
 * anti-replay check, ICV (constant time; before decrypting for CBC), anti-replay update, decrypt, padding,
 * next header, inner length. On ESP_OK: the inner packet is out[0 .. *out_len) (TFC padding after it removed),
 * *next_header is 4 or 41. Any other result is a drop reason (counted in the stats). */
int tunctl_esp_decap(struct tunctl_esp_sa *sa, const uint8_t *esp, size_t len, uint8_t *out, size_t cap,
                     size_t *out_len, int *next_header);

struct tunctl_esp_stats {
  uint64_t tx_packets, tx_bytes; /* ESP packets (bytes) produced */
  uint64_t rx_packets, rx_bytes; /* ESP packets (bytes) accepted */
  uint64_t tx_errors[ESP__COUNT]; /* encap refusals by reason */
  uint64_t rx_drops[ESP__COUNT];  /* decap drops by reason */
  uint32_t tx_seq;                /* last sequence number sent */
  uint32_t rx_seq;                /* highest authenticated sequence number received */
};
void tunctl_esp_stats(const struct tunctl_esp_sa *sa, struct tunctl_esp_stats *st);

/* Moves the outbound sequence number forward: the next packet carries last_sent + 1 (e.g. to resume after a
 * restart, so that the peer's anti-replay window does not drop the packets of a static SA). -1 if it would go
 * backwards. The IV counter is separate and never goes back. */
int tunctl_esp_set_tx_seq(struct tunctl_esp_sa *sa, uint32_t last_sent);

/* Outer IPv4 header as the kernel's xfrm tunnel mode builds it (xfrm4_tunnel_encap_add): protocol 50, tos =
 * the inner DSCP (0 with dont_encap_dscp) with the inner ECN encapsulated (CE becomes ECT(0); cleared with noecn),
 * DF copied from an IPv4 inner packet and always set for an IPv6 one (never with nopmtudisc), ttl (0: 64, the
 * kernel's default hop limit), id (0: left to the raw socket, IP_HDRINCL fills it), header checksum. */
struct tunctl_esp_outer {
  uint32_t saddr, daddr; /* network order */
  uint8_t ttl;
  uint16_t id;           /* host order */
  int dont_encap_dscp, noecn, nopmtudisc;
};
/* Writes the 20-byte header into o for an ESP packet of esp_len bytes carrying inner; returns 20, or 0 if the
 * total would exceed 65535. */
size_t tunctl_esp_outer_ipv4(uint8_t *o, size_t esp_len, const uint8_t *inner, const struct tunctl_esp_outer *oh);

/* On receive, as xfrm tunnel mode (ipip_ecn_decapsulate, unless the SA has noecn): an outer CE mark sets CE on
 * an ECN-capable (ECT) inner packet (IPv4 header checksum updated); a not-ECT inner packet is left alone. inner is
 * a decapsulated packet (IPv4 >= 20 / IPv6 >= 40 bytes). Returns 1 if it marked the packet. */
int tunctl_esp_ecn_decap(uint8_t outer_tos, uint8_t *inner, size_t len);

/* Tests and fuzzing only. The next encap uses iv (8 bytes for GCM, 16 for CBC) as its explicit IV instead of
 * the generated one (to reproduce known packets byte for byte). */
void tunctl_esp_test_next_iv(struct tunctl_esp_sa *sa, const uint8_t *iv);
/* Forgets the sequence numbers sent and received (the next packet is seq 1, the replay window is empty); the IV
 * counter keeps going. */
void tunctl_esp_test_reset(struct tunctl_esp_sa *sa);
/* Encrypts and authenticates payload (inner packet, padding and trailer already in place; CBC: whole blocks) as
 * the next outbound packet, without the checks encap makes: builds packets with bad padding or next headers. */
int tunctl_esp_test_seal(struct tunctl_esp_sa *sa, const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
                         size_t *out_len);

#endif
