#!/usr/bin/env bash
# Static ESP SAs for the vti demo/test (key 7 = xfrm mark 7), AES-GCM; namespaces A (198.51.100.1), B (.2).
set -euo pipefail
A=$1 B=$2
k=0x0123456789abcdef0123456789abcdef01234567
for ns in $A $B; do
  for dir in "198.51.100.1 198.51.100.2 0x100" "198.51.100.2 198.51.100.1 0x200"; do
    set -- $dir
    ip -n $ns xfrm state add src $1 dst $2 proto esp spi $3 mode tunnel aead 'rfc4106(gcm(aes))' $k 128 mark 7
  done
  ip netns exec $ns sysctl -qw net.ipv4.conf.vti1.disable_policy=1
done
ip -n $A xfrm policy add dir out src 0.0.0.0/0 dst 0.0.0.0/0 tmpl src 198.51.100.1 dst 198.51.100.2 proto esp mode tunnel mark 7
ip -n $A xfrm policy add dir in src 0.0.0.0/0 dst 0.0.0.0/0 tmpl src 198.51.100.2 dst 198.51.100.1 proto esp mode tunnel mark 7
ip -n $B xfrm policy add dir out src 0.0.0.0/0 dst 0.0.0.0/0 tmpl src 198.51.100.2 dst 198.51.100.1 proto esp mode tunnel mark 7
ip -n $B xfrm policy add dir in src 0.0.0.0/0 dst 0.0.0.0/0 tmpl src 198.51.100.1 dst 198.51.100.2 proto esp mode tunnel mark 7
