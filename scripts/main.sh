#!/usr/bin/env bash
# The main job: set-up, build, then train the default model on the embedded Fashion-MNIST
# with DCutMix (K=3, alpha=1). Arguments are passed on to `dmix train` (later flags win),
# e.g. `bash scripts/main.sh --epochs 1` or `--mix none`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
exec build/apps/dmix train --mix dcutmix --mix-k 3 --mix-alpha 1 "$@"
