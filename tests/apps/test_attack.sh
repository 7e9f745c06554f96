#!/usr/bin/env bash
# End-to-end checks of `dmix attack` on models trained here for one short epoch:
#  1. FGSM, PGD, PGD-L2 and APGD-CE on a split: the JSON has every key, the clean error is
#     `dmix eval`'s, PGD and APGD-CE raise the error, and eps = 0 leaves it as it was;
#  2. on a fixed --input batch, the saved adversarial images stay in the eps-ball (L-inf and
#     L2) and in [0, 1], the same seed gives the same images, --random-start=false ignores
#     the seed, and a targeted attack reaches its target on most images;
#  3. a transfer run with two sources (same architecture: gray-box; another: black-box)
#     writes the table, the per-source JSON, an adversarial set per source and the PNG grid;
#  4. bad input ends with one clear line and a non-zero status.
# Files are read and written with python3's standard library only (json, struct).
set -euo pipefail
tests_apps=$(cd "$(dirname "$0")" && pwd)  # safetensors_io.py, shared by the CLI tests
dmix="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(--threads 2 --workers 1)

train() {  # train OUT MODEL SEED
  "$dmix" train --model "$2" --limit-train 512 --limit-test 64 --epochs 1 --batch 32 --mix none --seed "$3" \
    --quiet "${run[@]}" --out "$work/$1" > /dev/null
}
train target pyramidnet11_a6 3
train gray pyramidnet11_a6 4
train black pyramidnet11_a4_basic 5
weights="$work/target/last.safetensors"

cat > "$work/st.py" <<'PYEOF'
import json, math, random, sys

from safetensors_io import read, write  # tests/apps/safetensors_io.py

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

KEYS = ("attack", "eps", "clean_top1_error", "robust_top1_error", "clean_top5_error", "robust_top5_error", "samples",
        "seconds", "steps", "seed", "model")

def check_split(work, eval_json):
    clean = json.loads(open(eval_json).read())["top1_error"]
    for attack in ("fgsm", "pgd", "pgd-l2", "apgd-ce"):
        j = json.load(open("%s/%s.json" % (work, attack)))
        zero = json.load(open("%s/%s-zero.json" % (work, attack)))
        for key in KEYS:
            if key not in j:
                fail("%s.json has no %s" % (attack, key))
        if j["attack"] != attack or j["samples"] != 32 or not j["seconds"] > 0:
            fail("%s.json: %s" % (attack, j))
        if abs(j["clean_top1_error"] - clean) > 1e-9:
            fail("%s: clean error %s, dmix eval says %s" % (attack, j["clean_top1_error"], clean))
        if attack in ("pgd", "apgd-ce") and not j["robust_top1_error"] > j["clean_top1_error"]:
            fail("%s does not raise the error: %s -> %s" % (attack, j["clean_top1_error"], j["robust_top1_error"]))
        if (zero["robust_top1_error"], zero["robust_top5_error"]) != (zero["clean_top1_error"], zero["clean_top5_error"]):
            fail("%s with eps 0 changes the error: %s" % (attack, zero))
        print("%-8s clean %.2f%% -> robust %.2f%% (top-5 %.2f%% -> %.2f%%) in %.1f s"
              % (attack, j["clean_top1_error"], j["robust_top1_error"], j["clean_top5_error"], j["robust_top5_error"],
                 j["seconds"]))
    if json.load(open(work + "/pgd.json"))["steps"] != 10 or json.load(open(work + "/apgd-ce.json"))["steps"] != 100:
        fail("default steps are not pgd 10, apgd-ce 100")

def make_batch(work):
    rng = random.Random(7)
    # Pixels at 0 and 1 too, where the clipping to [0, 1] binds.
    pixels = [min(1.0, max(0.0, rng.uniform(-0.2, 1.2))) for _ in range(12 * 784)]
    write(work + "/x.safetensors", {"input": ("F32", [12, 1, 28, 28], pixels)})
    write(work + "/y.safetensors", {"labels": ("I64", [12], [rng.randrange(10) for _ in range(12)])})
    write(work + "/xbad.safetensors", {"input": ("F32", [12, 1, 28, 28], [rng.gauss(0, 1) for _ in range(12 * 784)])})

def check_ball(work, name, norm, eps, moves="moves"):  # APGD leaves misclassified images as they are
    eps = float(eps)
    x = read(work + "/x.safetensors")[0]["input"][2]
    t, meta = read(work + "/" + name)
    adv, labels = t["adv"], t["labels"]
    if adv[1] != [12, 1, 28, 28] or labels[2] != read(work + "/y.safetensors")[0]["labels"][2]:
        fail("%s holds adv %s and labels %s" % (name, adv[1], labels[2]))
    a = adv[2]
    if min(a) < 0 or max(a) > 1:
        fail("%s leaves [0, 1]: [%g, %g]" % (name, min(a), max(a)))
    worst = 0
    for i in range(12):
        d = [a[i * 784 + k] - x[i * 784 + k] for k in range(784)]
        worst = max(worst, max(abs(v) for v in d) if norm == "linf" else math.sqrt(sum(v * v for v in d)))
    if worst > eps * (1 + 1e-5) + 1e-6 or (moves == "moves" and worst < eps / 4):
        fail("%s: largest %s perturbation %g for eps %g" % (name, norm, worst, eps))
    print("%s: largest %s perturbation %.5f (eps %.5f)" % (name, norm, worst, eps))

def same_images(work, a, b, expect):
    same = read(work + "/" + a)[0]["adv"][2] == read(work + "/" + b)[0]["adv"][2]
    if same != (expect == "same"):
        fail("%s and %s: images %s, expected %s" % (a, b, "equal" if same else "different", expect))

def check_targeted(work):
    j = json.load(open(work + "/targeted.json"))
    if not j["targeted"] or j["target_hit_rate"] < 50:
        fail("a targeted attack with eps 0.5 reaches its target on %s%% of the images" % j.get("target_hit_rate"))
    t, _ = read(work + "/targeted.safetensors")
    if set(t["targets"][2]) != {0}:
        fail("targets %s, expected class 0 throughout" % t["targets"][2])
    print("targeted pgd towards class 0: %.1f%% reached" % j["target_hit_rate"])

def check_transfer(work, out):
    j = json.load(open(work + "/transfer.json"))
    text = open(out).read()
    sources = j["sources"]
    if [s["relation"] for s in sources] != ["gray-box", "black-box"]:
        fail("relations %s" % [s["relation"] for s in sources])
    if [s["model"] for s in sources] != ["pyramidnet11_a6", "pyramidnet11_a4_basic"]:
        fail("source models %s" % [s["model"] for s in sources])
    for s in sources:
        for key in ("weights", "clean_top1_error", "robust_top1_error", "source_clean_top1_error",
                    "source_robust_top1_error"):
            if key not in s:
                fail("source entry without %s: %s" % (key, s))
        if s["clean_top1_error"] != j["clean_top1_error"]:
            fail("the target's clean error differs per source row: %s" % s)
    for word in ("white-box", "gray-box", "black-box"):
        if word not in text:
            fail("the table has no %s row:\n%s" % (word, text))
    t, meta = read(work + "/transfer.safetensors")
    if sorted(t) != ["adv", "adv.source0", "adv.source1", "labels"] or t["adv.source1"][1] != [16, 1, 28, 28]:
        fail("transfer.safetensors holds %s" % {k: v[1] for k, v in t.items()})
    png = open(work + "/grid.png", "rb").read()
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 1000:
        fail("grid.png is not a PNG")
    print("transfer: white-box %.2f%%, gray-box %.2f%%, black-box %.2f%% (clean %.2f%%)"
          % (j["robust_top1_error"], sources[0]["robust_top1_error"], sources[1]["robust_top1_error"],
             j["clean_top1_error"]))

def plain(src, dst):  # the checkpoint's weights as a plain state dict: no metadata, no dataset
    t, _ = read(src)
    write(dst, {k[len("model."):]: v for k, v in t.items() if k.startswith("model.")})

def fewer_classes(src, dst):  # the checkpoint cut to 9 classes: another class count
    t, meta = read(src)
    for name in ("model.fc.weight", "model.fc.bias"):
        dtype, shape, v = t[name]
        per = len(v) // shape[0]
        t[name] = (dtype, [9] + shape[1:], v[:9 * per])
    t = {k: v for k, v in t.items() if k.startswith("model.")}
    meta["num_classes"] = "9"
    write(dst, t, meta)

globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PYEOF
st() { PYTHONPATH="$tests_apps" python3 "$work/st.py" "$@"; }

echo "== every attack on 32 test images"
"$dmix" eval --weights "$weights" --samples 32 --json "${run[@]}" > "$work/eval.json"
for attack in fgsm pgd pgd-l2 apgd-ce; do
  zero_steps=(--steps 2)
  if [ "$attack" = fgsm ]; then zero_steps=(); fi
  "$dmix" attack --weights "$weights" --attack "$attack" --samples 32 --batch 16 "${run[@]}" \
    --json "$work/$attack.json" > /dev/null
  "$dmix" attack --weights "$weights" --attack "$attack" --eps 0 --samples 32 "${zero_steps[@]}" "${run[@]}" \
    --json "$work/$attack-zero.json" > /dev/null
done
st check-split "$work" "$work/eval.json"

echo "== a fixed batch: the eps-ball, [0, 1], seeds, targets"
st make-batch "$work"
b=(--input "$work/x.safetensors" --labels "$work/y.safetensors" --batch 5 "${run[@]}")
"$dmix" attack --weights "$weights" "${b[@]}" --attack pgd --eps 8/255 --seed 1 --save-adv "$work/pgd1.safetensors" \
  > /dev/null
"$dmix" attack --weights "$weights" "${b[@]}" --attack pgd --eps 0.03137254901960784 --seed 1 \
  --save-adv "$work/pgd1b.safetensors" > /dev/null
"$dmix" attack --weights "$weights" "${b[@]}" --attack pgd --seed 2 --save-adv "$work/pgd2.safetensors" > /dev/null
"$dmix" attack --weights "$weights" "${b[@]}" --attack pgd --random-start=false --seed 1 \
  --save-adv "$work/fixed1.safetensors" > /dev/null
"$dmix" attack --weights "$weights" "${b[@]}" --attack pgd --random-start=false --seed 2 \
  --save-adv "$work/fixed2.safetensors" > /dev/null
"$dmix" attack --weights "$weights" "${b[@]}" --attack fgsm --eps 0.1 --save-adv "$work/fgsm.safetensors" > /dev/null
"$dmix" attack --weights "$weights" "${b[@]}" --attack pgd-l2 --eps 0.5 --save-adv "$work/l2.safetensors" > /dev/null
"$dmix" attack --weights "$weights" "${b[@]}" --attack apgd-ce --steps 10 --save-adv "$work/apgd.safetensors" \
  > /dev/null
st check-ball "$work" pgd1.safetensors linf 0.0313725
st check-ball "$work" fgsm.safetensors linf 0.1
st check-ball "$work" l2.safetensors l2 0.5
st check-ball "$work" apgd.safetensors linf 0.0313725 may-stay
st same-images "$work" pgd1.safetensors pgd1b.safetensors same
st same-images "$work" pgd1.safetensors pgd2.safetensors different
st same-images "$work" fixed1.safetensors fixed2.safetensors same
"$dmix" attack --weights "$weights" --samples 32 "${run[@]}" --attack pgd --eps 0.5 --step 0.1 --target-class 0 \
  --json "$work/targeted.json" --save-adv "$work/targeted.safetensors" > /dev/null
st check-targeted "$work"

echo "== transfer: two sources"
"$dmix" attack --weights "$weights" --source "$work/gray/last.safetensors" "$work/black/last.safetensors" \
  --samples 16 --batch 8 "${run[@]}" --json "$work/transfer.json" --save-adv "$work/transfer.safetensors" \
  --grid "$work/grid.png" | tee "$work/transfer.txt"
st check-transfer "$work" "$work/transfer.txt"

echo "== clear errors"
source "$(dirname "$0")/lib.sh"  # expect_error
s=(--weights "$weights" --samples 4 "${run[@]}")
expect_error "\-\-eps must lie in \[0, 1\]" "$dmix" attack "${s[@]}" --eps 1.5
expect_error "\-\-eps must lie in \[0, 1\]" "$dmix" attack "${s[@]}" --eps=-8/255
expect_error "is not a number or a fraction such as 8/255" "$dmix" attack "${s[@]}" --eps 8/abc
expect_error "must be pixels in \[0, 1\]" "$dmix" attack --weights "$weights" --input "$work/xbad.safetensors" \
  --labels "$work/y.safetensors" "${run[@]}"
st fewer-classes "$weights" "$work/nine.safetensors"
st plain "$weights" "$work/plain.safetensors"
expect_error "gives 9 classes" "$dmix" attack "${s[@]}" --source "$work/nine.safetensors"
expect_error "\-\-step is for pgd and pgd-l2" "$dmix" attack "${s[@]}" --attack apgd-ce --step 1/255
expect_error "restarts need a random start" "$dmix" attack "${s[@]}" --restarts 2 --random-start=false
expect_error "\-\-target-class 10 is outside \[0, 10)" "$dmix" attack "${s[@]}" --target-class 10
expect_error "\-\-input needs \-\-labels" "$dmix" attack --weights "$weights" --input "$work/x.safetensors"
expect_error "pass \-\-mean and \-\-std" "$dmix" attack --weights "$work/plain.safetensors" --model pyramidnet11_a6 \
  "${run[@]}" --input "$work/x.safetensors" --labels "$work/y.safetensors"
echo "all attack checks passed"
