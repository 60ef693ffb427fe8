#!/usr/bin/env bash
# Runs INSIDE user-mode-linux (test/host/vti-uml.test.ts boots it: test/uml/uml.sh test/uml/vti-userspace.sh):
# tunctl's userspace vti (namespace U, driver: userspace beside the loaded ip_vti and esp4: accepted for vti, whose
# ESP the kernel drops silently when it has no SA, as "kernel-silent" below shows)
# against a REAL kernel vti + esp4 in namespace K:
#   gcm   kernel SAs written by hand with ip xfrm, aes-gcm-128 (rfc4106(gcm(aes)))
#   cbc   kernel SAs written by hand with ip xfrm, aes-cbc-256 + hmac-sha256 (cbc(aes) + hmac(sha256) trunc 128)
#   tunctl  the kernel side applied by tunctl's kernel driver (its own SAs and policies), aes-gcm-128
# each: ping both ways, iperf3 both ways, an AF_PACKET capture on U's veth during a ping (only ESP on the wire),
# and the kernel's silence about ESP for the userspace vti (XfrmInNoStates in U, no ICMP unreachable sent).
# Then kernel vti <-> kernel vti iperf3 for the benchmark (BENCH lines). Prints VTIUML lines; the host test asserts.
set -u
cd "${TUNCTL_REPO:?}"
tunctl() { node "$TUNCTL_REPO/bin/run" "$@"; }
export NO_COLOR=1
K=vu-k U=vu-u
A=198.51.100.1 B=198.51.100.2
KOUT=0x000102030405060708090a0b0c0d0e0fa0a1a2a3   # K→U (gcm: 16-byte key + salt)
KIN=0xff0102030405060708090a0b0c0d0e0fa0a1a2a3
COUT=0x$(printf '%064x' 0x1111)                   # cbc: 32-byte keys
CIN=0x$(printf '%064x' 0x2222)
AOUT=0x$(printf '%064x' 0x3333)
AIN=0x$(printf '%064x' 0x4444)
mkdir -p /run/vtiuml && cd /run/vtiuml

pair() {
  ip netns del $K 2>/dev/null; ip netns del $U 2>/dev/null
  ip netns add $K; ip netns add $U
  ip -n $K link set lo up; ip -n $U link set lo up
  ip -n $K link add ul0 type veth peer name ul0 netns $U
  ip -n $K addr add $A/24 dev ul0; ip -n $K link set ul0 up
  ip -n $U addr add $B/24 dev ul0; ip -n $U link set ul0 up
}

kernel_vti() { # NS SELF PEER INNER: the device (key 7 = mark of the SAs and policies)
  ip -n $1 link add vti1 type vti local $2 remote $3 key 7
  ip -n $1 addr add $4/30 dev vti1
  ip netns exec $1 sysctl -q -w net.ipv4.conf.vti1.disable_policy=1
  ip -n $1 link set vti1 up
}

kernel_sas() { # ALG: K's SAs and policies by hand (K sends with spi 0x1001, receives 0x1002)
  local enc_out enc_in
  if [ "$1" = gcm ]; then
    enc_out=(aead 'rfc4106(gcm(aes))' $KOUT 128); enc_in=(aead 'rfc4106(gcm(aes))' $KIN 128)
  else
    enc_out=(enc 'cbc(aes)' $COUT auth-trunc 'hmac(sha256)' $AOUT 128); enc_in=(enc 'cbc(aes)' $CIN auth-trunc 'hmac(sha256)' $AIN 128)
  fi
  ip -n $K xfrm state add src $A dst $B proto esp spi 0x1001 reqid 9 mode tunnel "${enc_out[@]}" mark 7
  ip -n $K xfrm state add src $B dst $A proto esp spi 0x1002 reqid 9 mode tunnel replay-window 128 "${enc_in[@]}" mark 7
  ip -n $K xfrm policy add dir out mark 7 tmpl src $A dst $B proto esp reqid 9 mode tunnel
  ip -n $K xfrm policy add dir in mark 7 tmpl src $B dst $A proto esp reqid 9 mode tunnel
}

keyfile() { # ALG PATH SIDE(k|u)
  if [ "$1" = gcm ]; then
    if [ "$3" = k ]; then printf 'out: %s\nin: %s\n' $KOUT $KIN; else printf 'out: %s\nin: %s\n' $KIN $KOUT; fi
  else
    if [ "$3" = k ]; then printf 'out-enc: %s\nout-auth: %s\nin-enc: %s\nin-auth: %s\n' $COUT $AOUT $CIN $AIN
    else printf 'out-enc: %s\nout-auth: %s\nin-enc: %s\nin-auth: %s\n' $CIN $AIN $COUT $AOUT; fi
  fi >"$2"
  chmod 600 "$2"
}

spec() { # ALG SELF PEER INNER SPIOUT SPIIN KEYFILE DRIVER
  local algs='aead: aes-gcm-128'
  [ "$1" = cbc ] && algs=$'cipher: aes-cbc-256\n      auth: hmac-sha256'
  cat <<SPEC
version: 1
tunnels:
  vti1:
    mode: vti
    driver: $8
    local: $2
    remote: $3
    key: 7
    addresses: [$4/30]
    ipsec:
      spi-out: $5
      spi-in: $6
      $algs
      key-file: $7
SPEC
}

capture() { # NS SECONDS READYFILE → JSON of {ipv4/PROTO|ether/TYPE: count} on ul0 (READYFILE appears once it listens)
  ip netns exec $1 python3 -c '
import socket,select,time,json,sys
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3));s.bind(("ul0",0))
open(sys.argv[2],"w").close()
seen={};end=time.time()+float(sys.argv[1])
while time.time()<end:
  r,_,_=select.select([s],[],[],0.1)
  if not r: continue
  f=s.recv(65535);et=f[12:14].hex()
  k="ipv4/%d"%f[23] if et=="0800" else "ether/"+et
  seen[k]=seen.get(k,0)+1
print(json.dumps(seen))' "$2" "$3"
}

nostates() { ip netns exec $U awk '/XfrmInNoStates/{print $2}' /proc/net/xfrm_stat; }
icmpout() { # OutDestUnreachs of U's kernel (echo requests and replies are not counted there)
  ip netns exec $U python3 -c '
l=[x.split() for x in open("/proc/net/snmp") if x.startswith("Icmp:")]
print(l[1][l[0].index("OutDestUnreachs")])'
}

iperf_bps() { # FROM TO ADDR
  ip netns exec $2 iperf3 -s -D -1 -B $3 >/dev/null 2>&1
  for i in $(seq 50); do ip netns exec $2 ss -Hltn 'sport = :5201' | grep -q . && break; sleep 0.1; done
  ip netns exec $1 iperf3 -c $3 -t 3 -J 2>/dev/null | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' 2>/dev/null || echo 0
}

run_case() { # NAME ALG KERNEL(hand|tunctl)
  local name=$1 alg=$2 how=$3
  pair
  if [ "$how" = hand ]; then kernel_vti $K $A $B 10.10.5.1; kernel_sas $alg
  else
    keyfile $alg /run/vtiuml/k.keys k
    spec $alg $A $B 10.10.5.1 0x1001 0x1002 /run/vtiuml/k.keys kernel >k.yaml
    tunctl apply --netns $K k.yaml >/dev/null || echo "VTIUML $name FAIL kernel apply"
  fi
  keyfile $alg /run/vtiuml/u.keys u
  spec $alg $B $A 10.10.5.2 0x1002 0x1001 /run/vtiuml/u.keys userspace >u.yaml
  if ! out=$(tunctl apply --netns $U u.yaml 2>&1); then echo "VTIUML $name FAIL userspace apply: $out"; return; fi
  echo "$out" | grep -q 'vti1 (vti, userspace)' && echo "VTIUML $name driver userspace"
  local ns0 icmp0; ns0=$(nostates); icmp0=$(icmpout)
  if ip netns exec $K ping -c 3 -i 0.2 -W 3 10.10.5.2 >/dev/null && ip netns exec $U ping -c 3 -i 0.2 -W 3 10.10.5.1 >/dev/null
  then echo "VTIUML $name ping ok"; else echo "VTIUML $name ping FAIL"; ip -n $K -s xfrm state; cat /run/tunctl/ns/$U/.engine.log; fi
  echo "VTIUML $name kernel-silent {\"noStatesBefore\":$ns0,\"noStatesAfter\":$(nostates),\"icmpOutBefore\":$icmp0,\"icmpOutAfter\":$(icmpout)}"
  rm -f cap.ready; capture $U 4 cap.ready >cap.json & local cp=$!
  # Python starts slowly in UML: ping only once the capture socket is bound (a fixed 0.5 s lost the first packet)
  for i in $(seq 100); do [ -e cap.ready ] && break; sleep 0.1; done
  ip netns exec $K ping -c 5 -i 0.2 -W 3 10.10.5.2 >/dev/null; wait $cp
  echo "VTIUML $name capture $(cat cap.json)"
  echo "VTIUML $name iperf {\"k2u\":$(iperf_bps $K $U 10.10.5.2),\"u2k\":$(iperf_bps $U $K 10.10.5.1)}"
  sleep 1.2
  echo "VTIUML $name stats $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"drops":d["counters"]["drops"],"esp":d["esp"]}))' /run/tunctl/ns/$U/vti1.stats.json)"
  echo "VTIUML $name kernel-state $(ip -n $K -s xfrm state | tr '\n' ' ' | tr -s ' ' | head -c 1500)"
  tunctl del --netns $U vti1 >/dev/null
}

run_case gcm gcm hand
run_case cbc cbc hand
run_case tunctl gcm tunctl

# kernel ESP <-> kernel ESP, for BENCHMARKS.md (same UML, same veth setup)
for alg in gcm cbc; do
  pair
  kernel_vti $K $A $B 10.10.5.1; kernel_sas $alg
  kernel_vti $U $B $A 10.10.5.2
  # U's SAs: the mirror of K's
  if [ $alg = gcm ]; then eo=(aead 'rfc4106(gcm(aes))' $KIN 128); ei=(aead 'rfc4106(gcm(aes))' $KOUT 128)
  else eo=(enc 'cbc(aes)' $CIN auth-trunc 'hmac(sha256)' $AIN 128); ei=(enc 'cbc(aes)' $COUT auth-trunc 'hmac(sha256)' $AOUT 128); fi
  ip -n $U xfrm state add src $B dst $A proto esp spi 0x1002 reqid 9 mode tunnel "${eo[@]}" mark 7
  ip -n $U xfrm state add src $A dst $B proto esp spi 0x1001 reqid 9 mode tunnel replay-window 128 "${ei[@]}" mark 7
  ip -n $U xfrm policy add dir out mark 7 tmpl src $B dst $A proto esp reqid 9 mode tunnel
  ip -n $U xfrm policy add dir in mark 7 tmpl src $A dst $B proto esp reqid 9 mode tunnel
  ip netns exec $K ping -c 2 -i 0.2 -W 3 10.10.5.2 >/dev/null || echo "BENCH kernel-$alg ping FAIL"
  echo "BENCH kernel-$alg {\"k2u\":$(iperf_bps $K $U 10.10.5.2),\"u2k\":$(iperf_bps $U $K 10.10.5.1)}"
done
ip netns del $K; ip netns del $U
echo "VTIUML done"
