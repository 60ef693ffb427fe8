/* tunctl userspace vti: the data path of a vti tunnel (net/ipv4/ip_vti.c + xfrm4 tunnel mode) over the ESP codec
 * (esp.h). Pure: no I/O, no allocation after tunctl_vti_init; the data plane (dataplane.c) feeds it packets read
 * from the TUN device and from a protocol-50 raw socket.
 *
 * Transmit (vti_tunnel_xmit / vti_xmit, then xfrm4 tunnel output): every packet the vti device sends uses the
 * tunnel's one outbound SA (the kernel's out policy carries the vti's okey as mark and matches everything);
 * no SA → dropped as `no_state` (the kernel counts a carrier error). Packets larger than the xfrm path MTU
 * (esp4_get_mtu of the underlay MTU) get ICMP "fragmentation needed" (IPv4 with DF) / "packet too big" (IPv6,
 * at least 1280) back, as vti_xmit does; an IPv4 packet without DF goes out and the outer packet is fragmented.
 * Outer header: protocol 50, tos/ECN from the inner packet, DF from the inner packet (always for IPv6), TTL 64
 * (the route's default hop limit), IP id left to the raw socket (IP_HDRINCL fills in a zero id).
 *
 * Receive (vti_rcv_proto → vti_input → xfrm_input → vti_rcv_cb): the packet's (source, destination) must be the
 * tunnel's (ip_tunnel_lookup on saddr/daddr; otherwise it is not this tunnel's: TUNCTL_VTI_OTHER, left to a
 * sibling and not counted as a drop); then the SA is looked up by (destination, SPI) with the vti's ikey as
 * mark — the one inbound SA of this tunnel, so a different SPI (or no SA at all) is `no_state` (the kernel's
 * XfrmInNoStates); then anti-replay, ICV, replay window update, padding, next header (4 or 41: IPv4 and IPv6
 * inside), inner length; ECN: an outer CE marks an ECT inner packet CE (ipip_ecn_decapsulate).
 *
 * Outbound sequence numbers: the codec never wraps them (`seq_exhausted`); on top of that, `seq_limit` lets the
 * owner hand out sequence numbers in reserved blocks (persisted before use, see src/userspace/daemon.ts), so a
 * restart resumes above anything sent before and a kernel peer's replay window keeps accepting: a packet beyond
 * the reservation is dropped as `seq_reserved` until the limit is raised.
 *
 * Threads: encap runs in the TX thread, decap in the RX thread (the codec allows exactly that); the counters are
 * written by one thread each and may be read by any (a read may be a packet behind). */
#ifndef TUNCTL_VTI_H
#define TUNCTL_VTI_H

#include "esp.h"

#include <stddef.h>
#include <stdint.h>

/* receive drop reasons: the vti's own, then the codec's (tunctl_esp_result) at TUNCTL_VTI_RX_ESP + result */
enum tunctl_vti_rx_drop {
  VRX_OK = 0,
  VRX_MALFORMED, /* outer IPv4 header unparsable, not protocol 50, or a fragment */
  VRX_NO_STATE,  /* no SA for (destination, SPI) with this vti's mark (XfrmInNoStates); also: no SA configured */
  VRX_ESP,       /* first codec reason; ESP_OK is never counted */
};
#define TUNCTL_VTI_RX__COUNT (VRX_ESP + ESP__COUNT)
extern const char *const tunctl_vti_rx_names[TUNCTL_VTI_RX__COUNT];

/* transmit drop reasons */
enum tunctl_vti_tx_drop {
  VTX_OK = 0,
  VTX_NO_STATE,      /* no outbound SA */
  VTX_MALFORMED,     /* not an IPv4/IPv6 packet */
  VTX_SEQ_EXHAUSTED, /* 2^32 - 1 packets sent: the SA is spent, it needs new keys (never wraps) */
  VTX_SEQ_RESERVED,  /* beyond the reserved (persisted) sequence numbers; the owner raises seq_limit */
  VTX_TOO_BIG,       /* the outer packet would exceed 65535 bytes, or no ICMP could be built */
  VTX_NO_ROOM,       /* buffer too small (a caller bug) */
  VTX_CRYPTO,        /* OpenSSL failed */
  VTX__COUNT
};
extern const char *const tunctl_vti_tx_names[VTX__COUNT];

struct tunctl_vti {
  uint32_t local, remote;    /* network order (fixed addresses: an ipsec vti has both) */
  uint32_t ikey, okey;       /* host order: the marks of the inbound / outbound SA and policies */
  struct tunctl_esp_sa *sa;  /* both directions; NULL: the vti has no SAs and carries nothing */
  uint32_t spi_in;           /* network order copy of the inbound SPI (the lookup key with local) */
  struct tunctl_esp_outer outer;
  int pmtu;                  /* underlay path MTU towards remote (0: 1500) for the xfrm MTU */
  uint32_t seq_limit;        /* last outbound sequence number reserved; 0: no limit (besides 2^32 - 1) */
  uint32_t tx_seq;           /* last outbound sequence number sent */
  uint64_t tx_packets, tx_bytes;     /* ESP packets sent (outer bytes) */
  uint64_t rx_packets, rx_bytes;     /* ESP packets accepted (outer bytes) */
  uint64_t rx_other;                 /* not this tunnel's addresses */
  uint64_t icmp_sent;
  uint64_t txdrops[VTX__COUNT];
  uint64_t rxdrops[TUNCTL_VTI_RX__COUNT];
};

/* Sets up v for the tunnel local → remote with marks ikey/okey, the SA's inbound SPI (host order) and the SA (owned by v from now on; may be NULL).
 * resume_seq: the outbound sequence number to continue after (0: start at 1). -1 if resume_seq cannot be set. */
int tunctl_vti_init(struct tunctl_vti *v, uint32_t local, uint32_t remote, uint32_t ikey, uint32_t okey,
                    uint32_t spi_in, struct tunctl_esp_sa *sa, uint32_t resume_seq);
/* frees the SA (its keys are cleansed) */
void tunctl_vti_free(struct tunctl_vti *v);

/* largest inner packet that leaves as one outer packet: esp4_get_mtu of the path MTU */
int tunctl_vti_xfrm_mtu(const struct tunctl_vti *v);

enum tunctl_vti_tx { VTI_TX_SEND = 0, VTI_TX_ICMP = 1, VTI_TX_DROP = 2 };
/* Encapsulates the inner packet at buf + TUNCTL_VTI_HEADROOM (len bytes; buf holds cap bytes) in place.
 * VTI_TX_SEND: *out, *out_len is the outer IPv4 packet (inside buf). VTI_TX_ICMP: an ICMP error for the inner
 * sender was built in icmpbuf (>= 1328 bytes): *out, *out_len. VTI_TX_DROP: counted in txdrops. */
#define TUNCTL_VTI_HEADROOM 64
int tunctl_vti_encap(struct tunctl_vti *v, uint8_t *buf, size_t cap, size_t len, uint8_t **out, size_t *out_len,
                     uint8_t *icmpbuf);

/* Decapsulates one received outer IPv4 packet (header included) in place. Returns 0 with *inner, *inner_len
 * pointing into pkt, TUNCTL_VTI_OTHER when the addresses are not this tunnel's (counted in rx_other only), or
 * a tunctl_vti_rx_drop (> 0, counted in rxdrops). */
#define TUNCTL_VTI_OTHER (-1)
int tunctl_vti_decap(struct tunctl_vti *v, uint8_t *pkt, size_t len, uint8_t **inner, size_t *inner_len);

#endif
