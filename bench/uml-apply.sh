#!/usr/bin/env bash
# Benchmark: `tunctl apply` of N gre tunnels (distinct remotes and keys, one address each) in a real kernel
# (user-mode-linux), against one `ip -batch` of exactly the lines tunctl runs (taken from
# `tunctl plan --show-commands`), plus the no-op re-apply. Not a test: prints a markdown table.
#
# Usage (on the host, after `npx tsc -p .`):  bash bench/uml-apply.sh [N ...]      (default: 1000 5000)
#   env RUNS (default 1): repetitions per N (each in fresh namespaces; the table shows the median)
# One UML boot runs everything (see test/uml/uml.sh). Inside, only namespaces named tunctl-bench-* and
# files below /run are touched.
set -uo pipefail

if [ -z "${UML_OUT:-}" ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  repo=$(cd "$here/.." && pwd)
  [ -f "$repo/dist/commands/apply.js" ] || { echo "build first: npx tsc -p ." >&2; exit 69; }
  exec env MODULES="${MODULES:-ipip ip_gre sit ip_vti veth tun}" UML_MEM="${UML_MEM:-2G}" \
    bash "$repo/test/uml/uml.sh" "$here/uml-apply.sh" "${RUNS:-1}" "${@:-1000 5000}"
fi

# ---- inside user-mode-linux ----
runs=${1:-1}; shift || true
sizes=$*
# the harness' argument passing may not reach us (older uml.sh): fall back to the defaults
[ -n "$sizes" ] || sizes="1000 5000"
[ -n "$runs" ] || runs=1
# Go (esbuild, pulled in by nothing here, but harmless) and glibc/V8 are kept off AVX by the harness
export NO_COLOR=1
tunctl() { node "$TUNCTL_REPO/bin/run" "$@"; }
work=/run/tunctl-bench
mkdir -p "$work"

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# spec with N gre tunnels: g<i>, remote 10.1.x.y, key i, address 10.100.x.y/30
gen_spec() {
  local n=$1 i r a
  printf 'version: 1\ntunnels:\n'
  for ((i = 1; i <= n; i++)); do
    r="10.1.$((i >> 8)).$((i & 255))"
    a=$((i * 4))
    printf '  g%d:\n    mode: gre\n    local: 198.51.100.1\n    remote: %s\n    key: %d\n    addresses: [10.%d.%d.%d/30]\n' \
      "$i" "$r" "$i" $((100 + (a >> 16))) $(((a >> 8) & 255)) $(((a & 255) + 1))
  done
}

fresh_ns() {
  ip netns del "$1" 2>/dev/null
  ip netns add "$1" && ip -n "$1" link set lo up
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END { print v[int((NR + 1) / 2)] }'; }

t0=$(now); tunctl --version >/dev/null; t1=$(now)
startup=$(secs "$t0" "$t1")
echo "# node + oclif startup (tunctl --version): ${startup}s" >&2

declare -A R
for n in $sizes; do
  spec="$work/gre-$n.yaml"
  gen_spec "$n" >"$spec"
  for ((run = 1; run <= runs; run++)); do
    A=tunctl-bench-a B=tunctl-bench-b
    fresh_ns "$A"; fresh_ns "$B"
    # the exact batch tunctl would run
    t0=$(now); tunctl plan --show-commands --netns "$A" "$spec" >"$work/plan-$n.txt"; t1=$(now)
    plan_s=$(secs "$t0" "$t1")
    sed -n 's/^ *\$ \[[0-9]*\] ip //p' "$work/plan-$n.txt" >"$work/batch-$n.txt"
    lines=$(wc -l <"$work/batch-$n.txt")
    t0=$(now); ip -n "$B" -batch "$work/batch-$n.txt"; rc_b=$?; t1=$(now)
    batch_s=$(secs "$t0" "$t1")
    t0=$(now); tunctl apply --netns "$A" "$spec" >"$work/apply-$n.txt" 2>&1; rc_a=$?; t1=$(now)
    apply_s=$(secs "$t0" "$t1")
    t0=$(now); tunctl apply --verbose --netns "$A" "$spec" >"$work/noop-$n.txt" 2>&1; rc_n=$?; t1=$(now)
    noop_s=$(secs "$t0" "$t1")
    mutating=$(grep -c '^\[#\] ip ' "$work/noop-$n.txt")
    made=$(ip -n "$A" -o link show type gre | grep -vc ' gre0[@:]')
    echo "# n=$n run=$run lines=$lines plan=${plan_s}s ip-batch=${batch_s}s (rc $rc_b) apply=${apply_s}s (rc $rc_a, $made gre links) noop=${noop_s}s (rc $rc_n, $mutating ip lines)" >&2
    [ "$rc_a" = 0 ] || { echo "# apply failed:" >&2; tail -5 "$work/apply-$n.txt" >&2; }
    R[$n,batch]+="$batch_s " R[$n,apply]+="$apply_s " R[$n,noop]+="$noop_s " R[$n,plan]+="$plan_s "
    R[$n,lines]=$lines R[$n,ok]+="$rc_a/$rc_n/$made/$mutating "
    if [ "$run" = 1 ]; then
      # where the time goes: observe's three dumps with N tunnels present, and the batch split by kind of line
      obs=""
      for q in "-d link show" "addr show" "route show table all"; do
        t0=$(now); ip -n "$A" -j $q >"$work/dump.json"; t1=$(now)
        obs+="ip -j ${q}: $(secs "$t0" "$t1")s ($(($(wc -c <"$work/dump.json") / 1024)) KiB); "
      done
      echo "# n=$n observe dumps: $obs" >&2
      C=tunctl-bench-c; fresh_ns "$C"; split=""
      for kind in "link add" "link set" "addr add"; do
        grep "^$kind " "$work/batch-$n.txt" >"$work/part.txt"
        t0=$(now); ip -n "$C" -batch "$work/part.txt"; t1=$(now)
        split+="$kind x$(wc -l <"$work/part.txt"): $(secs "$t0" "$t1")s; "
      done
      echo "# n=$n ip -batch split by line kind (fresh namespace): $split" >&2
      ip netns del "$C"
      R[$n,obs]=$obs R[$n,split]=$split
    fi
    ip netns del "$A"; ip netns del "$B"
  done
done

echo
echo "| tunnels | batch lines | ip -batch | tunctl apply | apply − startup | per tunnel (apply) | ratio apply / ip -batch | no-op re-apply | plan | apply rc / no-op rc / links / no-op ip lines |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for n in $sizes; do
  b=$(echo "${R[$n,batch]}" | median); a=$(echo "${R[$n,apply]}" | median)
  o=$(echo "${R[$n,noop]}" | median); p=$(echo "${R[$n,plan]}" | median)
  awk -v n="$n" -v l="${R[$n,lines]}" -v b="$b" -v a="$a" -v o="$o" -v p="$p" -v ok="${R[$n,ok]}" -v st="$startup" 'BEGIN {
    printf "| %d | %d | %.2f s | %.2f s | %.2f s | %.2f ms | %.2f× | %.2f s | %.2f s | %s |\n", n, l, b, a, a - st, 1000 * a / n, (b > 0 ? a / b : 0), o, p, ok }'
done
echo
for n in $sizes; do echo "- n=$n: observe dumps: ${R[$n,obs]}"; echo "- n=$n: ip -batch by line kind: ${R[$n,split]}"; done
echo "node + oclif startup inside UML (tunctl --version): ${startup} s; runs per size: $runs (median shown)"
