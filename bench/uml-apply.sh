#!/usr/bin/env bash
# Benchmark: `tunctl apply` of N gre tunnels (distinct remotes and keys, one address each) in a real kernel
# (user-mode-linux), against one `ip -batch` of exactly the lines tunctl runs (taken from
# `tunctl plan --show-commands`), plus the no-op re-apply. Not a test: prints a markdown table.
#
# Usage (on the host, after `npx tsc -p .`):  bash bench/uml-apply.sh [N ...]      (default: 1000 5000)
#   env RUNS (default 1): repetitions (the table shows the median).
#
# Every measurement gets its own UML boot (~3 s): the kernel's per-operation cost grows with the number of
# network devices in the WHOLE system (all namespaces, including ones still being torn down), so measuring
# tunctl in a boot where the ip -batch reference already made N devices would be unfair (measured: 3.4 s vs
# 0.9 s for the same 1000-tunnel batch). Inside, only namespaces named tunctl-bench-* and files below /run
# are touched.
set -uo pipefail

PARAMS=/tmp/tunctl-bench.params # how the host tells a boot what to measure (argument passing is unreliable)

if [ -z "${UML_OUT:-}" ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  repo=$(cd "$here/.." && pwd)
  [ -f "$repo/dist/commands/apply.js" ] || { echo "build first: npx tsc -p ." >&2; exit 69; }
  sizes=${*:-1000 5000}
  runs=${RUNS:-1}
  results=$(mktemp /tmp/tunctl-bench.XXXXXX)
  trap 'rm -f "$results" "$PARAMS"' EXIT
  for ((run = 1; run <= runs; run++)); do
    for n in $sizes; do
      for phase in batch tunctl split; do
        echo "$phase $n" >"$PARAMS"
        MODULES="ipip ip_gre sit ip_vti veth tun" UML_MEM="${UML_MEM:-2G}" bash "$repo/test/uml/uml.sh" "$here/uml-apply.sh" "$phase" "$n" \
          | tee -a "$results" | grep -v '^RESULT' >&2
      done
    done
  done
  med() { # KEY FIELD → median of FIELD over RESULT lines starting with KEY
    grep "^RESULT $1 " "$results" | awk -v f="$2" '{for (i = 1; i <= NF; i++) if ($i ~ "^" f "=") { sub(f "=", "", $i); print $i }}' |
      sort -g | awk '{v[NR] = $1} END { if (NR) print v[int((NR + 1) / 2)]; else print "nan" }'
  }
  echo
  echo "| tunnels | batch lines | ip -batch | tunctl apply | apply − node startup | per tunnel (apply) | apply / ip -batch | (apply − startup) / ip -batch | no-op re-apply |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for n in $sizes; do
    awk -v n="$n" -v l="$(med "batch $n" lines)" -v b="$(med "batch $n" secs)" -v a="$(med "tunctl $n" apply)" \
      -v o="$(med "tunctl $n" noop)" -v st="$(med "tunctl $n" startup)" 'BEGIN {
      printf "| %d | %d | %.2f s | %.2f s | %.2f s | %.2f ms | %.2f× | %.2f× | %.2f s |\n", n, l, b, a, a - st, 1000 * a / n, a / b, (a - st) / b, o }'
  done
  echo
  for n in $sizes; do
    echo "- n=$n, inside tunctl apply's boot: node+oclif startup $(med "tunctl $n" startup) s; observe dumps with N tunnels: ip -j -d link $(med "tunctl $n" dlink) s, ip -j addr $(med "tunctl $n" daddr) s, ip -j route show table all $(med "tunctl $n" droute) s"
    echo "- n=$n, tunctl apply by phase (TUNCTL_TIMING): node + CLI loaded $(med "tunctl $n" p_load) s, spec parsed $(med "tunctl $n" p_parse) s, observed $(med "tunctl $n" p_observe) s, planned $(med "tunctl $n" p_plan) s, ip -batch $(med "tunctl $n" p_batch) s, verified $(med "tunctl $n" p_verify) s"
    echo "- n=$n, the same batch split by line kind (fresh boot): link add $(med "split $n" add) s, link set (alias, up) $(med "split $n" set) s, addr add $(med "split $n" addr) s"
  done
  echo "- runs: $runs (median shown); every figure from its own boot"
  exit 0
fi

# ---- inside user-mode-linux ----
phase=${1:-} n=${2:-}
if [ -z "$phase" ] && [ -f "$PARAMS" ]; then read -r phase n <"$PARAMS"; fi
[ -n "$phase" ] && [ -n "$n" ] || { echo "no phase/size given" >&2; exit 64; }
export NO_COLOR=1
tunctl() { node "$TUNCTL_REPO/bin/run" "$@"; }
work=/run/tunctl-bench
mkdir -p "$work"
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# spec with N gre tunnels: g<i>, remote 10.1.x.y, key i, address 10.100.x.y/30
gen_spec() {
  local i a
  printf 'version: 1\ntunnels:\n'
  for ((i = 1; i <= n; i++)); do
    a=$((i * 4))
    printf '  g%d:\n    mode: gre\n    local: 198.51.100.1\n    remote: 10.1.%d.%d\n    key: %d\n    addresses: [10.%d.%d.%d/30]\n' \
      "$i" $((i >> 8)) $((i & 255)) "$i" $((100 + (a >> 16))) $(((a >> 8) & 255)) $(((a & 255) + 1))
  done
}
fresh_ns() { ip netns add "$1" && ip -n "$1" link set lo up; }
spec="$work/gre-$n.yaml"
gen_spec >"$spec"
# the batch tunctl would run, planned against an empty namespace (planning creates nothing)
batch() {
  fresh_ns tunctl-bench-p
  tunctl plan --show-commands --netns tunctl-bench-p "$spec" | sed -n 's/^ *\$ \[[0-9]*\] ip //p' >"$work/batch.txt"
  ip netns del tunctl-bench-p
}

case $phase in
batch)
  batch
  fresh_ns tunctl-bench-b
  t0=$(now); ip -n tunctl-bench-b -batch "$work/batch.txt"; rc=$?; t1=$(now)
  echo "# n=$n ip -batch: $(secs "$t0" "$t1") s, rc $rc" >&2
  echo "RESULT batch $n lines=$(wc -l <"$work/batch.txt") secs=$(secs "$t0" "$t1") rc=$rc"
  ;;
tunctl)
  t0=$(now); tunctl --version >/dev/null; t1=$(now); startup=$(secs "$t0" "$t1")
  fresh_ns tunctl-bench-a
  t0=$(now); TUNCTL_TIMING=1 tunctl apply --netns tunctl-bench-a "$spec" >"$work/apply.txt" 2>&1; rc=$?; t1=$(now); apply=$(secs "$t0" "$t1")
  # phases from the [timing] marks (ms since the process started): loaded, parse, observe, plan, batch, verify
  phases=$(awk '/^\[timing\]/ { t[$4] = $2 } END {
    printf "p_load=%.3f p_parse=%.3f p_observe=%.3f p_plan=%.3f p_batch=%.3f p_verify=%.3f", t["command"] / 1000,
      (t["spec"] - t["command"]) / 1000, (t["observed"] - t["spec"]) / 1000, (t["planned"] - t["observed"]) / 1000,
      (t["batch"] - t["planned"]) / 1000, (t["verified"] - t["batch"]) / 1000 }' "$work/apply.txt")
  [ "$rc" = 0 ] || { echo "# apply failed (exit $rc):" >&2; tail -5 "$work/apply.txt" >&2; }
  made=$(ip -n tunctl-bench-a -o link show type gre | grep -vc ' gre0[@:]')
  t0=$(now); tunctl apply --verbose --netns tunctl-bench-a "$spec" >"$work/noop.txt" 2>&1; rc2=$?; t1=$(now); noop=$(secs "$t0" "$t1")
  mutating=$(grep -c '^\[#\] ' "$work/noop.txt")
  d=()
  for q in "-d link show" "addr show" "route show table all"; do
    t0=$(now); ip -n tunctl-bench-a -j $q >/dev/null; t1=$(now); d+=("$(secs "$t0" "$t1")")
  done
  echo "# n=$n tunctl apply: ${apply} s (exit $rc, $made gre links); no-op: ${noop} s (exit $rc2, $mutating mutating lines); startup ${startup} s" >&2
  echo "RESULT tunctl $n apply=$apply noop=$noop startup=$startup rc=$rc noop_rc=$rc2 links=$made noop_lines=$mutating dlink=${d[0]} daddr=${d[1]} droute=${d[2]} $phases"
  ;;
split)
  batch
  fresh_ns tunctl-bench-c
  out="RESULT split $n"
  for kind in add set addr; do
    case $kind in add) re='^link add ' ;; set) re='^link set ' ;; addr) re='^addr add ' ;; esac
    grep "$re" "$work/batch.txt" >"$work/part.txt"
    t0=$(now); ip -n tunctl-bench-c -batch "$work/part.txt"; t1=$(now)
    out+=" $kind=$(secs "$t0" "$t1")"
  done
  echo "# n=$n split: $out" >&2
  echo "$out"
  ;;
*) echo "unknown phase $phase" >&2; exit 64 ;;
esac
