#!/usr/bin/env bash
# The whole test suite: set-up, build, then every doctest case through CTest.
# GPU cases report themselves skipped on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
# No file includes a layer above its own (kernels < engine < nn < augment < probe < nas < apps).
bash scripts/check-layers.sh
# CI builds treat every compiler warning as an error.
bash scripts/build.sh -DDMIX_WARNINGS_AS_ERRORS=ON
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900)
# The embedding front door: install the build, then build and run examples/ against it.
bash scripts/test-examples.sh

# The same sources without the CUDA backend, where build/ has it: nothing of kernels/cuda/
# is compiled there, so this build shows that every call into it sits behind
# `if constexpr (kernels::cuda::kBuilt)` (kernels/cuda/build_config.h.in), and its CPU
# suites and CLI tests pass there too. -fkeep-static-functions keeps the functions an
# optimised build would drop unused, as an unoptimised one does: a helper that calls a
# CUDA kernel outside such a branch then fails to link here too, not only in a Debug build.
if grep -q "kBuilt = true" build/generated/kernels/cuda/build_config.h; then
  cmake -S . -B build-nocuda -DCMAKE_BUILD_TYPE=Release -DDMIX_CUDA=OFF -DDMIX_BUILD_TESTS=ON -DDMIX_WARNINGS_AS_ERRORS=ON \
        -DCMAKE_CXX_FLAGS=-fkeep-static-functions
  cmake --build build-nocuda -j"$(nproc)"
  (cd build-nocuda && ctest --output-on-failure -j"$(nproc)" --timeout 900)
fi
