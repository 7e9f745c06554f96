#!/usr/bin/env bash
# PGD-10 images/s of `dmix attack` beside PyTorch (torchattacks' PGD, or the same steps by
# hand) on the same checkpoint, the same Fashion-MNIST test images and the same threads,
# run back to back R times (the machine may be shared: the ranges matter, not one figure).
#
#   bash scripts/bench/pgd_vs_torch.sh [--dmix build/apps/dmix] [--weights W] [--samples 512]
#        [--batch 256] [--threads 2] [--repeats 3] [--python /usr/bin/python3]
#
# Without --weights it trains the default model (pyramidnet11_a40_basic) for one short epoch
# first: the speed of an attack does not depend on how well the weights are trained. A first
# pair of runs without random start checks that both sides compute the same thing (equal
# clean error, robust errors within a few images). --python takes an interpreter that has
# torch (and torchattacks, if wanted: python3 -m venv --system-site-packages V &&
# V/bin/pip install --no-deps torchattacks).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dmix="$root/build/apps/dmix" weights="" samples=512 batch=256 threads=2 repeats=3 python=/usr/bin/python3
while [ $# -gt 0 ]; do
  case "$1" in
    --dmix) dmix="$2"; shift 2 ;;
    --weights) weights="$2"; shift 2 ;;
    --samples) samples="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    *) echo "pgd_vs_torch.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"

if [ -z "$weights" ]; then
  "$dmix" train --model pyramidnet11_a40_basic --limit-train 2048 --limit-test 256 --epochs 1 --seed 0 --quiet \
    --threads "$threads" --out "$work/model" > /dev/null
  weights="$work/model/last.safetensors"
fi
common=(--samples "$samples" --batch "$batch" --threads "$threads")
dmix_run() {  # dmix_run OUT [extra flags]
  local out="$1"; shift
  "$dmix" attack --weights "$weights" --attack pgd "${common[@]}" --workers 1 "$@" --json "$out" > /dev/null
}
torch_run() {  # torch_run OUT [extra flags]
  local out="$1"; shift
  "$python" "$root/scripts/bench/pgd_torch.py" "$weights" "${common[@]}" "$@" > "$out"
}

dmix_run "$work/check_dmix.json" --random-start=false
torch_run "$work/check_torch.json" --no-random-start
for r in $(seq "$repeats"); do
  dmix_run "$work/dmix_$r.json"
  torch_run "$work/torch_$r.json"
done

"$python" - "$work" "$repeats" <<'PYEOF'
import json, sys
work, repeats = sys.argv[1], int(sys.argv[2])
load = lambda name: json.load(open("%s/%s.json" % (work, name)))
d, t = load("check_dmix"), load("check_torch")
print("same images, no random start: clean error dmix %.2f%% / torch %.2f%%, robust error dmix %.2f%% / torch %.2f%%"
      % (d["clean_top1_error"], t["clean_top1_error"], d["robust_top1_error"], t["robust_top1_error"]))
if abs(d["clean_top1_error"] - t["clean_top1_error"]) > 1e-9:
    sys.exit("pgd_vs_torch: the two sides disagree on the clean images: not the same model")
dm = [load("dmix_%d" % r)["samples"] / load("dmix_%d" % r)["seconds"] for r in range(1, repeats + 1)]
tm = [load("torch_%d" % r)["images_per_s"] for r in range(1, repeats + 1)]
ratios = [a / b for a, b in zip(dm, tm)]
print("PGD-10 (8/255, 2/255, random start) on %s, %d images, batch %d, %d threads; %s, torch %s"
      % (t["model"], t["samples"], t["batch"], t["threads"], load("torch_1")["impl"], t["torch"]))
print("  dmix  images/s: %s" % ", ".join("%.1f" % v for v in dm))
print("  torch images/s: %s" % ", ".join("%.1f" % v for v in tm))
print("  dmix / torch:   %s (range %.2f-%.2fx)" % (", ".join("%.2f" % r for r in ratios), min(ratios), max(ratios)))
PYEOF
