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

echo "== scripts/compare-torch.py: dmix beside PyTorch, ratio = speed relative to PyTorch"
compare="$(dirname "$0")/../../scripts/compare-torch.py"
python3 - "$work/model.json" "$work/torch.json" <<'PY'
import json, sys
dmix = json.load(open(sys.argv[1]))
dmix = dmix.get("models", dmix)
ips = dmix["pyramidnet11_a24_fmnist_train_b4_ips"]
# PyTorch twice as fast at training, and a time figure dmix lacks.
json.dump({"torch": "test", "models": {"pyramidnet11_a24_fmnist_train_b4_ips": 2 * ips, "other_ms": 1.0}},
          open(sys.argv[2], "w"))
PY
printf '  conv3x3_64_64_32x32_b64_cudnn_graph_fwd_ms        0.2\n  conv3x3_64_64_32x32_b64_fwd_ms   0.4\n' > "$work/ops.log"
printf '{"ops": {"conv3x3_64_64_32x32_b64_fwd_ms": 0.1}}' > "$work/torch-ops.json"
python3 "$compare" "$work/torch.json" "$work/model.json" > "$work/table.md"
grep -q "| pyramidnet11_a24_fmnist_train_b4_ips | default | model.json | .* | 0.50 |" "$work/table.md"
python3 "$compare" "$work/torch-ops.json" "$work/ops.log" > "$work/table.md"
grep -q "| conv3x3_64_64_32x32_b64_fwd_ms | cudnn_graph | ops.log | 0.2 | 0.1 | 0.50 |" "$work/table.md"
grep -q "| conv3x3_64_64_32x32_b64_fwd_ms | default | ops.log | 0.4 | 0.1 | 0.25 |" "$work/table.md"
if python3 "$compare" "$work/missing.json" "$work/ops.log" 2> "$work/err.txt"; then echo "expected failure"; exit 1; fi
grep -q "cannot read PyTorch figures" "$work/err.txt"

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
