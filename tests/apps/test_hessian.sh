#!/usr/bin/env bash
# End-to-end checks of `dmix hessian` on a model trained here for one short epoch:
#  1. Lanczos (on the split batch after batch) and power iteration (on the same 16 images
#     as one batch) agree on the top eigenvalue, and both list theirs in descending order;
#  2. the JSON has every key, the trace its 3 samples, the density a normalised curve, and
#     every per-layer block's top eigenvalue lies below the whole Hessian's (Cauchy
#     interlacing: a diagonal block's largest eigenvalue never exceeds the matrix's);
#     these runs take --params layer3 --params fc, a product on the CPU being slow;
#  3. the saved eigenvectors hold one tensor per parameter and eigenvalue, and on a fixed
#     --input batch the top pair of the classifier's block (--params fc) matches central
#     differences of `dmix predict --grad`'s gradients: (g(w + eps v) - g(w - eps v)) / (2 eps)
#     ~ lambda v. Only there: the loss is smooth in fc, while along directions through the
#     ReLUs the kinks a step crosses bend differences at every step size;
#  4. --plot draws the density as a PNG of 800x600 (read from its header);
#  5. bad input ends with one clear line and a non-zero status.
# Files are read and written with python3's standard library only (json, struct).
set -euo pipefail
tests_apps=$(cd "$(dirname "$0")" && pwd)  # safetensors_io.py, shared by the CLI tests
dmix="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(--threads 2 --workers 1)

"$dmix" train --model pyramidnet11_a6 --limit-train 512 --limit-test 64 --epochs 1 --batch 32 --mix none --seed 3 \
  --quiet "${run[@]}" --out "$work/model" > /dev/null
weights="$work/model/last.safetensors"

cat > "$work/st.py" <<'PYEOF'
import json, math, random, struct, sys

from safetensors_io import read, write  # tests/apps/safetensors_io.py

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

def descending(v):
    return all(a >= b for a, b in zip(v, v[1:]))

def check_runs(work):
    lz = json.load(open(work + "/lanczos.json"))
    pw = json.load(open(work + "/power.json"))
    for j, keys in ((lz, ("density",)), (pw, ("per_layer",))):
        for key in ("top_eigenvalues", "trace", "trace_stderr", "trace_samples", "hvp_count", "seconds", "parameters",
                    "loss") + keys:
            if key not in j:
                fail("%s.json has no %s" % (j["method"], key))
        top = j["top_eigenvalues"]
        if len(top) != 2 or not descending(top) or not all(math.isfinite(v) for v in top):
            fail("%s: top eigenvalues %s are not 2 finite values in descending order" % (j["method"], top))
        if j["trace_samples"] != 3 or not math.isfinite(j["trace"]) or not j["trace_stderr"] > 0:
            fail("%s: trace %s +- %s from %s samples" % (j["method"], j["trace"], j["trace_stderr"], j["trace_samples"]))
        if j["images"] != 16 or j["hvp_count"] <= 0 or j["seconds"] <= 0:
            fail("%s: %s images, %s products, %s s" % (j["method"], j["images"], j["hvp_count"], j["seconds"]))
    a, b = lz["top_eigenvalues"][0], pw["top_eigenvalues"][0]
    print("top eigenvalues: lanczos %s, power %s; trace %.4g +- %.2g; %d products in %.1f s (lanczos run)"
          % (lz["top_eigenvalues"], pw["top_eigenvalues"], lz["trace"], lz["trace_stderr"], lz["hvp_count"],
             lz["seconds"]))
    if a <= 0 or abs(a - b) > 0.01 * a:
        fail("lanczos (split in 2 batches) and power (1 batch) top eigenvalues differ: %g and %g" % (a, b))
    # The same seed draws the same Rademacher vectors: the 2-batch and 1-batch products must agree.
    if abs(lz["trace"] - pw["trace"]) > 1e-4 * abs(pw["trace"]):
        fail("the same trace samples give %g on 2 batches and %g on 1" % (lz["trace"], pw["trace"]))
    d = lz["density"]
    grid, values = d["grid"], d["values"]
    if len(grid) != len(values) or len(grid) < 100 or any(v < 0 for v in values):
        fail("density of %d grid points, %d values" % (len(grid), len(values)))
    area = sum(values) * (grid[1] - grid[0])
    if abs(area - 1) > 1e-3:
        fail("density integrates to %g" % area)
    if not grid[0] < a < grid[-1] + 1e-9:
        fail("top eigenvalue %g outside the density's grid [%g, %g]" % (a, grid[0], grid[-1]))
    layers = pw["per_layer"]
    if len(layers) != 8:
        fail("only %d per-layer blocks" % len(layers))
    for name, l in layers.items():
        if not (math.isfinite(l["top_eigenvalue"]) and math.isfinite(l["trace"])):
            fail("per-layer %s: %s" % (name, l))
        if l["top_eigenvalue"] > a * 1.01:
            fail("block %s has top eigenvalue %g above the whole Hessian's %g" % (name, l["top_eigenvalue"], a))
    if sum(l["parameters"] for l in layers.values()) != lz["parameters"]:
        fail("the per-layer blocks do not cover the %d parameters" % lz["parameters"])
    ev, meta = read(work + "/ev.safetensors")
    values = json.loads(meta["eigenvalues"])
    if [round(v, 9) for v in values] != [round(v, 9) for v in lz["top_eigenvalues"]]:
        fail("eigenvector file says eigenvalues %s, the JSON %s" % (values, lz["top_eigenvalues"]))
    ckpt, _ = read(work + "/model/last.safetensors")
    for i in (0, 1):
        part = {k[2:]: v for k, v in ev.items() if k.startswith("%d." % i)}
        if len(part) != int(meta["parameters"]) or sum(len(v[2]) for v in part.values()) != lz["parameters"]:
            fail("eigenvector %d has %d tensors" % (i, len(part)))
        for name, (_, shape, _) in part.items():
            if ckpt["model." + name][1] != shape:
                fail("eigenvector part %s has shape %s" % (name, shape))
        norm = math.sqrt(sum(x * x for v in part.values() for x in v[2]))
        if abs(norm - 1) > 1e-4:
            fail("eigenvector %d has norm %g" % (i, norm))

def check_plot(path):  # a whole PNG of the default figure size: signature, IHDR, IEND at the end
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or data[-8:-4] != b"IEND":
        fail("%s is not a whole PNG" % path)
    width, height = struct.unpack(">II", data[16:24])
    if (width, height) != (800, 600):
        fail("%s is %dx%d, not 800x600" % (path, width, height))

def make_batch(work):
    rng = random.Random(7)
    write(work + "/x.safetensors", {"input": ("F32", [8, 1, 28, 28], [rng.gauss(0, 1) for _ in range(8 * 784)])})
    write(work + "/y.safetensors", {"labels": ("I64", [8], [rng.randrange(10) for _ in range(8)])})

EPS = 1e-3  # the loss is smooth in fc: differences of the f32 gradients match to 1e-5 here

def perturb(work):  # the checkpoint moved by +-EPS along the top eigenvector of the fixed batch's Hessian
    ckpt, meta = read(work + "/model/last.safetensors")
    ev, _ = read(work + "/batch_ev.safetensors")
    for sign, tag in ((1, "p"), (-1, "m")):
        moved = dict(ckpt)
        for k, (dtype, shape, v) in ev.items():
            name = "model." + k[2:]
            moved[name] = (dtype, shape, [w + sign * EPS * d for w, d in zip(ckpt[name][2], v)])
        write(work + "/w%s.safetensors" % tag, moved, meta)

def check_fd(work):
    ev, _ = read(work + "/batch_ev.safetensors")
    gp, _ = read(work + "/gp.safetensors")
    gm, _ = read(work + "/gm.safetensors")
    lam = json.load(open(work + "/batch.json"))["top_eigenvalues"][0]
    rq, residual = 0.0, 0.0
    for k, (_, _, v) in ev.items():
        a, b = gp["grad." + k[2:]][2], gm["grad." + k[2:]][2]
        hv = [(p - m) / (2 * EPS) for p, m in zip(a, b)]
        rq += sum(d * x for d, x in zip(v, hv))
        residual += sum((x - lam * d) ** 2 for d, x in zip(v, hv))
    residual = math.sqrt(residual)
    print("fixed batch, fc block: top eigenvalue %.6g; by central differences of gradients v.Hv %.6g, "
          "|Hv - lambda v| %.2g" % (lam, rq, residual))
    if not lam > 0 or abs(rq - lam) > 1e-3 * lam or residual > 1e-2 * lam:
        fail("the top pair (%g) is not one of the finite-difference Hessian: v.Hv %g, |Hv - lambda v| %g"
             % (lam, rq, residual))

globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PYEOF
st() { PYTHONPATH="$tests_apps" python3 "$work/st.py" "$@"; }

echo "== both methods on 16 test images"
h=("$dmix" hessian --weights "$weights" --samples 16 --params layer3 --params fc --top-k 2 --trace --trace-samples 3
   "${run[@]}")
"${h[@]}" --batch 8 --method lanczos --density --density-steps 10 --json "$work/lanczos.json" \
  --save-eigenvectors "$work/ev.safetensors" --plot "$work/esd.png"
"${h[@]}" --method power --per-layer --json "$work/power.json"
st check-runs "$work"
st check-plot "$work/esd.png"

echo "== a fixed batch: the top pair against finite differences of the gradient"
st make-batch "$work"
b=(--input "$work/x.safetensors" --labels "$work/y.safetensors")
"$dmix" hessian --weights "$weights" "${b[@]}" --params fc --threads 2 --json "$work/batch.json" \
  --save-eigenvectors "$work/batch_ev.safetensors" > /dev/null
st perturb "$work"
for tag in p m; do
  "$dmix" predict --weights "$work/w$tag.safetensors" "${b[@]}" --grad --threads 2 --output "$work/g$tag.safetensors" \
    > /dev/null
done
st check-fd "$work"

echo "== clear errors"
source "$(dirname "$0")/lib.sh"  # expect_error
s=(--samples 8 --params fc --threads 2)
expect_error "$work/none.safetensors" "$dmix" hessian --weights "$work/none.safetensors" "${s[@]}"
expect_error "top-k" "$dmix" hessian --weights "$weights" "${s[@]}" --top-k 0
n=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["parameters"])' "$work/batch.json")
expect_error "\-\-top-k $((n + 1)) exceeds the $n parameters" "$dmix" hessian --weights "$weights" "${s[@]}" \
  --top-k $((n + 1)) --method power
expect_error "\-\-method lanczos needs \-\-top-k below the $n parameters" "$dmix" hessian --weights "$weights" \
  "${s[@]}" --top-k "$n"
expect_error "holds model pyramidnet11_a6, not resnet18" "$dmix" hessian --weights "$weights" --model resnet18 "${s[@]}"
expect_error "no parameter that requires grad is named 'nosuch'" "$dmix" hessian --weights "$weights" "${s[@]}" \
  --params nosuch
expect_error "\-\-input needs \-\-labels" "$dmix" hessian --weights "$weights" --input "$work/x.safetensors"
expect_error "\-\-plot draws the spectral density: add \-\-density" "$dmix" hessian --weights "$weights" "${s[@]}" \
  --plot "$work/out.png"
expect_error "$work/out.jpg: unknown file type '.jpg'" "$dmix" hessian --weights "$weights" "${s[@]}" --density \
  --plot "$work/out.jpg"
expect_error "cannot write $work/none/out.svg" "$dmix" hessian --weights "$weights" "${s[@]}" --density \
  --plot "$work/none/out.svg"
test ! -e "$work/out.png"
test ! -e "$work/out.json"
echo "all hessian checks passed"
