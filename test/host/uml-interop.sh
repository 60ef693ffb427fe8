#!/usr/bin/env bash
# Runs INSIDE user-mode-linux (test/uml/uml.sh test/host/uml-interop.sh): for gre (key, csum, seq), ipip, sit and
# isatap, namespace K has a real kernel tunnel and namespace U the userspace encapsulator; they must ping each
# other both ways. Prints "INTEROP <mode> ok|FAIL …" lines and the userspace drop counters.
set -u
cd "${TUNCTL_REPO:?}"
cli="node dist/userspace/cli.js"
[ -f dist/userspace/cli.js ] || cli="node --import tsx src/userspace/cli.ts"
K=io-k U=io-u
ip netns add $K; ip netns add $U
ip -n $K link set lo up; ip -n $U link set lo up
ip -n $K link add ul0 type veth peer name ul0 netns $U
ip -n $K addr add 198.51.100.1/24 dev ul0; ip -n $K link set ul0 up
ip -n $U addr add 198.51.100.2/24 dev ul0; ip -n $U link set ul0 up
# a kernel sender on veth leaves GRE checksums to "hardware": compute them in software like a real NIC would
ip netns exec $K ethtool -K ul0 tx off >/dev/null || { echo "INTEROP setup FAIL: ethtool -K ul0 tx off did not work (apt-get install ethtool)"; exit 1; }
sleep 1
# Each kernel end k1 comes up only after the userspace end u1 is up: a kernel gre or sit device sends IPv6 (DAD,
# MLD, router solicitations) as soon as it is up, and a packet that reaches the engine while u1 is still down is
# taken by no tunnel (the kernel's lookup wants IFF_UP too) and counted as a no_tunnel drop.

check() { # MODE KTARGET UTARGET
  local mode=$1 kt=$2 ut=$3 fam=-4
  case $kt in *:*) fam=-6 ;; esac
  if ip netns exec $U ping $fam -c 2 -i 0.3 -W 3 "$kt" >/dev/null 2>&1 && ip netns exec $K ping $fam -c 2 -i 0.3 -W 3 "$ut" >/dev/null 2>&1; then
    echo "INTEROP $mode ok"
  else
    echo "INTEROP $mode FAIL"
    ip -n $K -s -d link show k1
    cat /run/tunctl/$U/u1.log 2>/dev/null | tail -5
  fi
  sleep 1.2
  $cli observe $U | tr -d ' \n' | sed 's/^/COUNTERS '"$mode"' /'; echo
  $cli stop u1 $U
  ip -n $K link del k1
}

ip -n $K link add k1 type gre local 198.51.100.1 remote 198.51.100.2 key 42 csum seq
ip -n $K addr add 10.7.0.1/30 dev k1
$cli start u1 '{"mode":"gre","local":"198.51.100.2","remote":"198.51.100.1","ikey":42,"okey":42,"icsum":true,"ocsum":true,"iseq":true,"oseq":true}' $U >/dev/null
ip -n $U addr add 10.7.0.2/30 dev u1; ip -n $U link set u1 up; ip -n $K link set k1 up
check gre 10.7.0.1 10.7.0.2

ip -n $K link add k1 type ipip local 198.51.100.1 remote 198.51.100.2
ip -n $K addr add 10.7.1.1/30 dev k1
$cli start u1 '{"mode":"ipip","local":"198.51.100.2","remote":"198.51.100.1","proto":"ipip"}' $U >/dev/null
ip -n $U addr add 10.7.1.2/30 dev u1; ip -n $U link set u1 up; ip -n $K link set k1 up
check ipip 10.7.1.1 10.7.1.2

ip -n $K link add k1 type sit local 198.51.100.1 remote 198.51.100.2
ip -n $K addr add 2001:db8:71::1/64 dev k1 nodad
$cli start u1 '{"mode":"sit","local":"198.51.100.2","remote":"198.51.100.1","proto":"ip6ip"}' $U >/dev/null
ip -n $U addr add 2001:db8:71::2/64 dev u1 nodad; ip -n $U link set u1 up; ip -n $K link set k1 up
check sit 2001:db8:71::1 2001:db8:71::2

ip -n $K tunnel add k1 mode isatap local 198.51.100.1
ip -n $K addr add 2001:db8:72::5efe:c633:6401/64 dev k1 nodad
$cli start u1 '{"mode":"isatap","local":"198.51.100.2","remote":"any","proto":"ip6ip","routers":[]}' $U >/dev/null
ip -n $U addr add 2001:db8:72::5efe:c633:6402/64 dev u1 nodad; ip -n $U link set u1 up; ip -n $K link set k1 up
check isatap 2001:db8:72::5efe:c633:6401 2001:db8:72::5efe:c633:6402

ip netns del $K; ip netns del $U
echo "INTEROP done"
