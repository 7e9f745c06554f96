#!/usr/bin/env bash
# End-to-end checks of `dmix landscape` on two models trained here for one short epoch
# (same architecture, seeds 3 and 4):
#  1. sigma mode on both at once, on 64 test images in two batches: the JSON's grids and
#     per-checkpoint curves, sigma = 0 is each checkpoint's plain evaluation (its accuracy is
#     `dmix eval`'s), the noise grows the loss, a seed repeats the draws, the plots are whole
#     PNGs;
#  2. eigen2d (one checkpoint, on the classifier's weights, --params fc: a Hessian-vector
#     product through the whole network takes seconds on the CPU) and random2d (both, one
#     contour figure): grid shapes, the centre is the plain loss (eigen2d's is `dmix hessian`'s
#     loss on the same 16 images, to the last digit), eigenvalues in descending order, the 3-D
#     surface per checkpoint;
#  3. interpolate: the end points are each checkpoint's own loss;
#  4. bad input ends with one clear line and a non-zero status.
# Files are read and written with python3's standard library only (json, struct).
set -euo pipefail
tests_apps=$(cd "$(dirname "$0")" && pwd)  # safetensors_io.py, shared by the CLI tests
dmix="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(--threads 2 --workers 1)

for seed in 3 4; do
  "$dmix" train --model pyramidnet11_a6 --limit-train 512 --limit-test 64 --epochs 1 --batch 32 --mix none \
    --seed $seed --quiet "${run[@]}" --out "$work/s$seed" > /dev/null
done
"$dmix" train --model pyramidnet11_a8 --limit-train 64 --limit-test 16 --epochs 1 --batch 32 --mix none --quiet \
  "${run[@]}" --out "$work/other" > /dev/null
a="$work/s3/last.safetensors"
b="$work/s4/last.safetensors"

cat > "$work/check.py" <<'PYEOF'
import json, math, struct, sys

from safetensors_io import read, write  # tests/apps/safetensors_io.py

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

def load(path):
    return json.load(open(path))

def check_png(path, size=None):  # a whole PNG: signature, IHDR first, IEND at the end
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or data[-8:-4] != b"IEND":
        fail("%s is not a whole PNG" % path)
    if size and struct.unpack(">II", data[16:24]) != size:
        fail("%s is %s, not %s" % (path, struct.unpack(">II", data[16:24]), size))

def has(j, keys, what):
    for k in keys:
        if k not in j:
            fail("%s has no %s" % (what, k))

def check_sigma(work):
    j = load(work + "/sigma.json")
    has(j, ("mode", "seed", "sigmas", "draws", "checkpoints", "source", "seconds"), "sigma.json")
    if j["mode"] != "sigma" or j["sigmas"] != [0, 0.02, 0.08] or j["draws"] != 2 or not j["seconds"] > 0:
        fail("sigma.json: mode %s, sigmas %s, draws %s" % (j["mode"], j["sigmas"], j["draws"]))
    cps = j["checkpoints"]
    if [c["label"] for c in cps] != ["s3", "s4"]:
        fail("labels %s, expected s3 and s4" % [c["label"] for c in cps])
    for c, tag in zip(cps, ("s3", "s4")):
        has(c, ("weights", "model", "loss", "accuracy", "parameters", "loss_mean", "loss_std", "accuracy_mean",
                "accuracy_std", "loss_draws", "accuracy_draws"), "checkpoint " + tag)
        if [len(d) for d in c["loss_draws"]] != [1, 2, 2] or c["loss_std"][0] != 0:
            fail("%s: draws per sigma %s, std at 0 %s" % (tag, [len(d) for d in c["loss_draws"]], c["loss_std"][0]))
        if c["loss_mean"][0] != c["loss"] or c["accuracy_mean"][0] != c["accuracy"]:
            fail("%s: sigma = 0 gives %s, the checkpoint %s" % (tag, c["loss_mean"][0], c["loss"]))
        if not c["loss_mean"][2] > c["loss"] or not all(s > 0 for s in c["loss_std"][1:]):
            fail("%s: noise of 0.08 on every weight leaves the loss at %s (%s)" % (tag, c["loss_mean"], c["loss_std"]))
        e = load("%s/eval-%s.json" % (work, tag))  # dmix eval of the same 64 images
        if abs(c["accuracy"] - (1 - e["top1_error"] / 100)) > 1e-9:
            fail("%s: accuracy %s, dmix eval's top-1 error %s%%" % (tag, c["accuracy"], e["top1_error"]))
    print("sigma-curve: s3 loss %s, s4 loss %s" % (["%.4f" % v for v in cps[0]["loss_mean"]],
                                                  ["%.4f" % v for v in cps[1]["loss_mean"]]))
    again = load(work + "/sigma-again.json")["checkpoints"][0]
    if again["loss_draws"] != cps[0]["loss_draws"]:
        fail("the same seed gave other draws: %s and %s" % (again["loss_draws"], cps[0]["loss_draws"]))
    other = load(work + "/sigma-seed.json")["checkpoints"][0]
    if other["loss_draws"][1] == cps[0]["loss_draws"][1]:
        fail("another seed gave the same draws")
    check_png(work + "/sigma.png", (800, 600))
    check_png(work + "/sigma-acc.png", (800, 600))

def check_2d(work):
    for name, n in (("eigen", 1), ("random", 2)):
        j = load("%s/%s.json" % (work, name))
        has(j, ("x", "y", "directions", "checkpoints", "seconds"), name + ".json")
        if j["x"] != [-0.05, 0, 0.05] or j["y"] != j["x"] or len(j["checkpoints"]) != n:
            fail("%s: grid %s x %s over %d checkpoints" % (name, j["x"], j["y"], len(j["checkpoints"])))
        for c in j["checkpoints"]:
            g = c["loss_grid"]
            if len(g) != 3 or any(len(r) != 3 for r in g) or len(c["accuracy_grid"]) != 3:
                fail("%s: loss grid %s" % (name, g))
            if g[1][1] != c["loss"] or not all(math.isfinite(v) for r in g for v in r):
                fail("%s: centre %s, the checkpoint's loss %s" % (name, g[1][1], c["loss"]))
            if all(v == c["loss"] for r in g for v in r):
                fail("%s: the surface is flat at %s" % (name, c["loss"]))
        print("%s surface of %s: %s" % (name, j["checkpoints"][0]["label"],
                                        [["%.4f" % v for v in r] for r in j["checkpoints"][0]["loss_grid"]]))
    e = load(work + "/eigen.json")["checkpoints"][0]
    lam = e["eigenvalues"]
    if len(lam) != 2 or not lam[0] >= lam[1] or not e["hvp_count"] > 0:
        fail("eigen2d: eigenvalues %s from %s products" % (lam, e["hvp_count"]))
    h = load(work + "/hessian.json")
    if e["loss"] != h["loss"]:
        fail("eigen2d centre %r, dmix hessian's loss %r on the same images" % (e["loss"], h["loss"]))
    for f in ("eigen.png", "eigen-surface.png", "random.png", "random-surface.png", "random-surface-2.png"):
        check_png(work + "/" + f)

def check_interpolate(work):
    j = load(work + "/line.json")
    has(j, ("t", "loss", "accuracy", "checkpoints", "seconds"), "line.json")
    t, loss = j["t"], j["loss"]
    if t != [-0.5, 0, 0.5, 1, 1.5] or len(loss) != 5:
        fail("interpolate: t %s, %d losses" % (t, len(loss)))
    s = load(work + "/sigma.json")["checkpoints"]
    if loss[1] != s[0]["loss"] or loss[3] != s[1]["loss"]:
        fail("interpolate: end points %s and %s, the checkpoints' losses %s and %s"
             % (loss[1], loss[3], s[0]["loss"], s[1]["loss"]))
    if [c["loss"] for c in j["checkpoints"]] != [s[0]["loss"], s[1]["loss"]]:
        fail("interpolate: checkpoints' own losses %s" % [c["loss"] for c in j["checkpoints"]])
    print("interpolation s3 -> s4: %s" % ["%.4f" % v for v in loss])
    check_png(work + "/line.png")

def nan_weights(work, src, dst):  # the checkpoint with its classifier's bias NaN
    tensors, meta = read(src)
    name = [k for k in tensors if k.endswith("fc.bias")][0]
    dtype, shape, values = tensors[name]
    tensors[name] = (dtype, shape, [float("nan")] * len(values))
    write(dst, tensors, meta)

globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PYEOF
check() { PYTHONPATH="$tests_apps" python3 "$work/check.py" "$@"; }
s=(--samples 64 --batch 32 "${run[@]}")  # two batches: the split is read batch after batch

echo "== sigma mode on two checkpoints, against dmix eval on the same 64 images"
"$dmix" landscape --weights "$a" "$b" --mode sigma --sigmas 0,0.02,0.08 --draws 2 "${s[@]}" --json "$work/sigma.json" \
  --plot "$work/sigma.png" --accuracy-plot "$work/sigma-acc.png" > /dev/null
"$dmix" landscape --weights "$a" --sigmas 0,0.02,0.08 --draws 2 "${s[@]}" --json "$work/sigma-again.json" > /dev/null
"$dmix" landscape --weights "$a" --sigmas 0,0.02,0.08 --draws 2 --seed 1 "${s[@]}" --json "$work/sigma-seed.json" \
  > /dev/null
for tag in s3 s4; do
  "$dmix" eval --weights "$work/$tag/last.safetensors" --samples 64 --threads 2 --json > "$work/eval-$tag.json"
done
check check-sigma "$work"

echo "== eigen2d and random2d surfaces"
g=(--range -0.05,0.05 --steps 3)
one=(--samples 16 --params fc "${run[@]}")
"$dmix" landscape --weights "$a" --mode eigen2d "${g[@]}" "${one[@]}" --json "$work/eigen.json" \
  --plot "$work/eigen.png" --surface "$work/eigen-surface.png" > /dev/null
"$dmix" hessian --weights "$a" "${one[@]}" --json "$work/hessian.json" > /dev/null
"$dmix" landscape --weights "$a" "$b" --mode random2d "${g[@]}" "${s[@]}" --json "$work/random.json" \
  --plot "$work/random.png" --surface "$work/random-surface.png" > /dev/null
check check-2d "$work"

echo "== interpolation"
"$dmix" landscape --weights "$a" "$b" --mode interpolate --range -0.5,1.5 --steps 5 "${s[@]}" \
  --json "$work/line.json" --plot "$work/line.png" > /dev/null
check check-interpolate "$work"

echo "== clear errors"
source "$(dirname "$0")/lib.sh"  # expect_error
l=("$dmix" landscape --samples 8 --threads 2)
expect_error "interpolate takes exactly two \-\-weights, got 1" "${l[@]}" --weights "$a" --mode interpolate
expect_error "interpolate takes exactly two \-\-weights, got 3" "${l[@]}" --weights "$a" "$b" "$a" --mode interpolate
expect_error "needs two checkpoints of one architecture: .* holds pyramidnet11_a6 .* holds pyramidnet11_a8" \
  "${l[@]}" --weights "$a" "$work/other/last.safetensors" --mode interpolate
expect_error "\-\-sigmas must all be zero or more, got -0.1" "${l[@]}" --weights "$a" --sigmas 0,-0.1
expect_error "\-\-sigmas '0,x' is not a comma-separated list of finite numbers" "${l[@]}" --weights "$a" --sigmas 0,x
expect_error "\-\-sigmas '0,nan' is not a comma-separated list" "${l[@]}" --weights "$a" --sigmas 0,nan
expect_error "give \-\-sigmas or \-\-sigma-max and \-\-sigma-steps, not both" "${l[@]}" --weights "$a" --sigmas 0,1 \
  --sigma-max 0.1
expect_error "\-\-sigma-steps must be at least 2" "${l[@]}" --weights "$a" --sigma-steps 1
expect_error "\-\-range takes two numbers a,b with a < b, got '1,0'" "${l[@]}" --weights "$a" --mode random2d \
  --range 1,0
expect_error "\-\-steps must be at least 2, got 1" "${l[@]}" --weights "$a" --mode eigen2d --steps 1
expect_error "\-\-sigmas applies to \-\-mode sigma only" "${l[@]}" --weights "$a" --mode eigen2d --sigmas 0,1
expect_error "\-\-range applies to \-\-mode eigen2d, random2d and interpolate" "${l[@]}" --weights "$a" --range 0,1
expect_error "\-\-surface applies to \-\-mode eigen2d and random2d only" "${l[@]}" --weights "$a" \
  --surface "$work/x.png"
expect_error "x.jpg" "${l[@]}" --weights "$a" --plot "$work/x.jpg"
expect_error "\-\-names gives 1 names for 2 \-\-weights" "${l[@]}" --weights "$a" "$b" --names one
expect_error "$work/none.safetensors" "${l[@]}" --weights "$work/none.safetensors"
mkdir -p "$work/empty/c0"
expect_error "empty\|no image" "${l[@]}" --weights "$a" --dataset folder --data "$work/empty" --image-size 28
check nan-weights "$work" "$a" "$work/nan.safetensors"
expect_error "the loss is nan at the checkpoint's own weights" "${l[@]}" --weights "$work/nan.safetensors"
test ! -e "$work/x.png"
echo "all landscape checks passed"
