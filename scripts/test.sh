#!/usr/bin/env bash
# The whole test suite: set-up, build, then every doctest case through CTest.
# GPU cases report themselves skipped on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
# The embedding front door: install the build, then build and run examples/ against it.
bash ../scripts/test-examples.sh
