#!/usr/bin/env bash
# Builds the libFuzzer harness for the userspace vti receive path (fuzz/vti_fuzzer.c + native/vti.c, esp.c and
# codec.c for the ICMP a peer's vti sends; clang -fsanitize=fuzzer,address,undefined, libcrypto) and runs it in one
# process. The harness's table: 8 vtis with fixed keys (see the comment at the top of fuzz/vti_fuzzer.c).
# Usage: fuzz/run-vti.sh [RUNS=10000000] [MAX_SECONDS=1800]   Prints executions, time and crashes; exits 1 on a crash.
# Seeds: every kernel ESP packet of test/fixtures/esp/kernel-esp.txt, outer header included, addressed to the
# table's vti whose SA decapsulates it (and to the whole table), inner IPv4/IPv6 packets for every peer to send,
# and anti-replay record series across the SAs. Crashes land in fuzz/crashes/ (prefix vti-).
set -euo pipefail
runs=${1:-10000000}
secs=${2:-1800}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=fuzz/lib.sh
source "$here/lib.sh"
repo=$(cd "$here/.." && pwd)
work=${FUZZ_WORK:-$repo/build/fuzz-vti}
mkdir -p "$work/corpus" "$here/crashes"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$repo/native" \
  "$here/vti_fuzzer.c" "$repo/native/vti.c" "$repo/native/esp.c" "$repo/native/codec.c" -lcrypto -o "$work/vti_fuzzer"
n=0
while read -r alg dir hex; do
  # mode 0, then: table mask, address selector, SPI selector; which vti takes the kernel's packet (vti_fuzzer.c)
  case $alg-$dir in
    aes-gcm-128-out) sel=df0000;;  # vti 0 (without vti 5, which shadows its addresses)
    aes-gcm-256-out) sel=008600;;  # vti 1: source rewritten to 192.0.2.3
    aes-cbc-128-out) sel=008700;;  # vti 2: source 192.0.2.4
    aes-cbc-256-out) sel=000000;;  # vti 5 (vti 0's addresses, vti 3's SPI and keys) ...
    aes-gcm-128-in) sel=000000;;   # vti 4
    aes-gcm-256-in) sel=008b00;;   # vti 7's addresses: no SA, no_state
    *-in) sel=008900;;             # vti 6's addresses, another SPI: no_state
    *) continue;;
  esac
  printf '00%s%s' "$sel" "$hex" | xxd -r -p >"$work/corpus/kernel-$alg-$dir-$n"
  [ "$alg-$dir" = aes-cbc-256-out ] && printf '00008c00%s' "$hex" | xxd -r -p >"$work/corpus/kernel-$alg-$dir-$n-v3" # ... and vti 3
  printf '00ff0000%s' "$hex" | xxd -r -p >"$work/corpus/kernel-$alg-$dir-$n-all"
  n=$((n + 1))
done < <(grep -v '^#' "$repo/test/fixtures/esp/kernel-esp.txt")
for p in 0 1 2 3 4 5 6 7; do
  # mode 1: peer p sends an inner IPv4 (28 bytes) and IPv6 (48 bytes) packet, no bit flipped, path MTU 1500
  printf '01000%dffff004500001c00004000401100000a0900010a090002000000000000000000' $p | xxd -r -p >"$work/corpus/peer4-$p"
  printf '01000%dffff006000000000081140fd000009000000000000000000000001fd000009000000000000000000000002000000000000000000' $p | xxd -r -p >"$work/corpus/peer6-$p"
  # an ECT(0) inner packet whose outer ECN bits become CE on the way (bit 8 flipped): the inner packet arrives CE
  m=00; [ $p = 0 ] && m=df # without vti 5, which shadows vti 0's addresses
  printf '01%s0%d0008004502001c00004000401100000a0900010a090002000000000000000000' $m $p | xxd -r -p >"$work/corpus/peer4-ce-$p"
  # a bit of the sequence number flipped (bit 200: byte 25); a 1400-byte IPv4 packet with DF over path MTU 1024 (ICMP)
  printf '01000%d00c8004500001c00004000401100000a0900010a090002000000000000000000' $p | xxd -r -p >"$work/corpus/peer4-flip-$p"
  { printf '01000%dffff04450005780000400040110000c0000201c0000202' $p; head -c 1380 /dev/zero | xxd -p | tr -d '\n'; } | xxd -r -p >"$work/corpus/peer4-big-$p"
done
# mode 2: series over the SAs: seq 5, 3, 3 (replay) by peer 0; 100, 60 (too old for window 32) by peers 1 and 4;
# a corrupted ICV; the last sequence number (then exhausted) by peer 5
printf '0200%s' "$(printf '%02x%08x%02x' 0 5 0 0 3 0 0 3 0 1 100 0 4 100 0 1 60 0 4 60 0 2 7 1 5 4294967295 0 3 9 0)" | xxd -r -p >"$work/corpus/series"
run_fuzzer vti "$work" "$runs" "$secs" "$n"
