#!/usr/bin/env bash
# End-to-end checks of `dmix train` on a Fashion-MNIST subset:
#  1. a short run beats a clear accuracy bar;
#  2. resume is bit-exact: 2 epochs == 1 epoch, stop, resume for 1 (checkpoints identical),
#     with the default DCutMix drawing from the checkpointed generator;
#  3. bad input ends with one clear line and a non-zero status, never a damaged checkpoint.
set -euo pipefail
dmix="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--model pyramidnet11_a24 --limit-train 2048 --limit-test 500 --batch 32 --lr 0.05 --no-augment --seed 7 --threads 2 --workers 2 --quiet)

echo "== accuracy bar"
"$dmix" train "${common[@]}" --mix none --epochs 3 --out "$work/a" | tee "$work/a.txt"
acc=$(grep -o 'accuracy [0-9.]*' "$work/a.txt" | awk '{print $2}')
awk -v a="$acc" 'BEGIN { if (a < 70.0) { print "accuracy " a "% is below the 70% bar"; exit 1 } }'
test "$(wc -l < "$work/a/metrics.jsonl")" -eq 3

echo "== bit-exact resume"
"$dmix" train "${common[@]}" --epochs 2 --out "$work/full"
"$dmix" train "${common[@]}" --epochs 2 --stop-after 1 --out "$work/split"
"$dmix" train "${common[@]}" --epochs 2 --resume "$work/split/last.safetensors" --out "$work/split"
cmp "$work/full/last.safetensors" "$work/split/last.safetensors"

echo "== clear errors, checkpoints intact"
cp "$work/full/last.safetensors" "$work/keep.safetensors"
source "$(dirname "$0")/lib.sh"  # expect_error
expect_error "loss became .*nan" "$dmix" train "${common[@]}" --lr 1e30 --resume "$work/full/last.safetensors" --epochs 3 --out "$work/full"
cmp "$work/full/last.safetensors" "$work/keep.safetensors"
head -c 100 "$work/keep.safetensors" > "$work/truncated.safetensors"
expect_error "load_safetensors" "$dmix" eval --weights "$work/truncated.safetensors" --limit-test 10
expect_error "fashion-mnist" "$dmix" train --data /nonexistent --epochs 1 --out "$work/x"
expect_error "epochs" "$dmix" train --epochs 0
expect_error "unknown model" "$dmix" train --model nosuchnet --limit-train 64 --out "$work/y"
"$dmix" eval --weights "$work/full/best.safetensors" --limit-test 200 --json | grep -q top1_error
expect_error "unknown preset 'nosuch'" "$dmix" train --preset nosuch --out "$work/z"

echo "== presets: the preset's flags apply, flags given explicitly win"
"$dmix" train --preset fmnist-wrn16-8 --model pyramidnet11_a24 --epochs 1 --limit-train 128 --limit-test 64 \
  --threads 2 --workers 2 --quiet --out "$work/preset"
# The checkpoint's header records the options the run used (as escaped JSON).
config=$(head -c 16384 "$work/preset/last.safetensors" | tr -d '\0')
for kv in '\"model\":\"pyramidnet11_a24\"' '\"epochs\":1' '\"batch\":128' '\"augment\":\"flip\"' \
          '\"pad_crop\":2' '\"mix\":\"dcutmix\"' '\"mix_k\":3' '\"schedule\":\"cosine\"'; do
  grep -qF "$kv" <<<"$config" || { echo "preset fmnist-wrn16-8: $kv not in the run's options"; exit 1; }
done
echo "all train checks passed"
