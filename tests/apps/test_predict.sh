#!/usr/bin/env bash
# End-to-end checks of `dmix predict` on a checkpoint trained here for a few steps:
#  1. logits have the model's shape; --labels adds the mean cross-entropy of those logits
#     (hard and soft labels agree);
#  2. --grad writes input_grad and grad.<p> for exactly the model's parameters, with their
#     shapes, and both match central finite differences of the loss (eval-mode BN, f32);
#  3. image files go through the dataset's evaluation pipeline: a 28x28 grey PNG gives
#     the same logits as its normalised pixels given as a tensor; other sizes are resized;
#     without --output, one JSON line of top classes per image;
#  4. `eval` on an image folder (with and without a class-index file) and `predict` on
#     the same image files agree: both prepare images with the folder's eval pipeline;
#     `train` on the folder runs end to end and `eval` of its checkpoint reproduces the
#     last epoch's test error;
#  5. bad input ends with one clear line and a non-zero status.
# Inputs are written with python3's standard library only (struct, json, zlib).
set -euo pipefail
tests_apps=$(cd "$(dirname "$0")" && pwd)  # safetensors_io.py, shared by the CLI tests
dmix="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/st.py" <<'PYEOF'
import json, math, os, random, struct, sys, zlib

from safetensors_io import read, write  # tests/apps/safetensors_io.py

def png(path, w, h, channels, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(pixels[y * w * channels:(y + 1) * w * channels]) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 3: 2}[channels], 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

def numel(shape):
    return math.prod(shape)

def mean_ce(logits, shape, targets):  # targets: one row of class weights per sample
    n, k = shape
    total = 0.0
    for i in range(n):
        row = logits[i * k:(i + 1) * k]
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        total += sum(t * (lse - v) for t, v in zip(targets[i], row))
    return total / n

def close(a, b, rel, abs_=0.0):
    return abs(a - b) <= rel * max(abs(a), abs(b)) + abs_

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

W = "/".join  # path join for short lines

def make(work):
    rng = random.Random(5)
    n, shape = 4, [4, 1, 28, 28]
    x = [rng.gauss(0, 1) for _ in range(numel(shape))]
    labels = [3, 1, 4, 1]
    write(W([work, "x.safetensors"]), {"input": ("F32", shape, x)})
    write(W([work, "small.safetensors"]), {"input": ("F32", [2, 1, 8, 8], [rng.gauss(0, 1) for _ in range(128)])})
    write(W([work, "labels.safetensors"]), {"labels": ("I64", [n], labels)})
    onehot = [1.0 if c == l else 0.0 for l in labels for c in range(10)]
    write(W([work, "onehot.safetensors"]), {"labels": ("F32", [n, 10], onehot)})
    soft = []
    for i in range(n):
        row = [rng.random() for _ in range(10)]
        soft += [v / sum(row) for v in row]
    write(W([work, "soft.safetensors"]), {"labels": ("F32", [n, 10], soft)})
    # Bad inputs.
    write(W([work, "rgb.safetensors"]), {"input": ("F32", [4, 3, 28, 28], [0.0] * (4 * 3 * 28 * 28))})
    write(W([work, "flat.safetensors"]), {"input": ("F32", [4, 28, 28], x)})
    write(W([work, "noinput.safetensors"]), {"image": ("F32", shape, x)})
    write(W([work, "labels5.safetensors"]), {"labels": ("I64", [5], labels + [0])})
    write(W([work, "softbad.safetensors"]), {"labels": ("F32", [4, 9], [0.1] * 36)})
    # Images: a 28x28 grey PNG, its pixels normalised as the fashion-mnist eval pipeline
    # does, and a 40x30 colour PNG.
    grey = [(7 * i + (i // 28) * 3) % 256 for i in range(28 * 28)]
    png(W([work, "grey.png"]), 28, 28, 1, grey)
    write(W([work, "grey.safetensors"]),
          {"input": ("F32", [1, 1, 28, 28], [(v / 255.0 - 0.2860) / 0.3530 for v in grey])})
    png(W([work, "colour.png"]), 40, 30, 3, [(5 * i) % 256 for i in range(40 * 30 * 3)])
    with open(W([work, "broken.png"]), "wb") as f:
        f.write(open(W([work, "colour.png"]), "rb").read()[:60])

def check_grad(work, checkpoint):
    out, _ = read(W([work, "grad.safetensors"]))
    lt, lshape, logits = out["logits"]
    if lt != "F32" or lshape != [4, 10]:
        fail("logits are %s %s, expected F32 [4, 10]" % (lt, lshape))
    labels = read(W([work, "labels.safetensors"]))[0]["labels"][2]
    loss = out["loss"][2][0]
    expect = mean_ce(logits, lshape, [[1.0 if c == l else 0.0 for c in range(10)] for l in labels])
    if not close(loss, expect, 1e-5):
        fail("loss %.9g is not the mean cross-entropy %.9g of the logits" % (loss, expect))
    # Without --grad (and with the labels given as "3,1,4,1"), the same forward pass.
    plain, _ = read(W([work, "plain.safetensors"]))
    if plain["logits"][2] != logits or plain["loss"][2][0] != loss:
        fail("logits or loss differ with and without --grad")
    if any(k.startswith("grad.") or k == "input_grad" for k in plain):
        fail("gradients written without --grad")
    gshape, g = out["input_grad"][1], out["input_grad"][2]
    if gshape != [4, 1, 28, 28]:
        fail("input_grad has shape %s" % gshape)
    # One gradient per parameter (buffers have none), each shaped like its parameter.
    ckpt, _ = read(checkpoint)
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    params = {k[len("model."):]: v[1] for k, v in ckpt.items()
              if k.startswith("model.") and not k.endswith(buffers)}
    grads = {k[len("grad."):]: v[1] for k, v in out.items() if k.startswith("grad.")}
    if set(params) != set(grads):
        fail("grad.* names differ from the parameters: missing %s, extra %s"
             % (sorted(set(params) - set(grads)), sorted(set(grads) - set(params))))
    for name, shape in params.items():
        if grads[name] != shape:
            fail("grad.%s has shape %s, the parameter %s" % (name, grads[name], shape))
    if not all(math.isfinite(v) for v in g):
        fail("input_grad is not finite")
    print("%d parameter gradients, loss %.6f" % (len(grads), loss))

# Central differences of the loss along directions d, against <gradient, d>, on a small
# input (2 x 1 x 8 x 8). The f32 loss resolves ulp / (2 eps), allowed for as 4 ulps; the
# rest of the tolerance is for ReLU kinks: the network is piecewise linear, and the many
# kinks a step crosses bend the difference like curvature. A step in a conv weight moves
# every position at once and crosses far more of them than a step in the input, so conv
# weights take tiny steps along their own gradient (a large derivative, well above the
# rounding: a wrong sign, scale or layout of the gradient shows), while the input and the
# (linear) fc layer are also checked along random directions.
FD_CASES = [  # (what, direction, eps, relative tolerance)
    ("input", "random", 3e-4, 0.05),
    ("input", "gradient", 1e-4, 0.01),
    ("conv1.weight", "gradient", 3e-5, 0.02),
    ("layer2.0.conv2.weight", "gradient", 3e-5, 0.02),
    ("fc.weight", "random", 3e-4, 0.01),
]

def f32_ulp(v):
    return 2.0 ** (math.frexp(abs(v))[1] - 24)

def directions(work, checkpoint):  # writes the perturbed files; prints "WEIGHTS INPUT OUTPUT" per run
    out, _ = read(W([work, "small_grad.safetensors"]))
    ckpt, meta = read(checkpoint)
    x = read(W([work, "small.safetensors"]))[0]["input"]
    rng = random.Random(11)
    cases = []
    for k, (what, kind, eps, rel) in enumerate(FD_CASES):
        g = out["input_grad" if what == "input" else "grad." + what][2]
        dtype, shape, base = x if what == "input" else ckpt["model." + what]
        if kind == "random":
            d = [rng.gauss(0, 1) for _ in g]
        else:
            norm = math.sqrt(sum(v * v for v in g))
            if norm == 0:
                fail("the gradient of %s is zero" % what)
            d = [v / norm * math.sqrt(len(g)) for v in g]
        for sign in (1, -1):
            moved = [a + sign * eps * b for a, b in zip(base, d)]
            tag = "fd%d%s" % (k, "p" if sign > 0 else "m")
            if what == "input":
                write(W([work, tag + "_in.safetensors"]), {"input": (dtype, shape, moved)})
                run = (checkpoint, W([work, tag + "_in.safetensors"]))
            else:
                t = dict(ckpt)
                t["model." + what] = (dtype, shape, moved)
                write(W([work, tag + "_w.safetensors"]), t, meta)
                run = (W([work, tag + "_w.safetensors"]), W([work, "small.safetensors"]))
            print(run[0], run[1], W([work, tag + "_out.safetensors"]))
        cases.append({"what": what, "kind": kind, "eps": eps, "rel": rel,
                      "analytic": sum(a * b for a, b in zip(g, d))})
    with open(W([work, "fd.json"]), "w") as f:
        json.dump(cases, f)

def check_fd(work):
    loss0 = read(W([work, "small_grad.safetensors"]))[0]["loss"][2][0]
    for k, c in enumerate(json.load(open(W([work, "fd.json"])))):
        lp = read(W([work, "fd%dp_out.safetensors" % k]))[0]["loss"][2][0]
        lm = read(W([work, "fd%dm_out.safetensors" % k]))[0]["loss"][2][0]
        fd = (lp - lm) / (2 * c["eps"])
        an = c["analytic"]
        noise = 4 * f32_ulp(loss0) / (2 * c["eps"])
        print("%s along a %s direction: <grad, d> %.6g, central difference %.6g (+-%.2g)"
              % (c["what"], c["kind"], an, fd, noise))
        if not abs(an - fd) <= c["rel"] * abs(an) + noise:
            fail("%s: <grad, d> = %.6g but the central difference is %.6g" % (c["what"], an, fd))

def check_soft(work):
    hard, _ = read(W([work, "grad.safetensors"]))
    onehot, _ = read(W([work, "grad_onehot.safetensors"]))
    for key in ("loss", "input_grad", "grad.fc.weight"):
        a, b = hard[key][2], onehot[key][2]
        if not all(close(p, q, 1e-5, 1e-9) for p, q in zip(a, b)):
            fail("one-hot soft labels and class indices give different %s" % key)
    soft, _ = read(W([work, "grad_soft.safetensors"]))
    targets = read(W([work, "soft.safetensors"]))[0]["labels"][2]
    logits = soft["logits"][2]
    expect = mean_ce(logits, [4, 10], [targets[i * 10:(i + 1) * 10] for i in range(4)])
    if not close(soft["loss"][2][0], expect, 1e-5):
        fail("soft-label loss %.9g is not %.9g" % (soft["loss"][2][0], expect))

def check_train_mode(work):
    ev = read(W([work, "grad.safetensors"]))[0]["logits"][2]
    tr = read(W([work, "grad_train.safetensors"]))[0]["logits"][2]
    if max(abs(a - b) for a, b in zip(ev, tr)) < 1e-4:
        fail("--train-mode logits equal eval-mode logits: batch statistics were not used")

def check_images(work):
    img, _ = read(W([work, "img.safetensors"]))
    ref, _ = read(W([work, "ref.safetensors"]))
    if img["input"][1] != [1, 1, 28, 28]:
        fail("the grey PNG became input of shape %s" % img["input"][1])
    want = read(W([work, "grey.safetensors"]))[0]["input"][2]
    worst = max(abs(a - b) for a, b in zip(img["input"][2], want))
    if worst > 1e-5:
        fail("the grey PNG's prepared pixels differ from (v/255 - mean)/std by %g" % worst)
    worst = max(abs(a - b) for a, b in zip(img["logits"][2], ref["logits"][2]))
    if worst > 1e-4:
        fail("logits of the PNG and of its pixels as a tensor differ by %g" % worst)
    two, _ = read(W([work, "two.safetensors"]))
    if two["input"][1] != [2, 1, 28, 28] or two["logits"][1] != [2, 10]:
        fail("two images gave input %s, logits %s" % (two["input"][1], two["logits"][1]))
    lines = [json.loads(l) for l in open(W([work, "top.jsonl"]))]
    if [l["input"] for l in lines] != [W([work, "grey.png"]), W([work, "colour.png"])]:
        fail("top-class lines name %s" % [l["input"] for l in lines])
    for l in lines:
        probs = [c["prob"] for c in l["top"]]
        if len(probs) != 3 or probs != sorted(probs, reverse=True) or not 0 < sum(probs) <= 1 + 1e-9:
            fail("bad top classes %s" % l)
    # The first line's classes are the largest logits of the grey image.
    row = img["logits"][2]
    best = sorted(range(10), key=lambda c: -row[c])[:3]
    if [c["class"] for c in lines[0]["top"]] != best:
        fail("top classes %s, expected %s" % ([c["class"] for c in lines[0]["top"]], best))

def make_folder(work, checkpoint):
    # A colour twin of the checkpoint (conv1 spread over 3 channels) as a plain state dict.
    tensors, _ = read(checkpoint)
    plain = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    dtype, (o, _, kh, kw), w = plain["conv1.weight"]
    w3 = []
    for oc in range(o):
        kernel = w[oc * kh * kw:(oc + 1) * kh * kw]
        w3 += [v / 3 for v in kernel] * 3
    plain["conv1.weight"] = (dtype, [o, 3, kh, kw], w3)
    write(W([work, "colour_model.safetensors"]), plain)
    # Two classes of a 10-class label space, images of several sizes.
    rng = random.Random(3)
    files = [("n07", "a.png", 20, 14), ("n07", "b.png", 9, 16), ("n07", "c.png", 16, 16),
             ("n02", "d.png", 30, 11), ("n02", "e.png", 12, 25)]
    for folder, name, h, wd in files:
        os.makedirs(W([work, "folder", folder]), exist_ok=True)
        png(W([work, "folder", folder, name]), wd, h, 3, [rng.randrange(256) for _ in range(h * wd * 3)])
    with open(W([work, "classes.txt"]), "w") as f:
        f.write("".join("n%02d class %d\n" % (k, k) for k in range(10)))

def check_folder(work):
    ev = json.load(open(W([work, "eval.json"])))
    ev_index = json.load(open(W([work, "eval_index.json"])))
    logits = read(W([work, "folder_logits.safetensors"]))[0]["logits"]
    if ev["images"] != 5 or ev_index["images"] != 5 or logits[1] != [5, 10]:
        fail("eval counted %s / %s images, predict gave logits %s" % (ev["images"], ev_index["images"], logits[1]))
    # The same images through eval's loader and predict's image path: the same top-1.
    for result, labels in ((ev, [0, 0, 1, 1, 1]), (ev_index, [2, 2, 7, 7, 7])):
        wrong = 0
        for i, label in enumerate(labels):
            row = logits[2][i * 10:(i + 1) * 10]
            wrong += max(range(10), key=lambda c: row[c]) != label
        if abs(result["top1_error"] - 100.0 * wrong / 5) > 1e-9:
            fail("eval top-1 error %s, predict's logits give %s" % (result["top1_error"], 100.0 * wrong / 5))

def variants(work, checkpoint):  # the checkpoint with bad metadata, and as a state dict without its classifier
    tensors, meta = read(checkpoint)
    write(W([work, "badmeta.safetensors"]), tensors, dict(meta, num_classes="ten"))
    plain = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.") and k != "model.fc.weight"}
    write(W([work, "nofc.safetensors"]), plain)

globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PYEOF
st() { PYTHONPATH="$tests_apps" python3 "$work/st.py" "$@"; }

echo "== a checkpoint to predict with"
"$dmix" train --model pyramidnet11_a6 --limit-train 64 --limit-test 32 --epochs 1 --batch 32 --seed 3 \
  --threads 2 --workers 1 --quiet --out "$work/run" > /dev/null
ckpt="$work/run/last.safetensors"
st make "$work"
p=("$dmix" predict --weights "$ckpt" --threads 2)

echo "== logits, loss, gradients against finite differences"
"${p[@]}" --input "$work/x.safetensors" --labels "$work/labels.safetensors" --grad --output "$work/grad.safetensors"
"${p[@]}" --input "$work/small.safetensors" --labels 3,1 --grad --output "$work/small_grad.safetensors" > /dev/null
st directions "$work" "$ckpt" | while read -r weights input output; do
  "$dmix" predict --weights "$weights" --input "$input" --labels 3,1 --threads 2 --output "$output" > /dev/null
done
"${p[@]}" --input "$work/x.safetensors" --labels 3,1,4,1 --output "$work/plain.safetensors" > /dev/null
st check-grad "$work" "$ckpt"
st check-fd "$work"

echo "== soft labels and training mode"
"${p[@]}" --input "$work/x.safetensors" --labels "$work/onehot.safetensors" --grad --output "$work/grad_onehot.safetensors" > /dev/null
"${p[@]}" --input "$work/x.safetensors" --labels "$work/soft.safetensors" --grad --output "$work/grad_soft.safetensors" > /dev/null
st check-soft "$work"
"${p[@]}" --input "$work/x.safetensors" --labels "$work/labels.safetensors" --grad --train-mode --output "$work/grad_train.safetensors" > /dev/null
st check-train-mode "$work"

echo "== image files"
"${p[@]}" --input "$work/grey.png" --output "$work/img.safetensors" > /dev/null
"${p[@]}" --input "$work/grey.safetensors" --output "$work/ref.safetensors" > /dev/null
"${p[@]}" --input "$work/grey.png" "$work/colour.png" --output "$work/two.safetensors" > /dev/null
"${p[@]}" --input "$work/grey.png" "$work/colour.png" --top 3 > "$work/top.jsonl"
st check-images "$work"

echo "== image folders: eval and predict prepare images alike"
st make-folder "$work" "$ckpt"
f=(--weights "$work/colour_model.safetensors" --model pyramidnet11_a6 --threads 2)
"$dmix" eval "${f[@]}" --dataset folder --data "$work/folder" --image-size 12 --batch 2 --json > "$work/eval.json"
"$dmix" eval "${f[@]}" --dataset folder --data "$work/folder" --class-index "$work/classes.txt" --image-size 12 \
  --json > "$work/eval_index.json"
"$dmix" predict "${f[@]}" --dataset folder --image-size 12 --output "$work/folder_logits.safetensors" \
  --input "$work"/folder/n02/*.png "$work"/folder/n07/*.png > /dev/null
st check-folder "$work"

echo "== image folders: train end to end, then eval with the checkpoint's own crop size"
"$dmix" train --dataset folder --data "$work/folder" --model pyramidnet11_a6 --image-size 12 --epochs 2 --batch 2 \
  --threads 2 --quiet --out "$work/folder_run" > "$work/folder_train.txt"
test "$(wc -l < "$work/folder_run/metrics.jsonl")" -eq 2
"$dmix" eval --weights "$work/folder_run/last.safetensors" --data "$work/folder" --json > "$work/folder_eval.json"
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
last = [json.loads(l) for l in open(work + "/folder_run/metrics.jsonl")][-1]
ev = json.load(open(work + "/folder_eval.json"))
assert ev["images"] == 5, ev
assert abs(ev["top1_error"] - last["test_top1_error"]) < 1e-9, (ev, last)
PY

echo "== clear errors"
source "$(dirname "$0")/lib.sh"  # expect_error
x=(--input "$work/x.safetensors")
expect_error "$work/none.safetensors" "$dmix" predict --weights "$work/none.safetensors" "${x[@]}" --output "$work/o.safetensors"
expect_error "\`input\` has 3 channels but pyramidnet11_a6 takes 1" "${p[@]}" --input "$work/rgb.safetensors" --output "$work/o.safetensors"
expect_error "\`input\` must be f32 (N,C,H,W)" "${p[@]}" --input "$work/flat.safetensors" --output "$work/o.safetensors"
expect_error "has no tensor named \`input\`" "${p[@]}" --input "$work/noinput.safetensors" --output "$work/o.safetensors"
expect_error "\`labels\` must be i64 (4) for 4 inputs" "${p[@]}" "${x[@]}" --labels "$work/labels5.safetensors" --grad --output "$work/o.safetensors"
expect_error "\`labels\` must be i64 (4) for 4 inputs" "${p[@]}" "${x[@]}" --labels 1,2,3 --output "$work/o.safetensors"
expect_error "or f32 (4, 10) soft labels" "${p[@]}" "${x[@]}" --labels "$work/softbad.safetensors" --output "$work/o.safetensors"
expect_error "label 10 is outside \[0, 10)" "${p[@]}" "${x[@]}" --labels 1,2,3,10 --output "$work/o.safetensors"
expect_error "\-\-grad needs \-\-labels" "${p[@]}" "${x[@]}" --grad --output "$work/o.safetensors"
expect_error "$work/broken.png: cannot decode the image" "${p[@]}" --input "$work/grey.png" "$work/broken.png"
expect_error "cannot open image file '$work/nothere.png'" "${p[@]}" --input "$work/nothere.png"
printf 'n00\nn01\n' > "$work/short.txt"
expect_error "class folder 'n02' of '$work/folder' is not in the class-index file" "$dmix" eval "${f[@]}" \
  --dataset folder --data "$work/folder" --class-index "$work/short.txt"
head -c 100 "$work/folder/n07/b.png" > "$work/cut.png" && mv "$work/cut.png" "$work/folder/n07/b.png"
expect_error "$work/folder/n07/b.png: cannot decode the image (" "$dmix" eval "${f[@]}" \
  --dataset folder --data "$work/folder" --image-size 12 --workers 2
expect_error "holds no class folder" "$dmix" eval "${f[@]}" --dataset folder --data "$work/folder/n02"
expect_error "needs --data DIR" "$dmix" eval "${f[@]}" --dataset folder
st variants "$work" "$ckpt"
expect_error "$work/badmeta.safetensors: metadata num_classes is 'ten', not a number" "$dmix" eval \
  --weights "$work/badmeta.safetensors" --samples 10
expect_error "$work/colour_model.safetensors is a plain state dict: pass --model" "$dmix" predict \
  --weights "$work/colour_model.safetensors" "${x[@]}"
expect_error "holds model pyramidnet11_a6, not resnet18" "${p[@]}" --model resnet18 "${x[@]}"
expect_error "has 10 classes, not 7 (--num-classes)" "$dmix" eval --weights "$ckpt" --num-classes 7 --samples 10
expect_error "cannot tell the class count of $work/nofc.safetensors: pass --num-classes" "$dmix" predict \
  --weights "$work/nofc.safetensors" --model pyramidnet11_a6 "${x[@]}"
expect_error "cuda:99 requested, but" "${p[@]}" "${x[@]}" --device cuda:99
expect_error "\-\-dataset imagenet only says how image files are prepared" "$dmix" eval --weights "$ckpt" --dataset imagenet
test ! -e "$work/o.safetensors"

echo "== eval: --samples N takes the first N test images, as --limit-test N does"
"$dmix" eval --checkpoint "$ckpt" --samples 40 --threads 2 --json > "$work/samples.json"
"$dmix" eval --weights "$ckpt" --limit-test 40 --threads 2 --json > "$work/limit.json"
grep -q '"images":40' "$work/samples.json"
cmp "$work/samples.json" "$work/limit.json"
echo "all predict checks passed"
