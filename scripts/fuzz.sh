#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ into build-fuzz/ (clang, ASan + UBSan, CUDA
# off) and runs each for SECONDS (default 60) on its committed seeds
# (tests/fuzz/corpus/<harness>/, read only; the inputs it finds go to
# build-fuzz/runs/<harness>/corpus/). Prints each harness's executions, speed, coverage
# (libFuzzer's cov: edges and ft: features) and crashes; exits non-zero when any harness
# crashed, leaving the crashing input under build-fuzz/runs/<harness>/ (replay it with
# build-fuzz/tests/fuzz/<harness> FILE).
#
#   bash scripts/fuzz.sh [SECONDS] [HARNESS...]     e.g. bash scripts/fuzz.sh 600 fuzz_image
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(fuzz_safetensors fuzz_checkpoint fuzz_idx fuzz_cifar fuzz_image fuzz_class_index fuzz_subset)
fi
for h in "${harnesses[@]}"; do
  [ -f "tests/fuzz/$h.cpp" ] || { echo "fuzz.sh: no harness tests/fuzz/$h.cpp" >&2; exit 2; }
done

command -v clang++ > /dev/null || { echo "fuzz.sh: clang++ not found (Debian: apt-get install clang libfuzzer-14-dev)" >&2; exit 2; }
mkdir -p build-fuzz
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DDMIX_CUDA=OFF -DDMIX_FUZZ=ON -DDMIX_BUILD_TESTS=OFF \
      -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang > build-fuzz/configure.log 2>&1 ||
  { cat build-fuzz/configure.log >&2; exit 1; }
cmake --build build-fuzz -j"$(nproc)" --target "${harnesses[@]}"

export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
crashed=()
summary=()
for h in "${harnesses[@]}"; do
  run="build-fuzz/runs/$h"
  rm -rf "$run"
  mkdir -p "$run/corpus"
  echo "== $h: ${seconds} s"
  status=0
  # -timeout: an input that takes longer than 30 s is a finding (a hang) too. One worker:
  # CI's two cores are shared with other work.
  "build-fuzz/tests/fuzz/$h" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$run/" "$run/corpus" "tests/fuzz/corpus/$h" > "$run/log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run/log" | tail -1)
  coverage=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$run/log" | tail -1 || true)
  crashes=$(find "$run" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  line=$(printf '%-18s %12s execs %8s/s  %-34s crashes: %s' "$h" "${execs:-?}" "${speed:-?}" "${coverage:-cov: ?}" "$crashes")
  summary+=("$line")
  echo "$line"
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    crashed+=("$h")
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|terminate|what\(\)' "$run/log" | head -20 >&2 || true
  fi
done
echo "== fuzz.sh summary (${seconds} s each)"
printf '%s\n' "${summary[@]}"
if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${crashed[*]} (inputs and logs under build-fuzz/runs/)" >&2
  exit 1
fi
