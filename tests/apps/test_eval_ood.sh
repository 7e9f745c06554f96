#!/usr/bin/env bash
# End-to-end checks of `dmix eval --ood / --ece / --reliability / --restrict-to-folder-classes`
# on a model trained here for one short epoch:
#  1. Fashion-MNIST against a folder of PNGs the test writes (class folders and loose files,
#     grey and colour, of several sizes; hidden and non-image files are skipped): every key,
#     values in their ranges, the top-1/top-5 error of plain `eval`, both scores under
#     ood_scores and --ood-score choosing the top-level ones, the diagram written;
#  2. the test split against itself (--ood fashion-mnist:DIR): every in-distribution score
#     has an OOD twin, so AUROC and both AUPRs are exactly 1/2;
#  3. a colour twin of the model on an image folder of 2 of its 10 classes: AUROC, AUPR-in,
#     AUPR-out, FPR95, ECE and the subset-class error recomputed here by brute force from the
#     logits `dmix predict` gives for the same files;
#  4. bad input ends with one clear line and a non-zero status.
# Files are read and written with python3's standard library only (json, struct, zlib).
set -euo pipefail
tests_apps=$(cd "$(dirname "$0")" && pwd)  # safetensors_io.py, shared by the CLI tests
dmix="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(--threads 2 --workers 1)

"$dmix" train --model pyramidnet11_a6 --limit-train 256 --limit-test 32 --epochs 1 --batch 32 --mix none --seed 5 \
  --quiet "${run[@]}" --out "$work/model" > /dev/null
weights="$work/model/last.safetensors"

cat > "$work/st.py" <<'PYEOF'
import json, math, os, random, struct, sys, zlib

from safetensors_io import read, write  # tests/apps/safetensors_io.py

def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)

def png(path, w, h, channels, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(pixels[y * w * channels:(y + 1) * w * channels]) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 3: 2}[channels], 0, 0, 0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

def noise(rng, path, w, h, channels):
    png(path, w, h, channels, [rng.randrange(256) for _ in range(w * h * channels)])

def make_ood(work):
    rng = random.Random(11)
    for name, w, h, c in (("a/1.png", 28, 28, 1), ("a/2.png", 40, 30, 3), ("b/3.png", 17, 23, 3),
                          ("b/deeper/4.png", 28, 28, 3), ("5.png", 64, 64, 1)):
        noise(rng, os.path.join(work, "ood", name), w, h, c)
    noise(rng, os.path.join(work, "ood", ".hidden", "6.png"), 8, 8, 1)
    with open(os.path.join(work, "ood", "notes.txt"), "w") as f:
        f.write("not an image\n")

def unit(j, key):
    if not (isinstance(j.get(key), (int, float)) and 0 <= j[key] <= 1):
        fail("%s = %s is not a number in [0, 1]" % (key, j.get(key)))

def check_fmnist(work):
    plain = json.load(open(work + "/plain.json"))
    if sorted(plain) != ["images", "top1_error", "top5_error"]:
        fail("plain eval's keys changed: %s" % sorted(plain))
    msp = json.load(open(work + "/msp.json"))
    energy = json.load(open(work + "/energy.json"))
    for j in (msp, energy):
        for key in ("images", "top1_error", "top5_error"):
            if j[key] != plain[key]:
                fail("%s is %s with --ood, %s without" % (key, j[key], plain[key]))
        for key in ("auroc", "aupr_out", "aupr_in", "fpr95", "ece"):
            unit(j, key)
        if j["ood_images"] != 5 or j["ece_bins"] != 15:
            fail("%s OOD images (expected 5: hidden and non-image files skipped), %s bins" % (j["ood_images"],
                                                                                        j["ece_bins"]))
        for name in ("msp", "energy"):
            for key in ("auroc", "aupr_out", "aupr_in", "fpr95"):
                unit(j["ood_scores"][name], key)
        if j["ood_scores"] != msp["ood_scores"] or j["ece"] != msp["ece"]:
            fail("the two runs differ beyond the score they report on top")
    for j, name in ((msp, "msp"), (energy, "energy")):
        if j["ood_score"] != name or any(j[k] != j["ood_scores"][name][k] for k in ("auroc", "aupr_in", "fpr95")):
            fail("--ood-score %s reports %s" % (name, {k: j[k] for k in ("ood_score", "auroc", "aupr_in", "fpr95")}))
    # AUPR-out with 5 OOD positives among 37 samples: at least the base rate's neighbourhood, at most 1.
    print("OOD noise vs fashion-mnist: msp %s; energy %s; ECE %.4f" % (msp["ood_scores"]["msp"],
                                                                      msp["ood_scores"]["energy"], msp["ece"]))
    with open(work + "/reliability.png", "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            fail("reliability.png is not a PNG")
    if msp["reliability"] != work + "/reliability.png":
        fail("the JSON names the diagram %s" % msp["reliability"])

def check_self(work):
    j = json.load(open(work + "/self.json"))
    for name in ("msp", "energy"):
        s = j["ood_scores"][name]
        if (s["auroc"], s["aupr_in"], s["aupr_out"]) != (0.5, 0.5, 0.5):
            fail("the split against itself (%s): %s" % (name, s))
        if not 0.95 <= s["fpr95"] <= 1:
            fail("the split against itself: FPR95 %s, where TPR = FPR at every threshold" % s["fpr95"])

# ---- the colour model on an image folder, recomputed from predict's logits ----

def make_folder(work, checkpoint):
    tensors, _ = read(checkpoint)
    plain = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    dtype, (o, _, kh, kw), w = plain["conv1.weight"]
    w3 = []
    for oc in range(o):
        kernel = w[oc * kh * kw:(oc + 1) * kh * kw]
        w3 += [v / 3 for v in kernel] * 3
    plain["conv1.weight"] = (dtype, [o, 3, kh, kw], w3)
    write(work + "/colour_model.safetensors", plain)
    rng = random.Random(3)
    for i in range(12):  # two classes of a 10-class label space, smooth-ish images of several sizes
        folder = ("n02", "n07")[i % 2]
        w, h = 10 + 3 * i, 12 + (5 * i) % 9
        base = [rng.randrange(256) for _ in range(3)]
        png(os.path.join(work, "in", folder, "%02d.png" % i), w, h, 3,
            [(base[p % 3] + rng.randrange(60)) % 256 for p in range(w * h * 3)])
    for i in range(7):
        noise(rng, os.path.join(work, "out", "%02d.png" % i), 14 + i, 16, 3)
    with open(work + "/classes.txt", "w") as f:
        f.write("".join("n%02d\n" % k for k in range(10)))

def softmax_max(row):
    m = max(row)
    return 1 / sum(math.exp(x - m) for x in row)

def neg_energy(row):
    m = max(row)
    return m + math.log(sum(math.exp(x - m) for x in row))

def auroc(pos, neg):
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))

def average_precision(pos, neg):
    ap, prev = 0.0, 0.0
    for t in sorted(set(pos + neg), reverse=True):
        tp = sum(p >= t for p in pos)
        fp = sum(n >= t for n in neg)
        ap += (tp / len(pos) - prev) * tp / (tp + fp)
        prev = tp / len(pos)
    return ap

def fpr95(pos, neg):
    return min(sum(n >= t for n in neg) / len(neg) for t in set(pos + neg) if sum(p >= t for p in pos) >= 0.95 * len(pos))

def ece(conf, right, bins=15):
    total = 0.0
    for b in range(bins):
        idx = [i for i, c in enumerate(conf) if b / bins < c <= (b + 1) / bins]
        if idx:
            total += len(idx) / len(conf) * abs(sum(right[i] for i in idx) / len(idx) - sum(conf[i] for i in idx) / len(idx))
    return total

def close(what, got, want, tol=1e-5):
    if abs(got - want) > tol:
        fail("%s: dmix eval says %.9g, recomputed from predict's logits %.9g" % (what, got, want))

def check_folder(work):
    logits = read(work + "/logits.safetensors")[0]["logits"]
    n_in, n_out = 12, 7
    rows = [logits[2][i * 10:(i + 1) * 10] for i in range(n_in + n_out)]
    # predict got the files sorted as the folder lists them: n02/* then n07/*, then the OOD files.
    labels = [2] * 6 + [7] * 6
    keep = [2, 7]
    full = json.load(open(work + "/folder.json"))
    sub = json.load(open(work + "/folder_sub.json"))
    for j, cols in ((full, list(range(10))), (sub, keep)):
        kept = [[r[c] for c in cols] for r in rows]
        y = [cols.index(l) for l in labels]
        first_max = lambda r: max(range(len(r)), key=lambda c: (r[c], -c))
        right = [first_max(kept[i]) == y[i] for i in range(n_in)]
        close("top-1 error", j["top1_error"], 100.0 * (n_in - sum(right)) / n_in, 1e-9)
        conf_in = [softmax_max(r) for r in kept[:n_in]]
        close("ECE", j["ece"], ece(conf_in, right))
        for name, score in (("msp", softmax_max), ("energy", neg_energy)):
            s_in, s_out = [score(r) for r in kept[:n_in]], [score(r) for r in kept[n_in:]]
            got = j["ood_scores"][name]
            close(name + " AUROC", got["auroc"], auroc(s_in, s_out))
            close(name + " AUPR-in", got["aupr_in"], average_precision(s_in, s_out))
            close(name + " AUPR-out", got["aupr_out"], average_precision([-s for s in s_out], [-s for s in s_in]))
            close(name + " FPR95", got["fpr95"], fpr95(s_in, s_out))
    if sub.get("classes") != 2 or "classes" in full:
        fail("restricted run reports %s classes, the full one %s" % (sub.get("classes"), full.get("classes")))
    print("folder: top-1 error %.1f%% over 10 classes, %.1f%% over the folder's 2; AUROC %.3f / %.3f"
          % (full["top1_error"], sub["top1_error"], full["auroc"], sub["auroc"]))

globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PYEOF
st() { PYTHONPATH="$tests_apps" python3 "$work/st.py" "$@"; }

echo "== fashion-mnist against a folder of noise PNGs"
st make-ood "$work"
e=("$dmix" eval --weights "$weights" --samples 32 --batch 8 "${run[@]}")
"${e[@]}" --json > "$work/plain.json"
"${e[@]}" --ood "$work/ood" --ece --reliability "$work/reliability.png" --json > "$work/msp.json"
"${e[@]}" --ood "$work/ood" --ood-score energy --ece --json > "$work/energy.json"
st check-fmnist "$work"
"${e[@]}" --ood "$work/ood" --ece > "$work/text.txt"
grep -q "top-1 error" "$work/text.txt"
grep -q "^OOD $work/ood (5 images, msp score): AUROC " "$work/text.txt"
grep -q "^expected calibration error (15 bins) " "$work/text.txt"

echo "== the split against itself"
"${e[@]}" --ood fashion-mnist:/usr/share/datasets/fashion-mnist --ood-samples 32 --json > "$work/self.json"
st check-self "$work"

echo "== a colour model on a folder of 2 of its 10 classes, recomputed from predict's logits"
st make-folder "$work" "$weights"
f=(--weights "$work/colour_model.safetensors" --model pyramidnet11_a6 --dataset folder --image-size 12 "${run[@]}")
"$dmix" eval "${f[@]}" --data "$work/in" --class-index "$work/classes.txt" --batch 5 --ood "$work/out" --ece \
  --json > "$work/folder.json"
"$dmix" eval "${f[@]}" --data "$work/in" --class-index "$work/classes.txt" --batch 5 --ood "$work/out" --ece \
  --restrict-to-folder-classes --json > "$work/folder_sub.json"
"$dmix" predict --weights "$work/colour_model.safetensors" --model pyramidnet11_a6 --dataset folder --image-size 12 \
  --threads 2 --input "$work"/in/n02/*.png "$work"/in/n07/*.png "$work"/out/*.png \
  --output "$work/logits.safetensors" > /dev/null
st check-folder "$work"

echo "== clear errors"
source "$(dirname "$0")/lib.sh"  # expect_error
mkdir -p "$work/empty/n01"
touch "$work/empty/n01/readme.txt"
expect_error "\-\-ood folder '$work/empty' holds no image file" "${e[@]}" --ood "$work/empty"
expect_error "\-\-ood folder '$work/nothere' does not exist" "${e[@]}" --ood "$work/nothere"
expect_error "\-\-ood cifar10: names no folder" "${e[@]}" --ood cifar10:
expect_error "\-\-ood-score" "${e[@]}" --ood "$work/ood" --ood-score odin
expect_error "\-\-reliability $work/r.pdf must end in .png or .svg" "${e[@]}" --reliability "$work/r.pdf"
test ! -e "$work/r.pdf"
echo "all eval --ood checks passed"
