#!/usr/bin/env bash
# Scale of the userspace engine (issue #6 item 6): N (default 1000) userspace GRE tunnels in one namespace.
#   1. `tunctl apply` of N userspace gre tunnels (each with a key and an address) against one `ip -batch` that
#      creates the same N TUN devices with their alias, addresses and up state in a fresh namespace (same run);
#      the same apply once more in namespace D with its run dir on tmpfs (TUNCTL_RUN_DIR under /dev/shm), as /run
#      is on a systemd host (this VM's /run is on ext4, where creating the N state files costs 0.1-0.9 s);
#   2. the engine's RSS and thread count (one process for the namespace);
#   3. one tunnel's iperf3 TCP throughput with N-1 idle siblings, then with the siblings removed (prune);
#   4. where each apply's time went (its TUNCTL_TIMING marks: time since start, time of each phase).
#   5. a lower bound for any apply: Node's start-up, yaml's parse of the file (first call in a fresh process), and
#      the reference (the kernel's work, which may only start once the whole file is checked).
# Usage (root): bench/scale.sh [N=1000] [SECONDS=5]   Prints a markdown table; raw output in bench/results/.
# Everything runs in namespaces it creates and removes (also on failure); nothing touches the host's network.
set -euo pipefail
n=${1:-1000}
secs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"
[ "$(id -u)" = 0 ] || { echo "bench/scale.sh needs root" >&2; exit 77; }
for c in iperf3 ping; do command -v $c >/dev/null || { echo "$c missing" >&2; exit 69; }; done
[ -f build/Release/tunctl_native.node ] || node scripts/build-native.mjs
[ -f dist/bundle/tunctl.cjs ] || { npx tsc -p tsconfig.json && node scripts/bundle.mjs; }
id=$$
A=tunctl-s-a$id B=tunctl-s-b$id C=tunctl-s-c$id D=tunctl-s-d$id
shm=/dev/shm/tunctl-scale-$id
out=bench/results/scale-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"

cleanup() {
  set +e
  for ns in $A $B $C $D; do
    ip netns pids $ns 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del $ns 2>/dev/null
    rm -rf /run/tunctl/ns/$ns /run/tunctl/$ns
  done
  rm -rf "$shm"
}
trap cleanup EXIT

for ns in $A $B $C $D; do ip netns add $ns; ip -n $ns link set lo up; done
ip -n $D link add ul0 type veth peer name ul1
ip -n $D addr add 198.51.100.1/24 dev ul0; ip -n $D link set ul0 up; ip -n $D link set ul1 up
ip -n $A link add ul0 type veth peer name ul0 netns $B
ip -n $A addr add 198.51.100.1/24 dev ul0; ip -n $A link set ul0 up
ip -n $B addr add 198.51.100.2/24 dev ul0; ip -n $B link set ul0 up

# tunnel i (1..n): gre key i, inner address 4i + side in 10.100.0.0/14, /30
addr() { local i=$1 side=$2 v=$((4 * $1)); echo "10.$((100 + v / 65536)).$(((v / 256) % 256)).$((v % 256 + side))"; }
spec() { # FILE FIRST LAST LOCAL REMOTE SIDE
  local f=$1 first=$2 last=$3 l=$4 r=$5 side=$6
  { echo "version: 1"; echo "tunnels:"
    for ((i = first; i <= last; i++)); do
      printf '  s%d:\n    mode: gre\n    driver: userspace\n    local: %s\n    remote: %s\n    key: %d\n    addresses: [%s/30]\n' \
        "$i" "$l" "$r" "$i" "$(addr "$i" "$side")"
    done; } >"$f"
}
spec "$out/a.yaml" 1 "$n" 198.51.100.1 198.51.100.2 1
spec "$out/a1.yaml" 1 1 198.51.100.1 198.51.100.2 1
spec "$out/b.yaml" 1 1 198.51.100.2 198.51.100.1 2

# the reference: one ip -batch creating the same n TUN devices with their alias, address and up state
for ((i = 1; i <= n; i++)); do
  echo "tuntap add dev s$i mode tun"
  echo "link set dev s$i alias tunctl"
  echo "address add $(addr "$i" 1)/30 dev s$i"
  echo "link set dev s$i up"
done >"$out/ref.batch"
t0=$(date +%s.%N)
ip -n $C -batch "$out/ref.batch"
t1=$(date +%s.%N)
ref=$(echo "$t1 - $t0" | bc)

tunctl() { TUNCTL_TIMING=1 node bin/run "$@"; }
t0=$(date +%s.%N)
tunctl apply --netns $A "$out/a.yaml" >"$out/apply.log" 2>&1
t1=$(date +%s.%N)
apply=$(echo "$t1 - $t0" | bc)
tunctl apply --netns $B "$out/b.yaml" >"$out/apply-b.log" 2>&1
t0=$(date +%s.%N)
TUNCTL_RUN_DIR=$shm tunctl apply --netns $D "$out/a.yaml" >"$out/apply-tmpfs.log" 2>&1
t1=$(date +%s.%N)
apply_tmpfs=$(echo "$t1 - $t0" | bc)
ip netns pids $D | xargs -r kill -9 2>/dev/null || true
t0=$(date +%s.%N)
node -e 0
t1=$(date +%s.%N)
node0=$(echo "$t1 - $t0" | bc)

# the parts no apply can skip: Node's start (above), and yaml's parse of the same file (tunctl's options), timed inside a fresh
# process around its first parseDocument only (the module already loaded, as the CLI's bundle has it); the spec must be
# read whole and checked before anything changes, so no apply can take less than those two and the reference
yaml0=$(node -e 'const {parseDocument} = require("yaml"); const text = require("fs").readFileSync(process.argv[1], "utf8")
const t = process.hrtime.bigint(); parseDocument(text, {stringKeys: true, uniqueKeys: false, prettyErrors: false}); console.log(Number(process.hrtime.bigint() - t) / 1e9)' "$out/a.yaml")

engine=$(cat /run/tunctl/ns/$A/.engine.json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).pid))')
rss_kib=$(awk '/^VmRSS/ {print $2}' /proc/$engine/status)
threads=$(awk '/^Threads/ {print $2}' /proc/$engine/status)
engines=$(pgrep -f "engine.js /run/tunctl/ns/$A\$" | wc -l)
budget_kib=$((64 * 1024 + 64 * n))

iperf() { # NAME
  local name=$1
  ip netns exec $A ping -c 2 -W 2 "$(addr 1 2)" >/dev/null
  ip netns exec $B iperf3 -s -1 -D -B "$(addr 1 2)" >/dev/null 2>&1
  sleep 0.3
  ip netns exec $A iperf3 -c "$(addr 1 2)" -t "$secs" -J >"$out/$name.json" 2>&1 || true
  node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log((j.end.sum_received.bits_per_second/1e9).toFixed(2))' "$out/$name.json" 2>/dev/null || echo "?"
  sleep 1
}
with=$(iperf "with-$((n - 1))-siblings")
rss_after_kib=$(awk '/^VmRSS/ {print $2}' /proc/$engine/status)
t0=$(date +%s.%N)
tunctl apply --prune --netns $A "$out/a1.yaml" >"$out/prune.log" 2>&1
t1=$(date +%s.%N)
prune=$(echo "$t1 - $t0" | bc)
alone=$(iperf alone)

echo "| measure ($n userspace gre tunnels, $(nproc) CPUs) | value |"
echo "|---|---:|"
printf '| ip -batch: %d TUN devices with alias, address, up (reference) | %.2f s |\n' "$n" "$ref"
printf '| tunctl apply of %d userspace gre tunnels | %.2f s (%.2fx the reference) |\n' "$n" "$apply" "$(echo "$apply / $ref" | bc -l)"
printf '| the same apply, run dir on tmpfs (/dev/shm) | %.2f s (%.2fx the reference) |\n' "$apply_tmpfs" "$(echo "$apply_tmpfs / $ref" | bc -l)"
printf '| node -e 0 (Node start-up alone) | %.2f s |\n' "$node0"
printf '| yaml'"'"'s parse of the same file, first call in a fresh process | %.2f s |\n' "$yaml0"
printf '| lower bound: Node start-up + that parse + the reference (nothing may change before the whole file is checked) | %.2f s (%.2fx the reference) |\n' "$(echo "$node0 + $yaml0 + $ref" | bc)" "$(echo "($node0 + $yaml0 + $ref) / $ref" | bc -l)"
printf '| tunctl apply --prune down to 1 tunnel | %.2f s |\n' "$prune"
printf '| engine processes in the namespace | %d |\n' "$engines"
printf '| engine RSS after apply / after iperf3 | %.1f / %.1f MiB (budget 64 MiB + 64 KiB x %d = %.1f MiB) |\n' \
  "$(echo "$rss_kib / 1024" | bc -l)" "$(echo "$rss_after_kib / 1024" | bc -l)" "$n" "$(echo "$budget_kib / 1024" | bc -l)"
printf '| engine threads | %d |\n' "$threads"
printf '| iperf3 through one tunnel, %d idle siblings | %s Gbit/s |\n' "$((n - 1))" "$with"
printf '| iperf3 through the same tunnel alone | %s Gbit/s |\n' "$alone"
printf '| load average (1, 5, 15 min) at the end | %s |\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
# where the time went: the TUNCTL_TIMING marks (ms since the process started) and the time since the previous mark
phases() { # LOG TITLE
  echo
  echo "| $2 | at | phase |"
  echo "|---|---:|---:|"
  awk '/^\[timing\]/ {ms = $2; $1 = $2 = $3 = ""; sub(/^ +/, ""); printf "| %s | %d ms | %d ms |\n", $0, ms, ms - prev; prev = ms}' "$1"
}
phases "$out/apply.log" "tunctl apply of $n tunnels (run dir on /run)"
phases "$out/apply-tmpfs.log" "the same apply, run dir on tmpfs"
phases "$out/prune.log" "apply --prune down to 1 tunnel"
cp /run/tunctl/ns/$A/.engine.log "$out/engine-a.log" 2>/dev/null || true
# inside the engine's commit of the n tunnels: state read, the adds (TUN devices), the created devices configured
# (addresses, up, kernel twin: one netlink batch), the kernel view (ip) of the others
echo
echo "engine (run dir on /run): $(grep -m1 "commit: $n desired" "$out/engine-a.log" | sed 's/^[^]]*] //')"
echo "raw results: $out"
