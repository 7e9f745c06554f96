#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer:
# builds build-asan/ (-DDMIX_SANITIZE=ON, CUDA off) and runs every CTest test there, the CLI
# tests included (their dmix is the sanitized one). A sanitizer report fails the test that
# triggers it: UBSan does not recover (-fno-sanitize-recover) and ASan halts on its first error.
#
#   bash scripts/sanitize.sh [CMAKE_ARGS...] [-- CTEST_ARGS...]
#   e.g. bash scripts/sanitize.sh -- -R safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
cmake_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do cmake_args+=("$1"); shift; done
[ $# -gt 0 ] && shift  # the "--"

bash scripts/setup.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DDMIX_CUDA=OFF -DDMIX_SANITIZE=ON -DDMIX_BUILD_TESTS=ON \
      "${cmake_args[@]}"
cmake --build build-asan -j"$(nproc)"

# detect_stack_use_after_return catches a pointer kept to a returned function's locals;
# check_initialization_order, a static initialiser reading another file's statics too early.
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
(cd build-asan && ctest --output-on-failure -j"$(nproc)" --timeout 1800 "$@")
