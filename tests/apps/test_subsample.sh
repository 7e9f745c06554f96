#!/usr/bin/env bash
# End-to-end checks of `dmix subsample` and `dmix train --subset` on the first 200
# Fashion-MNIST training images, scored by a model trained for one epoch on them:
#  1. every measure writes a subset holding exactly ceil(t N_c) images of every class c;
#  2. the same seed gives the same file, and selecting from a --scores file gives the
#     subset scoring gives;
#  3. the file trains: `dmix train --subset` reports the subset's class histogram;
#  4. --warmup-epochs trains the scoring model itself; --grid writes the Fig. 2 PNG;
#  5. bad input ends with one clear line and a non-zero status.
set -euo pipefail
dmix="$1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run=(--threads 2 --workers 2)

"$dmix" train --model pyramidnet11_a24 --limit-train 200 --limit-test 50 --epochs 1 --batch 32 --mix none --quiet \
  "${run[@]}" --out "$work/model" > /dev/null
weights="$work/model/last.safetensors"
sub=(--weights "$weights" --samples 200 --draws 3 "${run[@]}")

per_class() { grep -o '"per_class":\[[0-9,]*\]' "$1" | grep -o '\[.*\]'; }
body() { grep -v '^#' "$1"; }

echo "== class sizes of the pool (random at t = 1 keeps everything)"
"$dmix" subsample "${sub[@]}" --measure random --ratio 1 --out "$work/all.txt" --json > "$work/all.json"
sizes=$(per_class "$work/all.json")
test "$(body "$work/all.txt" | wc -l)" -eq 200
expected=$(awk -v s="$sizes" 'BEGIN { gsub(/[][]/, "", s); n = split(s, c, ",");
  for (i = 1; i <= n; ++i) { k = int(c[i] * 0.1); if (k < c[i] * 0.1 - 1e-9) ++k; if (k < 1) k = 1;
    printf "%s%d", (i > 1 ? "," : "["), k } print "]" }')
echo "class sizes $sizes, expected at t = 0.1: $expected"

check_subset() {  # check_subset NAME: the summary's per-class counts and the file's length are the expected ones
  local got
  got=$(per_class "$work/$1.json")
  [ "$got" = "$expected" ] || { echo "$1: per class $got, expected $expected"; exit 1; }
  total=$(awk -v s="$expected" 'BEGIN { gsub(/[][]/, "", s); n = split(s, c, ","); for (i = 1; i <= n; ++i) t += c[i]; print t }')
  test "$(body "$work/$1.txt" | wc -l)" -eq "$total"
  body "$work/$1.txt" | awk '$1 < 0 || $1 >= 200 { print "index " $1 " outside the pool"; exit 1 }'
  test "$(body "$work/$1.txt" | sort -n | uniq | wc -l)" -eq "$total"
}

echo "== every measure"
"$dmix" subsample "${sub[@]}" --measure cv --ratio 0.1 --out "$work/cv.txt" --scores "$work/scores.json" --json \
  > "$work/cv.json"
check_subset cv
grep -q '^# dmix subset: measure cv, rule top, ratio 0.1, seed 0, checkpoint .*last.safetensors, dataset fashion-mnist (60000 images)' "$work/cv.txt"
test "$(grep -c '"index": [0-9]*, "class": [0-9], "mean": [0-9.e-]*, "std": [0-9.e-]*, "cv": ' "$work/scores.json")" -eq 200
for measure in mean-low mean-high std; do
  "$dmix" subsample --from-scores "$work/scores.json" --measure "$measure" --ratio 0.1 --out "$work/$measure.txt" \
    --json > "$work/$measure.json"
  check_subset "$measure"
done
"$dmix" subsample --from-scores "$work/scores.json" --measure cv --ratio 0.1 --select interval \
  --out "$work/cv-interval.txt" --json > "$work/cv-interval.json"
check_subset cv-interval
for measure in random mc-dropout kcenter; do
  "$dmix" subsample "${sub[@]}" --measure "$measure" --ratio 0.1 --out "$work/$measure.txt" --json > "$work/$measure.json"
  check_subset "$measure"
done
# Easy-only and hard-only pick different images; so do two seeds of random.
differ() { if cmp -s <(body "$work/$1") <(body "$work/$2"); then echo "$1 and $2 hold the same subset"; exit 1; fi; }
differ mean-low.txt mean-high.txt
"$dmix" subsample "${sub[@]}" --measure random --ratio 0.1 --seed 1 --out "$work/random1.txt" > /dev/null
differ random.txt random1.txt

echo "== same seed, same subset; selecting from the scores file gives what scoring gave"
"$dmix" subsample "${sub[@]}" --measure cv --ratio 0.1 --out "$work/cv-again.txt" > /dev/null
cmp "$work/cv.txt" "$work/cv-again.txt"
"$dmix" subsample --from-scores "$work/scores.json" --measure cv --ratio 0.1 --out "$work/cv-saved.txt" > /dev/null
cmp <(body "$work/cv.txt") <(body "$work/cv-saved.txt")

echo "== the subset trains, and the loader reports its class histogram"
"$dmix" train --model pyramidnet11_a24 --subset "$work/cv.txt" --epochs 1 --batch 8 --limit-test 50 "${run[@]}" \
  --out "$work/train" > /dev/null 2> "$work/train.err"
counts=$(per_class "$work/cv.json" | sed 's/,/, /g')
grep -qF "subset $work/cv.txt: $(body "$work/cv.txt" | wc -l) of 60000 training images, per class $counts" \
  "$work/train.err" || { echo "no class histogram:"; cat "$work/train.err"; exit 1; }

echo "== warm-up model and the Fig. 2 grid"
"$dmix" subsample --model pyramidnet11_a24 --warmup-epochs 1 --samples 200 "${run[@]}" --measure random --ratio 0.1 \
  --out "$work/warm.txt" --grid "$work/grid.png" --anchor 5 --draws 6 --json > "$work/warm.json" 2> /dev/null
grep -q '^# dmix subset: .*checkpoint none: pyramidnet11_a24 trained here for 1 epoch(s) without mixing on 200 images' \
  "$work/warm.txt"
test "$(head -c 8 "$work/grid.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"
grep -qE '"grid":\{"anchor":5,"file":"[^"]*grid.png","losses":\[([0-9.e-]+,){5}[0-9.e-]+\]' "$work/warm.json"

echo "== clear errors"
source "$(dirname "$0")/lib.sh"  # expect_error
expect_error "ratio must be in (0, 1\], got 0" "$dmix" subsample "${sub[@]}" --measure cv --ratio 0 --out "$work/x.txt"
expect_error "ratio must be in (0, 1\], got 1.5" "$dmix" subsample "${sub[@]}" --measure cv --ratio 1.5 --out "$work/x.txt"
expect_error "kcenter picks its own centres" "$dmix" subsample "${sub[@]}" --measure kcenter --select interval \
  --ratio 0.1 --out "$work/x.txt"
expect_error "unknown measure 'entropy'" "$dmix" subsample "${sub[@]}" --measure entropy --ratio 0.1 --out "$work/x.txt"
expect_error "nosuch.safetensors" "$dmix" subsample --weights "$work/nosuch.safetensors" --measure cv --ratio 0.1 \
  --out "$work/x.txt"
expect_error "needs a scoring model" "$dmix" subsample --measure cv --ratio 0.1 --out "$work/x.txt"
expect_error "scores writes the mixing losses" "$dmix" subsample "${sub[@]}" --measure random --ratio 0.1 \
  --out "$work/x.txt" --scores "$work/x.json"
expect_error "anchor 500 is not among the 200 images" "$dmix" subsample "${sub[@]}" --grid "$work/x.png" --anchor 500
expect_error "give --out" "$dmix" subsample "${sub[@]}" --measure cv --ratio 0.1
test ! -e "$work/x.txt"
expect_error "subset and --limit-train" "$dmix" train --subset "$work/cv.txt" --limit-train 100 --out "$work/y"
subset_error() {  # subset_error PATTERN FILE-CONTENT: dmix train --subset of that file fails with PATTERN
  printf '%b' "$2" > "$work/bad.txt"
  expect_error "$1" "$dmix" train --subset "$work/bad.txt" --epochs 1 --out "$work/y"
}
subset_error "'x' is not an integer" '1\nx\n'
subset_error "index 60000 is outside \[0, 60000)" '1\n60000\n'
subset_error "index 3 repeats line 1" '3\n4\n3\n'
subset_error "chosen from a dataset of 200 images, this one has 60000" \
  '# dmix subset: measure cv, rule top, ratio 0.1, seed 0, checkpoint c, dataset fashion-mnist (200 images), 2 indices\n1\n2\n'
subset_error "holds 2 indices but its header says 3" \
  '# dmix subset: measure cv, rule top, ratio 0.1, seed 0, checkpoint c, dataset fashion-mnist (60000 images), 3 indices\n1\n2\n'
echo "all subsample checks passed"
