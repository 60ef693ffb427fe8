#!/usr/bin/env bash
# Builds the libFuzzer harness for the ESP codec's decapsulation (fuzz/esp_fuzzer.c + native/esp.c, clang
# -fsanitize=fuzzer,address,undefined, libcrypto) and runs it in one process.
# Usage: fuzz/run-esp.sh [RUNS=10000000] [MAX_SECONDS=1800]   Prints executions, time and crashes; exits 1 on a crash.
# Seeds: every kernel ESP packet of test/fixtures/esp/kernel-esp.txt (decapsulating validly with the harness's keys),
# in place and not, plus inner packets to encapsulate and anti-replay record series. Crashes land in fuzz/crashes/.
set -euo pipefail
runs=${1:-10000000}
secs=${2:-1800}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fuzz/lib.sh
source "$here/lib.sh"
repo=$(cd "$here/.." && pwd)
work=${FUZZ_WORK:-$repo/build/fuzz-esp}
mkdir -p "$work/corpus" "$here/crashes"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$repo/native" "$here/esp_fuzzer.c" "$repo/native/esp.c" -lcrypto -o "$work/esp_fuzzer"
n=0
while read -r alg dir hex; do
  case $alg in aes-gcm-128) a=0;; aes-gcm-256) a=1;; aes-cbc-128) a=2;; aes-cbc-256) a=3;; *) continue;; esac
  k=00; [ "$dir" = in ] && k=01
  esp=${hex:40} # without the outer IPv4 header
  for extra in 08 88 0c 00; do # window 32 / in place / window 4096 / no window
    sel=$(printf '%02x' $((a | 0x$extra)))
    printf '%s%s%s' "$sel" "$k" "$esp" | xxd -r -p >"$work/corpus/kernel-$alg-$dir-$n-$extra"
  done
  n=$((n + 1))
done < "$repo/test/fixtures/esp/kernel-esp.txt"
for a in 0 1 2 3; do
  # mode 2: inner IPv4 (28 bytes) and IPv6 (48 bytes), no bit flipped / bit 300 flipped
  printf '%02x00ffff4500001c00004000401100000a0900010a090002000000000000000000' $((a | 0x28)) | xxd -r -p >"$work/corpus/inner4-$a"
  printf '%02x00012c6000000000081140fd000009000000000000000000000001fd000009000000000000000000000002000000000000000000' $((a | 0x28)) | xxd -r -p >"$work/corpus/inner6-$a"
  # mode 1: an authentic payload: IPv4 packet, padding 1 2, pad length 2, next header 4
  printf '%02x004500001c00004000401100000a0900010a090002000000000000000001020204' $((a | 0x18)) | xxd -r -p >"$work/corpus/payload-$a"
  # mode 3: seq 5, 3, 3 (replay), 100, 60, 68 (too old with window 32), 101 corrupted
  printf '%02x00%s%s' $((a | 0x38)) "$(printf '%08x00' 5 3 3 100 60 68)" 0000006501 | xxd -r -p >"$work/corpus/replay-$a"
done
run_fuzzer esp "$work" "$runs" "$secs" "$n"
