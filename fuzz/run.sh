#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang -fsanitize=fuzzer,address,undefined) and runs each for SECONDS:
#   decap_fuzzer     the codecs and offload helpers
#   dispatch_fuzzer  the receive dispatch (tunctl_select) with the decap codec, every tunnel of a table receiving
#   twin_fuzzer      the kernel twin: ICMP errors about outer packets, link failures, path MTU (icmperr.c, pmtu.c)
#   route_fuzzer     the isatap next hop from the route (isatap.c) and multicast gre memberships (mcast.c)
# Usage: fuzz/run.sh [SECONDS=60]   Prints executions and crashes per harness; exits 1 if a crash was found.
# The ESP codec (native/esp.c) has its own harness and seeds: fuzz/run-esp.sh (fuzz/esp_fuzzer.c); the userspace vti
# receive path above it (native/vti.c, several SAs): fuzz/run-vti.sh (fuzz/vti_fuzzer.c).
# Seeds: the kernel-captured packets in test/fixtures/packets (config bytes prepended). Crashes land in fuzz/crashes/.
set -euo pipefail
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${FUZZ_WORK:-$repo/build/fuzz}
mkdir -p "$work/corpus" "$here/crashes"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$repo/native" "$here/decap_fuzzer.c" "$repo/native/codec.c" "$repo/native/offload.c" -o "$work/decap_fuzzer"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$repo/native" "$here/dispatch_fuzzer.c" "$repo/native/dispatch.c" "$repo/native/codec.c" -o "$work/dispatch_fuzzer"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$repo/native" "$here/twin_fuzzer.c" \
  "$repo/native/icmperr.c" "$repo/native/pmtu.c" "$repo/native/dispatch.c" "$repo/native/codec.c" -o "$work/twin_fuzzer"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$repo/native" "$here/route_fuzzer.c" \
  "$repo/native/isatap.c" "$repo/native/mcast.c" "$repo/native/codec.c" -o "$work/route_fuzzer"
mkdir -p "$work/dcorpus"
# seed corpus: every fixture packet under each mode/flag selector
n=0
for f in "$repo"/test/fixtures/packets/*.hex; do
  [ -e "$f" ] || continue
  grep -v '^#' "$f" | while read -r hex; do
    [ -n "$hex" ] || continue
    for sel in 00070000 01030000 02000000 03000000 011f8000 021b4000 03036020 001f0010; do
      printf '%s%s' "$sel" "$hex" | xxd -r -p >"$work/corpus/seed-$(basename "$f" .hex)-$sel-$RANDOM"
    done
  done
  n=$((n + 1))
done
cp "$here"/seeds/* "$work/corpus/" 2>/dev/null || true # TCP packets for the offload paths
# dispatch seeds: a two-tunnel table (gre/sit/ipip mixes) in front of each fixture packet
for f in "$repo"/test/fixtures/packets/*.hex; do
  [ -e "$f" ] || continue
  grep -v '^#' "$f" | while read -r hex; do
    [ -n "$hex" ] || continue
    for tab in 01010900000101030080 01020900000301000085 01000900000001000081 020009000002090000030100000089; do
      printf '%s%s' "$tab" "$hex" | xxd -r -p >"$work/dcorpus/seed-$(basename "$f" .hex)-$tab-$RANDOM"
    done
  done
done
status=0
for fz in decap_fuzzer dispatch_fuzzer twin_fuzzer route_fuzzer; do
  corpus="$work/corpus"
  [ "$fz" = dispatch_fuzzer ] && corpus="$work/dcorpus"
  [ "$fz" = twin_fuzzer ] && corpus="$work/dcorpus" # the same table + packet layout
  [ "$fz" = route_fuzzer ] && corpus="$work/rcorpus" && mkdir -p "$corpus" # its own layout: routes, destination, operations
  log="$work/$fz.log"
  before=$(ls "$here/crashes" 2>/dev/null | grep -cE '^(crash|leak|timeout|oom)-' || true)
  set +e
  "$work/$fz" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$here/crashes/" \
    -max_len=4096 "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  after=$(ls "$here/crashes" 2>/dev/null | grep -cE '^(crash|leak|timeout|oom)-' || true)
  echo "fuzz $fz: ${secs}s, ${execs:-0} executions, $((after - before)) crash(es), corpus $(ls "$corpus" | wc -l) inputs"
  if [ "$rc" -ne 0 ] || [ "$after" -ne "$before" ]; then
    grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -20
    status=1
  fi
done
exit $status
