#!/usr/bin/env bash
# Throughput (one iperf3 TCP stream) and ping latency between two namespaces joined by veth, through:
#   veth (no tunnel), kernel VXLAN, OpenVPN p2p without crypto, tunctl userspace GRE (key+csum) and IPIP.
# Usage (root): bench/userspace.sh [SECONDS=5]   Prints a markdown table; raw output in bench/results/.
# Everything runs in namespaces it creates and removes (also on failure); nothing touches the host's network.
set -euo pipefail
secs=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
[ "$(id -u)" = 0 ] || { echo "bench/userspace.sh needs root" >&2; exit 77; }
for c in iperf3 ping; do command -v $c >/dev/null || { echo "$c missing" >&2; exit 69; }; done
# the comparison needs OpenVPN: installed from Debian when missing (it is never started outside the namespaces)
if ! command -v openvpn >/dev/null; then
  echo "bench: installing openvpn (Debian)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openvpn >/dev/null; } ||
    { echo "bench: could not install openvpn" >&2; exit 69; }
  # the package enables no tunnel by itself; make sure no service was started for one
  systemctl disable --now openvpn >/dev/null 2>&1 || true
fi
[ -f build/Release/tunctl_native.node ] || node scripts/build-native.mjs
cli=(node dist/userspace/cli.js)
[ -f dist/userspace/cli.js ] || cli=(node --import tsx src/userspace/cli.ts)
id=$$
A=tunctl-b-a$id B=tunctl-b-b$id
out=bench/results/userspace-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
ovpn_pids=()

cleanup() {
  set +e
  for p in "${ovpn_pids[@]}"; do kill "$p" 2>/dev/null; done
  for ns in $A $B; do
    for n in ugre ugrek uipip ugrenooff; do "${cli[@]}" stop $n $ns >/dev/null 2>&1; done
    ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del $ns 2>/dev/null
    rm -rf /run/tunctl/ns/$ns
  done
}
trap cleanup EXIT

ip netns add $A; ip netns add $B
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A link add ul0 type veth peer name ul0 netns $B
ip -n $A addr add 198.51.100.1/24 dev ul0; ip -n $A link set ul0 up
ip -n $B addr add 198.51.100.2/24 dev ul0; ip -n $B link set ul0 up

# kernel VXLAN
ip -n $A link add vx0 type vxlan id 42 local 198.51.100.1 remote 198.51.100.2 dstport 4789 dev ul0
ip -n $B link add vx0 type vxlan id 42 local 198.51.100.2 remote 198.51.100.1 dstport 4789 dev ul0
ip -n $A addr add 10.20.0.1/24 dev vx0; ip -n $A link set vx0 up
ip -n $B addr add 10.20.0.2/24 dev vx0; ip -n $B link set vx0 up

# OpenVPN point-to-point without crypto
if command -v openvpn >/dev/null; then
  for side in a b; do
    if [ $side = a ]; then ns=$A l=198.51.100.1 r=198.51.100.2 il=10.30.0.1 ir=10.30.0.2; else ns=$B l=198.51.100.2 r=198.51.100.1 il=10.30.0.2 ir=10.30.0.1; fi
    ip netns exec $ns openvpn --dev ovpn0 --dev-type tun --proto udp --local $l --remote $r --port 1194 \
      --ifconfig $il $ir --cipher none --auth none \
      --verb 1 >"$out/openvpn-$side.log" 2>&1 &
    ovpn_pids+=($!)
  done
fi

# tunctl userspace encapsulator: GRE with key and checksum, IPIP
"${cli[@]}" start ugre '{"mode":"gre","local":"198.51.100.1","remote":"198.51.100.2","ikey":42,"okey":42,"icsum":true,"ocsum":true}' $A >/dev/null
"${cli[@]}" start ugre '{"mode":"gre","local":"198.51.100.2","remote":"198.51.100.1","ikey":42,"okey":42,"icsum":true,"ocsum":true}' $B >/dev/null
"${cli[@]}" start uipip '{"mode":"ipip","local":"198.51.100.1","remote":"198.51.100.2","proto":"ipip"}' $A >/dev/null
"${cli[@]}" start uipip '{"mode":"ipip","local":"198.51.100.2","remote":"198.51.100.1","proto":"ipip"}' $B >/dev/null
# GRE with a key but no checksums (what most GRE deployments run)
"${cli[@]}" start ugrek '{"mode":"gre","local":"198.51.100.1","remote":"198.51.100.2","ikey":44,"okey":44}' $A >/dev/null
"${cli[@]}" start ugrek '{"mode":"gre","local":"198.51.100.2","remote":"198.51.100.1","ikey":44,"okey":44}' $B >/dev/null
ip -n $A addr add 10.70.0.1/30 dev ugrek; ip -n $A link set ugrek up
ip -n $B addr add 10.70.0.2/30 dev ugrek; ip -n $B link set ugrek up
# the same GRE without TUN offloads (batching only), for comparison
TUNCTL_OFFLOAD=0 "${cli[@]}" start ugrenooff '{"mode":"gre","local":"198.51.100.1","remote":"198.51.100.2","ikey":43,"okey":43,"icsum":true,"ocsum":true}' $A >/dev/null
TUNCTL_OFFLOAD=0 "${cli[@]}" start ugrenooff '{"mode":"gre","local":"198.51.100.2","remote":"198.51.100.1","ikey":43,"okey":43,"icsum":true,"ocsum":true}' $B >/dev/null
ip -n $A addr add 10.60.0.1/30 dev ugrenooff; ip -n $A link set ugrenooff up
ip -n $B addr add 10.60.0.2/30 dev ugrenooff; ip -n $B link set ugrenooff up
ip -n $A addr add 10.40.0.1/30 dev ugre; ip -n $A link set ugre up
ip -n $B addr add 10.40.0.2/30 dev ugre; ip -n $B link set ugre up
ip -n $A addr add 10.50.0.1/30 dev uipip; ip -n $A link set uipip up
ip -n $B addr add 10.50.0.2/30 dev uipip; ip -n $B link set uipip up
sleep 3 # OpenVPN handshake

measure() { # NAME TARGET
  local name=$1 target=$2 bps lat
  if ! ip netns exec $A ping -c 2 -W 2 "$target" >/dev/null 2>&1; then
    printf '| %-34s | %12s | %14s |\n' "$name" "unreachable" "-"
    return
  fi
  # latency first, on an idle path
  lat=$(ip netns exec $A ping -c 50 -i 0.02 -q "$target" 2>/dev/null | awk -F'/' '/rtt/ {print $5}')
  ip netns exec $B iperf3 -s -1 -D -B "$target" >/dev/null 2>&1
  sleep 0.3
  ip netns exec $A iperf3 -c "$target" -t "$secs" -J >"$out/$name.json" 2>&1 || true
  bps=$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log((j.end.sum_received.bits_per_second/1e9).toFixed(2))' "$out/$name.json" 2>/dev/null || echo "?")
  sleep 1
  printf '| %-34s | %12s | %14s |\n' "$name" "$bps" "$lat"
  echo "$name $bps $lat" >>"$out/summary.txt"
}

echo "| path (one TCP stream, ${secs}s, $(nproc) CPUs) | Gbit/s | ping avg (ms) |"
echo "|------------------------------------|-------------:|---------------:|"
measure veth 198.51.100.2
measure kernel-vxlan 10.20.0.2
measure openvpn-p2p-nocrypto 10.30.0.2
measure tunctl-userspace-gre-key-csum 10.40.0.2
measure tunctl-userspace-gre-key 10.70.0.2
measure tunctl-userspace-ipip 10.50.0.2
measure tunctl-userspace-gre-no-offload 10.60.0.2
"${cli[@]}" observe $A >"$out/counters-a.json"
echo
ovpn=$(awk '$1=="openvpn-p2p-nocrypto"{print $2}' "$out/summary.txt")
gre=$(awk '$1=="tunctl-userspace-gre-key-csum"{print $2}' "$out/summary.txt")
if [ -n "$ovpn" ] && [ -n "$gre" ]; then
  node -e 'const [o,g]=process.argv.slice(1).map(Number);console.log(`userspace GRE / OpenVPN = ${(g/o).toFixed(2)}x`)' "$ovpn" "$gre"
fi
echo "raw results: $out"
