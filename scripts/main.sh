#!/usr/bin/env bash
# The main job: set-up, build, then run it. Until training lands this is the CPU op
# benchmark; arguments are passed on to `dmix bench ops`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
exec build/apps/dmix bench ops "$@"
