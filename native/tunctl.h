/* tunctl userspace encapsulator: tunnel config, pure packet codecs (encap/decap), data plane API. */
#ifndef TUNCTL_H
#define TUNCTL_H

#include <stddef.h>
#include <stdint.h>

enum tunctl_mode { TM_IPIP = 1, TM_GRE = 2, TM_SIT = 3, TM_ISATAP = 4, TM_VTI = 5 /* data path: vti.c */ };

/* inner protocols accepted (bit set) */
#define TP_IPV4 1
#define TP_IPV6 2

#define TUNCTL_MAX_ROUTERS 16
/* room in front of an inner packet for the outer headers: IPv4 20 + GRE 16 */
#define TUNCTL_HEADROOM 64
#define TUNCTL_MAX_PKT 65535

struct tunctl_cfg {
  int mode;
  uint32_t local;  /* network order; 0 = any */
  uint32_t remote; /* network order; 0 = any */
  uint8_t ttl;     /* 0 = inherit */
  uint8_t tos;     /* 1 = inherit (bit 0 set: inherit) */
  int pmtudisc;
  int ignore_df;
  int has_ikey, has_okey;
  uint32_t ikey, okey; /* host order */
  int icsum, ocsum, iseq, oseq;
  int inner; /* TP_IPV4 | TP_IPV6 accepted */
  /* sit/isatap 6rd (defaults to 6to4: 2002::/16, relay 0/0, as the kernel does) */
  uint8_t sixrd_prefix[16];
  int sixrd_plen;
  uint32_t relay_prefix; /* network order */
  int relay_plen;
  uint32_t routers[TUNCTL_MAX_ROUTERS]; /* network order */
  int router_default[TUNCTL_MAX_ROUTERS];
  int nrouters;
  int mtu;
  uint32_t fwmark;
  /* set by the receive dispatch (dispatch.c tunctl_receive): the packet was selected for this tunnel by the
   * kernel's lookup rules, so tunctl_decap skips the identity checks (addresses, key) the lookup already made */
  int dispatched;
};

/* per-direction state */
struct tunctl_rxstate { uint32_t i_seqno; };
struct tunctl_txstate { uint32_t o_seqno; };

enum tunctl_drop {
  DR_OK = 0,
  DR_MALFORMED,     /* outer header unparsable (bad version/ihl/length/checksum, fragment) */
  DR_TRUNCATED,     /* shorter than the headers it announces */
  DR_BAD_PROTO,     /* outer protocol not this tunnel's */
  DR_BAD_SOURCE,    /* outer source != remote */
  DR_BAD_DEST,      /* outer destination != local */
  DR_BAD_KEY,       /* GRE key absent/present/different from ikey */
  DR_BAD_CSUM,      /* GRE checksum wrong */
  DR_CSUM_FLAGS,    /* GRE checksum present without icsum or missing with icsum */
  DR_SEQ,           /* GRE sequence missing, duplicate or out of order with iseq */
  DR_GRE_FLAGS,     /* GRE version != 0 or routing present */
  DR_INNER_PROTO,   /* inner protocol not accepted by this tunnel */
  DR_INNER_MALFORMED, /* inner header unparsable */
  DR_ECN,           /* outer CE with not-ECT inner (RFC 6040) */
  DR_SPOOFED,       /* sit/isatap: inner address does not match the outer one */
  DR_NO_TUNNEL,     /* no tunnel of the namespace takes it (counted by one tunnel: see dispatch.h) */
  DR__COUNT
};

extern const char *const tunctl_drop_names[DR__COUNT];

/* Result of encap: either an outer packet to send, an ICMP error to write back to TUN, or a drop. */
enum tunctl_tx_result { TX_SEND = 0, TX_ICMP = 1, TX_DROP = 2 };

enum tunctl_txdrop {
  TXD_NONE = 0,
  TXD_MALFORMED,   /* not an IPv4/IPv6 packet */
  TXD_INNER_PROTO, /* inner protocol not carried by this mode */
  TXD_NO_ROUTE,    /* remote any and no destination derivable */
  TXD_TOO_BIG,     /* too big and no ICMP possible */
  TXD__COUNT
};
extern const char *const tunctl_txdrop_names[TXD__COUNT];

/* Decapsulates one received outer IPv4 packet (IP header included) in place.
 * On DR_OK *inner / *inner_len point into pkt. Pure except rx->i_seqno and ECN marking of the inner header. */
int tunctl_decap(const struct tunctl_cfg *cfg, struct tunctl_rxstate *rx, uint8_t *pkt, size_t len,
                 uint8_t **inner, size_t *inner_len);

/* Encapsulates the inner packet at buf+TUNCTL_HEADROOM (len bytes), writing the outer headers in front.
 * TX_SEND: *out, *out_len is the outer packet, *dst the outer destination (network order).
 * TX_ICMP: *out, *out_len is an ICMP error (frag needed / packet too big) to write to the TUN device,
 *          built in icmpbuf (size >= 1280 + 48).
 * TX_DROP: *why is a tunctl_txdrop. */
int tunctl_encap(const struct tunctl_cfg *cfg, struct tunctl_txstate *tx, uint8_t *buf, size_t len,
                 uint8_t **out, size_t *out_len, uint32_t *dst, uint8_t *icmpbuf, int *why);

/* ICMP "fragmentation needed" (IPv4 with DF) / "packet too big" (IPv6) for inner with the given MTU, written to out
 * (>= 1328 bytes); 0 if none is due */
size_t tunctl_icmp_too_big(const uint8_t *inner, size_t len, int mtu, uint8_t *out);

/* kernel default MTU for the configuration (ipip/sit 1480, gre 1476 - 4 per option) */
int tunctl_default_mtu(const struct tunctl_cfg *cfg);
/* ipv6_addr_is_isatap: the interface identifier of v6 is 0:5efe:a.b.c.d or 200:5efe:a.b.c.d */
int tunctl_is_isatap_addr(const uint8_t v6[16]);
int tunctl_outer_proto(const struct tunctl_cfg *cfg);
uint16_t tunctl_csum(const void *data, size_t len, uint32_t sum);
/* ICMPv6 error (type, code, info) from src6 to the source of IPv6 packet `inner` (len bytes), quoting it as
 * icmp6_send does (up to IPV6_MIN_MTU - 48 bytes); returns its length (at most 1280) */
size_t tunctl_icmp6_build(uint8_t type, uint8_t code, uint32_t info, const uint8_t *src6, const uint8_t *inner, size_t len,
                          uint8_t *o);
/* ones-complement partial sum (unfolded, big-endian word values) */
uint32_t tunctl_sum(const void *data, size_t len, uint32_t sum);
void tunctl_cfg_init(struct tunctl_cfg *cfg);

#endif
