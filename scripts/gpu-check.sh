#!/usr/bin/env bash
# One command for whoever has a GPU: build dmix with the CUDA backend for this GPU's
# architecture (in build-gpu/), run the GPU test suite, then the CUDA op benchmark if
# the dmix CLI offers one, and print a short summary.
# Exit status: 0 when the GPU tests pass on a GPU; 1 when the build or a test fails;
# 2 when no GPU was found (everything built, but every GPU case was skipped).
# Extra arguments go to the configure step, e.g. -DCMAKE_BUILD_TYPE=RelWithDebInfo.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

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
if build-gpu/tests/dmix_tests_gpu --list-test-cases | grep -q "^cuda gemm:"; then
  cuda_sees_gpu=yes
else
  cuda_sees_gpu=no
fi

echo "gpu-check: running the GPU test suite"
set +e
build-gpu/tests/dmix_tests_gpu 2>&1 | tee build-gpu/gpu-tests.log
tests_status=${PIPESTATUS[0]}
set -e

bench_result="skipped (dmix bench ops has no --device option)"
if build-gpu/apps/dmix bench ops --help 2>/dev/null | grep -q -- "--device"; then
  echo "gpu-check: dmix bench ops --device cuda"
  set +e
  build-gpu/apps/dmix bench ops --device cuda 2>&1 | tee build-gpu/gpu-bench.log
  bench_status=${PIPESTATUS[0]}
  set -e
  if [ "$bench_status" -eq 0 ]; then
    bench_result="ran (figures in build-gpu/gpu-bench.log)"
  else
    # Speed is reported, never asserted: a bench that cannot run CUDA yet is not a failure.
    bench_result="did not run on cuda: $(tail -n 1 build-gpu/gpu-bench.log)"
  fi
fi

echo
echo "==== gpu-check summary ===="
echo "GPU:          ${gpu_names:-none found} (usable by the CUDA runtime: $cuda_sees_gpu)"
echo "architecture: $arch"
echo "tests:        $(grep -E '^\[doctest\] test cases:' build-gpu/gpu-tests.log | tail -n 1 | sed 's/^\[doctest\] //') (log: build-gpu/gpu-tests.log)"
echo "bench:        $bench_result"

if [ "$tests_status" -ne 0 ]; then
  echo "gpu-check: FAILED — GPU tests failed (exit status $tests_status)"
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
