/* TUN offloads in user space (IFF_VNET_HDR): TSO segmentation on TX, TCP coalescing (GRO) on RX. */
#ifndef TUNCTL_OFFLOAD_H
#define TUNCTL_OFFLOAD_H

#include <linux/virtio_net.h>
#include <stddef.h>
#include <stdint.h>

#define TUNCTL_GRO_MAX 65535

struct tunctl_tso {
  int v6;
  size_t iphl, hl, payload;
};

/* completes a CHECKSUM_PARTIAL packet: checksum from start, stored at start+off */
int tunctl_finish_csum(uint8_t *pkt, size_t len, unsigned start, unsigned off);
/* parses a TCP TSO packet; 0 on success */
int tunctl_tso_parse(const uint8_t *pkt, size_t len, struct tunctl_tso *t);
/* writes segment i (payload bytes [i*mss, (i+1)*mss)) with fixed-up headers and checksums; returns its length, 0 past the end */
size_t tunctl_tso_segment(const uint8_t *pkt, const struct tunctl_tso *t, unsigned mss, unsigned i, uint8_t *out);

struct tunctl_gro {
  uint8_t buf[TUNCTL_GRO_MAX + 64];
  size_t len, hl, iphl;
  int v6, closed;
  unsigned mss, nseg;
  uint32_t next_seq;
};

void tunctl_gro_reset(struct tunctl_gro *g);
/* 1: packet taken (started or appended); 0: not coalescable (write it alone); -1: does not fit the pending train
 * (flush, reset, and add again) */
int tunctl_gro_add(struct tunctl_gro *g, const uint8_t *pkt, size_t len);
/* finalises the pending packet: returns its length (0 if none) and the virtio header to write before it */
size_t tunctl_gro_finish(struct tunctl_gro *g, struct virtio_net_hdr *vh);

#endif
