#!/usr/bin/env bash
# Builds the libFuzzer harness for the codecs and offload helpers (clang -fsanitize=fuzzer,address,undefined) and runs it.
# Usage: fuzz/run.sh [SECONDS=60]   Prints executions and crashes; exits 1 if a crash was found.
# The ESP codec (native/esp.c) has its own harness and seeds: fuzz/run-esp.sh (fuzz/esp_fuzzer.c).
# Seeds: the kernel-captured packets in test/fixtures/packets (config bytes prepended). Crashes land in fuzz/crashes/.
set -euo pipefail
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${FUZZ_WORK:-$repo/build/fuzz}
mkdir -p "$work/corpus" "$here/crashes"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$repo/native" "$here/decap_fuzzer.c" "$repo/native/codec.c" "$repo/native/offload.c" -o "$work/decap_fuzzer"
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
log="$work/fuzz.log"
set +e
"$work/decap_fuzzer" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$here/crashes/" \
  -max_len=4096 "$work/corpus" >"$log" 2>&1
rc=$?
set -e
execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
crashes=$(ls "$here/crashes" 2>/dev/null | grep -cE '^(crash|leak|timeout|oom)-' || true)
echo "fuzz: ${secs}s, ${execs:-0} executions, ${crashes} crash(es), corpus $(ls "$work/corpus" | wc -l) inputs (seeded from $n fixtures)"
if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
  grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -20
  exit 1
fi
