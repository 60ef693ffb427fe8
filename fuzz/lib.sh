# shellcheck shell=bash
# Sourced by fuzz/run-esp.sh and fuzz/run-vti.sh: runs one built libFuzzer harness over its corpus and reports.
# run_fuzzer NAME WORK RUNS SECS SEEDS: runs WORK/NAME_fuzzer on WORK/corpus (crashes in fuzz/crashes/NAME-*), prints
# "fuzz-NAME: N executions in Ts, C crash(es), corpus K inputs (seeded from SEEDS kernel packets)"; exits 1 on a crash.
run_fuzzer() {
  local name=$1 work=$2 runs=$3 secs=$4 seeds=$5
  local crashes_dir log rc start took execs crashes
  crashes_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/crashes"
  log="$work/fuzz.log"
  set +e
  start=$(date +%s)
  "$work/${name}_fuzzer" -runs="$runs" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$crashes_dir/$name-" \
    -max_len=2048 "$work/corpus" >"$log" 2>&1
  rc=$?
  set -e
  took=$(($(date +%s) - start))
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  crashes=$(ls "$crashes_dir" 2>/dev/null | grep -cE "^$name-(crash|leak|timeout|oom)-" || true)
  echo "fuzz-$name: ${execs:-0} executions in ${took}s, ${crashes} crash(es), corpus $(ls "$work/corpus" | wc -l) inputs (seeded from $seeds kernel packets)"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|runtime error|deadly|invariant' "$log" | head -20
    exit 1
  fi
}
