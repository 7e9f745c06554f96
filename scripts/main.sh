#!/usr/bin/env bash
# The main job: set-up, build, then train the default model on the embedded Fashion-MNIST.
# The defaults of `dmix train` are this job (pyramidnet11_a40_basic, batch 64, 6 epochs, DCutMix K=3
# alpha=0.2 p=0.5). Arguments are passed on (later flags win), e.g. `--epochs 1` or `--mix none`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
exec build/apps/dmix train "$@"
