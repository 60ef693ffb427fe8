#!/usr/bin/env bash
# Userspace vti (tunctl's ESP, native/vti.c) against OpenVPN with real crypto, same run, same veth (issue #7 item 5):
#   tunctl userspace vti aes-gcm-128, aes-cbc-256 + hmac-sha256 (one TCP stream of iperf3 each way),
#   OpenVPN 2.6 p2p over UDP with --cipher AES-256-GCM (TLS with self-signed certificates and --peer-fingerprint).
# Usage (root): bench/vti.sh [SECONDS=5]   Prints a markdown table; raw output in bench/results/vti-*/, with the
# CPU of every thread in the two namespaces during each iperf3 run (threads-*.txt; the engine's are tunctl-tx and
# tunctl-rx50 for ESP) and, in the table, the tunnel's own CPU per 1400 bytes delivered. For quick iterations:
# VTI_ALGS="aes-cbc-256" (a subset), VTI_OPENVPN=0 (no OpenVPN run).
# Kernel ESP (vti + esp4) is measured inside user-mode-linux by test/uml/vti-userspace.sh (BENCH lines; see
# BENCHMARKS.md). Everything runs in namespaces it creates and removes (also on failure).
set -euo pipefail
secs=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
[ "$(id -u)" = 0 ] || { echo "bench/vti.sh needs root" >&2; exit 77; }
for c in iperf3 ping openssl python3; do command -v $c >/dev/null || { echo "$c missing" >&2; exit 69; }; done
command -v openvpn >/dev/null || { echo "openvpn missing (bench/userspace.sh installs it from Debian)" >&2; exit 69; }
[ -f build/Release/tunctl_native.node ] || node scripts/build-native.mjs
[ -f dist/bundle/tunctl.cjs ] || { npx tsc -p tsconfig.json && node scripts/bundle.mjs; }
id=$$
A=tunctl-bv-a$id B=tunctl-bv-b$id
out=bench/results/vti-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
tmp=$(mktemp -d)
ovpn_pids=()
tunctl() { node "$repo/bin/run" "$@"; }
cleanup() {
  set +e
  for p in "${ovpn_pids[@]}"; do kill "$p" 2>/dev/null; done
  for ns in $A $B; do
    tunctl del --netns $ns --ignore-missing vti1 >/dev/null 2>&1
    ip netns pids $ns 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del $ns 2>/dev/null
    rm -rf /run/tunctl/ns/$ns
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add $A; ip netns add $B
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A link add ul0 type veth peer name ul0 netns $B
ip -n $A addr add 198.51.100.1/24 dev ul0; ip -n $A link set ul0 up
ip -n $B addr add 198.51.100.2/24 dev ul0; ip -n $B link set ul0 up

# per-thread CPU of the namespaces' processes (the engine's threads are named tunctl-tx / tunctl-rxPROTO):
# "ns pid tid comm ticks" lines, diffed around each iperf3 run into $out/threads-LABEL.txt
thread_ticks() {
  head -1 /proc/stat
  for ns in $A $B; do
    for p in $(ip netns pids $ns 2>/dev/null); do
      for t in /proc/$p/task/*; do
        [ -r $t/stat ] || continue
        echo "$ns $p ${t##*/} $(cat $t/comm 2>/dev/null | tr ' ' _) $(sed 's/.*) //' $t/stat 2>/dev/null | awk '{print $12+$13}')"
      done
    done
  done
}
thread_report() { # BEFORE AFTER SECONDS → threads above 3% of one core, busiest first
  python3 - "$@" <<'PY'
import sys
def load(f):
    d = {}
    for l in open(f):
        p = l.split()
        if p and p[0] == 'cpu': d['cpu'] = [int(x) for x in p[1:]]
        elif len(p) == 5 and p[4].isdigit(): d[tuple(p[:4])] = int(p[4])
    return d
a, b, secs = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
ca, cb = a.pop('cpu'), b.pop('cpu')
tot = sum(cb) - sum(ca)
idle = (cb[3] + cb[4]) - (ca[3] + ca[4])
print(f"machine: {100 * (tot - idle) / tot:.0f}% busy (all CPUs, everything running)")
rows = sorted(((b[k] - a.get(k, 0)) / 100 / secs * 100, k) for k in b)
print(f"tunnel: {sum(pct for pct, k in rows if k[3] != 'iperf3'):.1f}% of a core (the namespaces' processes but iperf3)")
for pct, k in reversed(rows):
    if pct >= 3: print(f"ns {k[0].split('-')[-1][0]} {k[3]:<16} tid {k[2]:<8} {pct:5.1f}% of a core")
PY
}
iperf_bps() { # FROM TO ADDR → bits/s received
  ip netns exec $2 iperf3 -s -D -1 -B $3 >/dev/null
  for i in $(seq 50); do ip netns exec $2 ss -Hltn 'sport = :5201' | grep -q . && break; sleep 0.1; done
  thread_ticks >"$tmp/ticks0"
  ip netns exec $1 iperf3 -c $3 -t "$secs" -J >"$out/iperf-$4.json"
  thread_ticks >"$tmp/ticks1"
  thread_report "$tmp/ticks0" "$tmp/ticks1" "$secs" >"$out/threads-$4.txt"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"])' "$out/iperf-$4.json"
}
gbit() { python3 -c "print(f'{float(\"$1\")/1e9:.2f}')"; }

# ---- tunctl userspace vti, one algorithm at a time ----
vti_spec() { # SELF PEER INNER SPIOUT SPIIN ALGLINES KEYFILE
  printf 'version: 1\ntunnels:\n  vti1:\n    mode: vti\n    driver: userspace\n    local: %s\n    remote: %s\n    key: 7\n    addresses: [%s/30]\n    ipsec:\n      spi-out: %s\n      spi-in: %s\n%s      key-file: %s\n' "$@"
}
hex() { openssl rand -hex "$1"; }
declare -A res
for alg in ${VTI_ALGS:-aes-gcm-128 aes-cbc-256}; do
  if [ $alg = aes-gcm-128 ]; then
    lines=$'      aead: aes-gcm-128\n'; o=$(hex 20) i=$(hex 20)
    printf 'out: 0x%s\nin: 0x%s\n' $o $i >"$tmp/a.keys"; printf 'out: 0x%s\nin: 0x%s\n' $i $o >"$tmp/b.keys"
  else
    lines=$'      cipher: aes-cbc-256\n      auth: hmac-sha256\n'; oe=$(hex 32) oa=$(hex 32) ie=$(hex 32) ia=$(hex 32)
    printf 'out-enc: 0x%s\nout-auth: 0x%s\nin-enc: 0x%s\nin-auth: 0x%s\n' $oe $oa $ie $ia >"$tmp/a.keys"
    printf 'out-enc: 0x%s\nout-auth: 0x%s\nin-enc: 0x%s\nin-auth: 0x%s\n' $ie $ia $oe $oa >"$tmp/b.keys"
  fi
  chmod 600 "$tmp/a.keys" "$tmp/b.keys"
  vti_spec 198.51.100.1 198.51.100.2 10.81.0.1 0x1001 0x1002 "$lines" "$tmp/a.keys" >"$tmp/a.yaml"
  vti_spec 198.51.100.2 198.51.100.1 10.81.0.2 0x1002 0x1001 "$lines" "$tmp/b.keys" >"$tmp/b.yaml"
  tunctl apply --netns $A "$tmp/a.yaml" >/dev/null
  tunctl apply --netns $B "$tmp/b.yaml" >/dev/null
  ip netns exec $A ping -c 2 -i 0.2 -W 2 10.81.0.2 >/dev/null
  res[$alg-ab]=$(iperf_bps $A $B 10.81.0.2 $alg-ab)
  res[$alg-ba]=$(iperf_bps $B $A 10.81.0.1 $alg-ba)
  res[$alg-ping]=$(ip netns exec $A ping -c 20 -i 0.05 -q 10.81.0.2 | awk -F/ '/rtt/{print $5}')
  touch "$tmp/mark"
  for ns in $A $B; do # the engine's counters (rewritten every second: wait for a write after the runs) and the TUN
    # device's (its rx_packets: the engine's writes, after coalescing)
    for i in $(seq 30); do [ /run/tunctl/ns/$ns/vti1.stats.json -nt "$tmp/mark" ] && break; sleep 0.1; done
    cp /run/tunctl/ns/$ns/vti1.stats.json "$out/stats-$alg-${ns:10:1}.json" 2>/dev/null || true
    ip -n $ns -s -j link show vti1 >"$out/link-$alg-${ns:10:1}.json" 2>/dev/null || true
  done
  tunctl del --netns $A vti1 >/dev/null; tunctl del --netns $B vti1 >/dev/null
done

if [ "${VTI_OPENVPN:-1}" != 0 ]; then
# ---- OpenVPN p2p, AES-256-GCM, TLS with self-signed certificates pinned by fingerprint ----
for s in a b; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=bench-$s" \
    -keyout "$tmp/$s.key" -out "$tmp/$s.crt" 2>/dev/null
done
fp() { openssl x509 -fingerprint -sha256 -noout -in "$1" | cut -d= -f2; }
for s in a b; do
  if [ $s = a ]; then ns=$A l=198.51.100.1 r=198.51.100.2 il=10.30.0.1 ir=10.30.0.2 role=--tls-server peer=b
  else ns=$B l=198.51.100.2 r=198.51.100.1 il=10.30.0.2 ir=10.30.0.1 role=--tls-client peer=a; fi
  extra=(); [ $s = a ] && extra=(--dh none)
  ip netns exec $ns openvpn --dev ovpn0 --dev-type tun --proto udp --local $l --remote $r --port 1194 \
    --ifconfig $il $ir $role "${extra[@]}" --cert "$tmp/$s.crt" --key "$tmp/$s.key" --peer-fingerprint "$(fp "$tmp/$peer.crt")" \
    --data-ciphers AES-256-GCM --cipher AES-256-GCM --verb 3 >"$out/openvpn-$s.log" 2>&1 &
  ovpn_pids+=($!)
done
for i in $(seq 100); do grep -qs 'Initialization Sequence Completed' "$out/openvpn-b.log" && break; sleep 0.2; done
grep -q 'Initialization Sequence Completed' "$out/openvpn-b.log" || { echo "openvpn did not come up:"; tail "$out"/openvpn-*.log; exit 1; }
grep -h 'Data Channel: cipher' "$out"/openvpn-*.log | head -1 >"$out/openvpn-cipher.txt" || true
ip netns exec $A ping -c 2 -i 0.2 -W 2 10.30.0.2 >/dev/null
res[ovpn-ab]=$(iperf_bps $A $B 10.30.0.2 ovpn-ab)
res[ovpn-ba]=$(iperf_bps $B $A 10.30.0.1 ovpn-ba)
res[ovpn-ping]=$(ip netns exec $A ping -c 20 -i 0.05 -q 10.30.0.2 | awk -F/ '/rtt/{print $5}')
fi

cpu_pp() { # LABEL → µs of the tunnel's CPU (engine threads / openvpn, both ends) per 1400 bytes received
  python3 - "$out/threads-$1.txt" "$out/iperf-$1.json" <<'PY'
import json, re, sys
m = re.search(r"^tunnel: ([\d.]+)%", open(sys.argv[1]).read(), re.M)
bps = json.load(open(sys.argv[2]))["end"]["sum_received"]["bits_per_second"]
print(f"{float(m.group(1)) / 100 / (bps / 8 / 1400) * 1e6:.1f}" if m and bps else "–")
PY
}
ratio() { [ -n "${2:-}" ] && python3 -c "print(f'{float(\"$1\")/float(\"$2\"):.2f}×')" || echo –; }
declare -A names=([aes-gcm-128]=aes-gcm-128 [aes-cbc-256]=aes-cbc-256+hmac-sha256)
{
  echo "| path | a→b Gbit/s | b→a Gbit/s | vs OpenVPN AES-256-GCM (a→b) | ping avg ms | tunnel CPU µs per 1400 B (a→b) |"
  echo "|---|---|---|---|---|---|"
  for alg in ${VTI_ALGS:-aes-gcm-128 aes-cbc-256}; do
    echo "| tunctl userspace vti ${names[$alg]} | $(gbit ${res[$alg-ab]}) | $(gbit ${res[$alg-ba]}) | $(ratio ${res[$alg-ab]} ${res[ovpn-ab]:-}) | ${res[$alg-ping]} | $(cpu_pp $alg-ab) |"
  done
  if [ -n "${res[ovpn-ab]:-}" ]; then
    echo "| OpenVPN 2.6 p2p UDP, AES-256-GCM (TLS, $(cat "$out/openvpn-cipher.txt" 2>/dev/null | grep -o "cipher '[^']*'" || echo cipher ?)) | $(gbit ${res[ovpn-ab]}) | $(gbit ${res[ovpn-ba]}) | 1.00× | ${res[ovpn-ping]} | $(cpu_pp ovpn-ab) |"
  fi
} | tee "$out/table.md"
for alg in ${VTI_ALGS:-aes-gcm-128 aes-cbc-256}; do
  python3 - "$alg" "$out" <<'PY' || true
import json, sys
alg, out = sys.argv[1], sys.argv[2]
r = []
for ns in "ab":
    try:
        c = json.load(open(f"{out}/stats-{alg}-{ns}.json"))["counters"]
        w = json.load(open(f"{out}/link-{alg}-{ns}.json"))[0]["stats64"]["rx"]["packets"]
        r.append(f"{ns}: {c['rxPackets']} decrypted packets in {w} TUN writes ({c['rxPackets'] / max(w, 1):.1f} per write)")
    except (OSError, KeyError, IndexError, ValueError) as e:
        r.append(f"{ns}: no counters ({e})")
print(f"receive coalescing, {alg} (both runs, ACKs included): " + "; ".join(r))
PY
done
for f in "$out"/threads-*.txt; do echo "threads during $(basename "$f" .txt | sed 's/threads-//'):"; head -8 "$f"; done
