#!/usr/bin/env bash
# The issue's first look at the paper's ordering on our data: one fixed short budget
# (same model, epochs, subset and seeds) for each mixing method on Fashion-MNIST, and a
# table of test top-1 error (mean and spread over the seeds).
#   bash scripts/compare-mixing.sh [OUT_DIR] [extra dmix train flags...]
# Defaults: pyramidnet11_a48_basic, batch 64, the first 10000 training images, 3 epochs,
# no per-image augmentation, K=3 (DMixup, DCutMix), alpha=1, every batch mixed (p=1),
# seeds 1-3, the full 10000-image test set. Set METHODS / SEEDS to change what is compared;
# extra flags come last and win, e.g. the README's longer budget:
#   SEEDS="1 2" bash scripts/compare-mixing.sh runs/compare-long --limit-train 20000 --epochs 15
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/compare-mixing}"
shift || true
methods="${METHODS:-none mixup cutmix dmixup dcutmix}"
seeds="${SEEDS:-1 2 3}"
dmix="${DMIX:-build/apps/dmix}"  # DMIX=path/to/dmix to use another build
[ -x "$dmix" ] || bash scripts/build.sh >/dev/null

for method in $methods; do
  for seed in $seeds; do
    dir="$out/$method-seed$seed"
    [ -f "$dir/metrics.jsonl" ] && continue
    "$dmix" train --model pyramidnet11_a48_basic --no-augment --limit-train 10000 --epochs 3 --seed "$seed" \
      --mix "$method" --mix-k 3 --mix-alpha 1 --mix-prob 1 --out "$dir" --quiet "$@" > /dev/null
  done
done

python3 - "$out" $methods <<'PY'
import json, statistics, sys, glob, os
out, methods = sys.argv[1], sys.argv[2:]
print("| method | test top-1 error, % (per seed) | mean | std |")
print("|---|---|---|---|")
for m in methods:
    errs = []
    for f in sorted(glob.glob(os.path.join(out, f"{m}-seed*", "metrics.jsonl"))):
        lines = [json.loads(l) for l in open(f)]
        errs.append(lines[-1]["test_top1_error"])
    if not errs:
        continue
    std = statistics.stdev(errs) if len(errs) > 1 else 0.0
    print(f"| {m} | {', '.join(f'{e:.2f}' for e in errs)} | {statistics.mean(errs):.2f} | {std:.2f} |")
PY
