#!/usr/bin/env bash
# dmix bench, end to end on tiny workloads: the JSON it prints carries the keys the
# PyTorch reference script uses (so scripts can pair them), every figure is a positive
# number, and bad requests end with one clear line. (Speeds are reported, never judged.)
set -euo pipefail
dmix="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== bench --model: training and inference keys"
"$dmix" bench --model pyramidnet11_a24 --fmnist --batch 4 --train --infer --json --threads 1 > "$work/model.json"
python3 - "$work/model.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
models = j.get("models", j)
for key in ("pyramidnet11_a24_fmnist_train_b4_ips", "pyramidnet11_a24_fmnist_infer_b4_ips"):
    assert key in models, f"missing {key} in {sorted(models)}"
    assert models[key] > 0, (key, models[key])
PY

echo "== bench mix: every method, and its share of a training step"
"$dmix" bench mix --batch 8 --size 16 --num-classes 10 --reps 1 --model pyramidnet11_a24 --json --threads 1 > "$work/mix.json"
python3 - "$work/mix.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for m in ("cutout", "mixup", "cutmix", "dmixup", "dcutmix", "saliency-dcutmix"):
    ips = j[f"mix_{m}_b8_16x16_ips"]
    share = j[f"mix_{m}_b8_16x16_share_of_pyramidnet11_a24_step"]
    assert ips > 0 and 0 < share < 1, (m, ips, share)
assert j["pyramidnet11_a24_train_b8_16x16_step_ms"] > 0
PY

echo "== clear errors"
if "$dmix" bench mix --mix-k 1 2> "$work/err.txt"; then echo "expected failure for --mix-k 1"; exit 1; fi
test "$(wc -l < "$work/err.txt")" -le 2
if "$dmix" bench --model nosuchnet --train 2> "$work/err.txt"; then echo "expected failure for an unknown model"; exit 1; fi
grep -q "unknown model" "$work/err.txt"
echo "all bench checks passed"
