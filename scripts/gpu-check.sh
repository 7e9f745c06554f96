#!/usr/bin/env bash
# One command for whoever has a GPU: build dmix with the CUDA backend for this GPU's
# architecture (in build-gpu/), run the GPU test suite (every CUDA op against its CPU
# twin, each printing its max abs / rel errors), then the GPU benchmarks:
#   dmix bench ops --device cuda                (twice: cuDNN deterministic, then not)
#   dmix bench --model resnet50 --batch 32 --train --device cuda
#   dmix bench --model pyramidnet110_a64 --batch 64 --train --device cuda
# then, where PyTorch with CUDA is installed, scripts/torch_cuda_reference.py on the same
# workloads and a side-by-side table (scripts/compare-torch.py), and print a summary.
# Logs: build-gpu/gpu-tests.log, build-gpu/gpu-bench-*.log, build-gpu/compare-torch-*.md.
# Exit status: 0 when the GPU tests pass on a GPU; 1 when the build or a test fails (the
# benchmarks still run, for the figures, but the script fails); 2 when no GPU was found
# (everything built, but every GPU case was skipped). A benchmark that fails is reported
# in the summary; speed is never a pass/fail criterion.
# Extra arguments go to the configure step, e.g. -DCMAKE_BUILD_TYPE=RelWithDebInfo.
# DMIX_CUDA_CONV=cudnn|handwritten, DMIX_CUDNN_API=auto|legacy|graph and
# DMIX_CUDNN_WORKSPACE_MB pass through to the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

# GPU machines are often offline and not Debian: when the set-up step cannot install what
# is missing, configure with what is there (CMake names anything still missing; pass its
# location as an extra argument, e.g. -DDMIX_STB_INCLUDE=/path/to/include/stb).
# DMIX_SKIP_SETUP=1 skips the step, for machines whose package registry cannot be reached.
if [ "${DMIX_SKIP_SETUP:-0}" = 1 ]; then
  echo "gpu-check: DMIX_SKIP_SETUP=1: configuring with what is installed"
elif ! bash scripts/setup.sh; then
  echo "gpu-check: set-up could not install the Debian packages; configuring with what is installed"
fi

# Compute capability "9.0" -> CUDA architecture "90"; one entry per distinct GPU model.
gpu_found=no
arch=""
if command -v nvidia-smi >/dev/null 2>&1 && caps=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null); then
  arch=$(printf '%s\n' "$caps" | tr -d ' .' | grep -E '^[0-9]+$' | sort -u | paste -sd ';' || true)
  [ -n "$arch" ] && gpu_found=yes
fi
if [ -z "$arch" ]; then
  arch=90
  echo "gpu-check: no GPU reported by nvidia-smi; compiling for architecture $arch"
fi
gpu_names=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | paste -sd ',' || true)

cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDMIX_CUDA=ON "-DDMIX_CUDA_ARCHITECTURES=$arch" "$@"
cmake --build build-gpu -j"$(nproc)" --target dmix_tests_gpu dmix

# doctest lists only the cases it will run, and GPU cases skip themselves unless the
# CUDA runtime sees a device (nvidia-smi may see one that the runtime cannot use).
# (The list is read whole first: under pipefail, grep -q closing the pipe early would
# fail the listing with SIGPIPE.)
gpu_cases=$(build-gpu/tests/dmix_tests_gpu --list-test-cases)
if grep -q "^cuda gemm:" <<<"$gpu_cases"; then
  cuda_sees_gpu=yes
else
  cuda_sees_gpu=no
fi

# ---- tests: every MESSAGE (one per op, shape, dtype and pass, with its errors) is printed ----
echo "gpu-check: running the GPU test suite (per-op errors in build-gpu/gpu-tests.log)"
set +e
build-gpu/tests/dmix_tests_gpu 2>&1 | tee build-gpu/gpu-tests.log
tests_status=${PIPESTATUS[0]}
set -e
# gpu_main returns 77 when every case was skipped for want of a GPU: not a failure.
tests_failed=no
if [ "$tests_status" -ne 0 ] && [ "$tests_status" -ne 77 ]; then
  tests_failed=yes
fi

# ---- benchmarks ------------------------------------------------------------------------------
bench_summary=""
run_bench() {  # name, then the dmix arguments
  local name=$1
  shift
  local log="build-gpu/gpu-bench-$name.log"
  echo "gpu-check: dmix $*"
  set +e
  timeout 900 build-gpu/apps/dmix "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -eq 0 ]; then
    bench_summary+="  $name: ok ($log)"$'\n'
    bench_summary+=$(grep -E '^  [a-z0-9_]+' "$log" | sed 's/^/    /' || true)$'\n'
  else
    bench_summary+="  $name: FAILED with status $status: $(tail -n 1 "$log")"$'\n'
  fi
}
if [ "$cuda_sees_gpu" = yes ]; then
  # The ops run prints every cuDNN timing (legacy algorithms, graph-API plans, the
  # choice) into its log; the second run lets cuDNN take non-deterministic algorithms,
  # as PyTorch does by default, for a like-for-like convolution comparison.
  DMIX_CUDNN_VERBOSE=1 run_bench ops bench ops --device cuda
  DMIX_CUDNN_DETERMINISTIC=0 run_bench ops-nondeterministic bench ops --device cuda
  run_bench resnet50 bench --model resnet50 --batch 32 --train --device cuda
  run_bench pyramidnet110 bench --model pyramidnet110_a64 --batch 64 --train --device cuda
else
  bench_summary="  skipped (no GPU the CUDA runtime can use)"$'\n'
fi

# ---- PyTorch beside dmix, where this machine has PyTorch with CUDA ----------------------------
# The same workloads through scripts/torch_cuda_reference.py, twice: PyTorch's default
# (cuDNN may pick non-deterministic algorithms), paired with the ops-nondeterministic run,
# and --deterministic, paired with dmix's default runs. Tables: build-gpu/compare-torch-*.md.
# DMIX_TORCH_REFERENCE names the folder holding ../shared/bench/torch_reference.py.
torch_summary="  skipped (no PyTorch with CUDA, or no torch_reference.py, here)"$'\n'
reference_dir="${DMIX_TORCH_REFERENCE:-../shared/bench}"
if [ "$cuda_sees_gpu" = yes ] && [ -f "$reference_dir/torch_reference.py" ] &&
  python3 -c 'import sys, torch, torchvision; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  torch_summary=""
  for mode in default deterministic; do
    flag=""
    [ "$mode" = deterministic ] && flag=--deterministic
    echo "gpu-check: python3 scripts/torch_cuda_reference.py $flag"
    if python3 scripts/torch_cuda_reference.py --reference "$reference_dir" $flag > "build-gpu/torch-$mode.json"; then
      if [ "$mode" = default ]; then
        logs=(build-gpu/gpu-bench-ops-nondeterministic.log)
      else
        logs=(build-gpu/gpu-bench-ops.log build-gpu/gpu-bench-resnet50.log build-gpu/gpu-bench-pyramidnet110.log)
      fi
      python3 scripts/compare-torch.py "build-gpu/torch-$mode.json" "${logs[@]}" > "build-gpu/compare-torch-$mode.md"
      torch_summary+="  PyTorch $mode (build-gpu/compare-torch-$mode.md):"$'\n'
      torch_summary+=$(sed 's/^/    /' "build-gpu/compare-torch-$mode.md")$'\n'
    else
      torch_summary+="  PyTorch $mode: the reference script failed"$'\n'
    fi
  done
fi

# ---- summary ---------------------------------------------------------------------------------
echo
echo "==== gpu-check summary ===="
echo "GPU:          ${gpu_names:-none found} (usable by the CUDA runtime: $cuda_sees_gpu)"
echo "architecture: $arch"
echo "tests:        $(grep -E '^\[doctest\] test cases:' build-gpu/gpu-tests.log | tail -n 1 | sed 's/^\[doctest\] //') (log: build-gpu/gpu-tests.log)"
echo "assertions:   $(grep -E '^\[doctest\] assertions:' build-gpu/gpu-tests.log | tail -n 1 | sed 's/^\[doctest\] //')"
echo "benchmarks:"
printf '%s' "$bench_summary"
echo "beside PyTorch (ratio: dmix's speed relative to PyTorch's):"
printf '%s' "$torch_summary"

if [ "$tests_failed" = yes ]; then
  echo
  echo "############################################################################"
  echo "# gpu-check: FAILED — the GPU test suite failed (exit status $tests_status)"
  echo "############################################################################"
  echo "Failing test cases:"
  awk '/^TEST CASE:/ { name = $0 } /ERROR:/ { print "  " name }' build-gpu/gpu-tests.log | sort -u || true
  echo "First failures (each with its logged context in build-gpu/gpu-tests.log):"
  grep -E -A3 'ERROR:' build-gpu/gpu-tests.log | head -n 40 | sed 's/^/  /' || true
  exit 1
fi
if [ "$cuda_sees_gpu" != yes ]; then
  if [ "$gpu_found" = yes ]; then
    echo "gpu-check: nvidia-smi lists a GPU but the CUDA runtime sees none (driver too old for this toolkit?)"
  fi
  echo "gpu-check: no usable GPU — the build is checked, but every GPU case was skipped"
  exit 2
fi
echo "gpu-check: OK"
