#!/usr/bin/env bash
# End-to-end checks of the DARTS evaluation networks in the CLI:
#  1. `dmix train --model darts_cifar --genotype PC_DARTS_cifar --layers 5 --init-channels 8`
#     trains on a Fashion-MNIST subset (auxiliary head and drop-path on by default), and its
#     checkpoint holds the genotype (as JSON), layers, channels and auxiliary-head weights;
#  2. `dmix eval` and `dmix predict` rebuild the network from the checkpoint alone;
#  3. a genotype file in DARTS's JSON layout trains too, and --auxiliary-weight 0 builds no head;
#  4. `dmix info --json` gives params (head included), params_without_auxiliary (the reference
#     counts of fixtures/param_counts.json) and flops_per_image;
#  5. a malformed genotype, a flag for a model that takes none, and a resume with another
#     genotype end with one clear line and a non-zero status.
set -euo pipefail
tests_apps=$(cd "$(dirname "$0")" && pwd)  # safetensors_io.py, shared by the CLI tests
dmix="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(--threads 2 --workers 1)
small=(--layers 5 --init-channels 8 --limit-train 64 --limit-test 32 --batch 32 --seed 1 --quiet "${run[@]}")

"$dmix" train --model darts_cifar --genotype PC_DARTS_cifar --epochs 2 "${small[@]}" --out "$work/pc" > /dev/null
"$dmix" eval --weights "$work/pc/last.safetensors" --samples 32 "${run[@]}" > "$work/eval.txt"
test -s "$work/eval.txt"

cat > "$work/check.py" <<'PYEOF'
import json, sys

from safetensors_io import read, write  # tests/apps/safetensors_io.py

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

def check_checkpoint(path, genotype, auxiliary):
    stored, meta = read(path)
    # A dmix checkpoint prefixes the model's tensors with "model." (the optimizer's with "optimizer.").
    tensors = {n[len("model."):]: t for n, t in stored.items() if n.startswith("model.")}
    if meta.get("model") != "darts_cifar" or meta.get("model.layers") != "5" or meta.get("model.init_channels") != "8":
        fail("%s: metadata %s" % (path, {k: v for k, v in meta.items() if k.startswith("model")}))
    if json.loads(meta["model.genotype"]) != genotype:
        fail("%s holds genotype %s, not %s" % (path, meta["model.genotype"], genotype))
    heads = [n for n in tensors if n.startswith("auxiliary_head.")]
    if meta["model.auxiliary"] != ("true" if auxiliary else "false") or bool(heads) != auxiliary:
        fail("%s: auxiliary %s with %d head tensors" % (path, meta["model.auxiliary"], len(heads)))
    for name in ("stem.0.weight", "cells.0.preprocess0.op.1.weight", "cells.1.preprocess0.op.1.weight",
                 "cells.2.preprocess0.conv_1.weight", "cells.0._ops.0.op.1.weight", "classifier.weight"):
        if name not in tensors:
            fail("%s has no %s" % (path, name))
    if tensors["stem.0.weight"][1] != [24, 1, 3, 3]:
        fail("stem.0.weight has shape %s" % tensors["stem.0.weight"][1])

def main():
    what, work = sys.argv[1], sys.argv[2]
    pc = {"normal": [["sep_conv_3x3", 1], ["skip_connect", 0], ["sep_conv_3x3", 0], ["dil_conv_3x3", 1],
                     ["sep_conv_5x5", 0], ["sep_conv_3x3", 1], ["avg_pool_3x3", 0], ["dil_conv_3x3", 1]],
          "normal_concat": [2, 3, 4, 5],
          "reduce": [["sep_conv_5x5", 1], ["max_pool_3x3", 0], ["sep_conv_5x5", 1], ["sep_conv_5x5", 2],
                     ["sep_conv_3x3", 0], ["sep_conv_3x3", 3], ["sep_conv_3x3", 1], ["sep_conv_3x3", 2]],
          "reduce_concat": [2, 3, 4, 5]}
    v2 = {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
                     ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
          "normal_concat": [2, 3, 4, 5],
          "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
                     ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
          "reduce_concat": [2, 3, 4, 5]}
    if what == "pc":
        check_checkpoint(work + "/pc/last.safetensors", pc, True)
        lines = [json.loads(l) for l in open(work + "/pc/metrics.jsonl")]
        if len(lines) != 2:
            fail("metrics.jsonl has %d lines, not 2" % len(lines))
        write(work + "/x.safetensors", {"input": ("F32", [2, 1, 28, 28], [0.01 * (i % 97) for i in range(2 * 784)])})
        # Genotype files: DARTS_V2 pretty-printed, and the malformed ones.
        json.dump(v2, open(work + "/v2.json", "w"), indent=2)
        bad = dict(v2, normal=v2["normal"][:7])
        json.dump(bad, open(work + "/seven.json", "w"))
        json.dump(dict(v2, reduce=[["sep_conv_9x9", 0]] + v2["reduce"][1:]), open(work + "/unknown.json", "w"))
        json.dump(dict(v2, normal=[["sep_conv_3x3", 4]] + v2["normal"][1:]), open(work + "/range.json", "w"))
        open(work + "/broken.json", "w").write('{"normal": [["sep_conv_3x3", 0]')
    elif what == "v2":
        check_checkpoint(work + "/v2/last.safetensors", v2, False)
    elif what == "predict":
        tensors, _ = read(work + "/y.safetensors")
        if tensors["logits"][1] != [2, 10]:
            fail("predict gave logits of shape %s" % tensors["logits"][1])
    elif what == "info":
        j = json.load(open(work + "/info.json"))
        if (j["params"], j["params_without_auxiliary"]) != (4111104, 3634678) or not j["flops_per_image"] > 0:
            fail("info: %s" % j)
        print("darts_cifar PC_DARTS_cifar: %d parameters, %d without the auxiliary head, %.3f GFLOPs"
              % (j["params"], j["params_without_auxiliary"], j["flops_per_image"] / 1e9))

main()
PYEOF
check() { PYTHONPATH="$tests_apps" python3 "$work/check.py" "$1" "$work"; }

check pc
"$dmix" predict --weights "$work/pc/last.safetensors" --input "$work/x.safetensors" --output "$work/y.safetensors" \
  --threads 2 > /dev/null
check predict
"$dmix" train --model darts_cifar --genotype "$work/v2.json" --auxiliary-weight 0 --epochs 1 "${small[@]}" \
  --out "$work/v2" > /dev/null
check v2
"$dmix" info --model darts_cifar --genotype PC_DARTS_cifar --json > "$work/info.json"
check info

source "$(dirname "$0")/lib.sh"  # expect_error
t=(train --model darts_cifar --epochs 1 "${small[@]}" --out "$work/bad")
expect_error "'normal' has 7 edges, not 8 (2 per node x 4 nodes)" "$dmix" "${t[@]}" --genotype "$work/seven.json"
expect_error "unknown primitive 'sep_conv_9x9'" "$dmix" "${t[@]}" --genotype "$work/unknown.json"
expect_error "takes input node 4, which must be in \[0, 2)" "$dmix" "${t[@]}" --genotype "$work/range.json"
expect_error "broken.json: not valid JSON" "$dmix" "${t[@]}" --genotype "$work/broken.json"
expect_error "neither a file nor a built-in genotype" "$dmix" "${t[@]}" --genotype DARTS_V3
expect_error "apply to darts_cifar and darts_imagenet, not resnet18" "$dmix" info --model resnet18 --genotype DARTS_V2
expect_error "apply to darts_cifar and darts_imagenet, not pyramidnet11_a6" "$dmix" train --model pyramidnet11_a6 \
  --drop-path 0.2 --epochs 1 --limit-train 64 --quiet
expect_error "with another genotype than the flags give" "$dmix" train --model darts_cifar --genotype DARTS_V1 \
  --epochs 3 "${small[@]}" --out "$work/pc" --resume "$work/pc/last.safetensors"
test ! -e "$work/bad"
echo "all nas checks passed"
