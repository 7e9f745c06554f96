#!/usr/bin/env bash
# Configures and builds dmix into build/ (CUDA backend included wherever the toolkit is found).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j"$(nproc)"
