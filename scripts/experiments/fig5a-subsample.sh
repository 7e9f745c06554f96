#!/usr/bin/env bash
# The paper's Fig. 5a on Fashion-MNIST: test error of a model trained with DCutMix on a
# per-class fraction t of the training set, chosen by each subsampling measure.
#
#   1. scorer:  `dmix train` with the main job's defaults (pyramidnet11_a40_basic, DCutMix
#               K=3 alpha=0.2 p=0.5, 6 epochs, seed 0) on the full training set;
#   2. scores:  `dmix subsample --measure cv --scores` with that model over all 60,000
#               training images, M = 10 composites each (about 37 min on 2 cores), and
#               `dmix bench --infer` of the same model for comparison;
#   3. subsets: for every t, cv / mean-low / mean-high / std selected from the saved scores,
#               random (one subset per seed), mc-dropout and kcenter (one pass of the
#               scorer each);
#   4. runs:    for every seed, t and measure, the same model trained from scratch with
#               DCutMix (dmix train's defaults) on the subset, then `dmix eval` of its last
#               checkpoint on the full test set; on the random subsets also without mixing.
#
# Training length: a fixed budget of FIG5A_STEPS optimisation steps (batch 64), i.e.
# ceil(steps / floor(subset size / 64)) epochs, so that t = 0.01 (600 images, 9 steps an
# epoch) trains for as many steps as t = 0.2 does. The paper trains every subset for the
# same epochs, which leaves the smallest subsets a few dozen steps; the default 1000 steps
# (about 1.1 epochs of the full set) fit about 2 minutes a run on 2 CPU cores. The errors
# reported are those of the last epoch's checkpoint (no test-set model selection); the
# per-epoch evaluation dmix train does is cut to 100 test images to save time.
#
# Each finished run leaves OUT/results/NAME.json, written last and atomically; a rerun
# skips everything already done and resumes a run cut off mid-way from its last epoch
# (dmix train --resume is bit-exact). Runs go seed by seed, so the first seed of every
# (t, measure) completes first. Budget on 2 cores: scorer ~9 min, scores ~37 min, subsets
# ~20 min, 5 t x (7 measures + no-mix random) x 3 seeds = 120 runs of ~2.2 min: ~5 hours,
# i.e. two or three sessions; start it again in each:
#
#   nohup bash scripts/experiments/fig5a-subsample.sh >> runs/fig5a.log 2>&1 &
#   /usr/bin/python3 scripts/experiments/fig5a-report.py runs/fig5a docs/experiments
#
# Settings (environment): FIG5A_OUT (runs/fig5a), DMIX (build/apps/dmix), FIG5A_MODEL,
# FIG5A_RATIOS, FIG5A_MEASURES, FIG5A_SEEDS, FIG5A_STEPS, FIG5A_SCORER_EPOCHS, FIG5A_DRAWS,
# FIG5A_THREADS, FIG5A_NOMIX (1: the no-mixing runs on random subsets), FIG5A_SAMPLES
# (> 0: the scorer, the scores and so the subsets use only the first N training images),
# FIG5A_TEST (> 0: evaluate on the first N test images only). FIG5A_TINY=1 shrinks
# everything to a two-minute check of the script itself.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."

if [ "${FIG5A_TINY:-0}" = 1 ]; then
  : "${FIG5A_MODEL:=pyramidnet11_a24}" "${FIG5A_RATIOS:=0.1 0.2}" "${FIG5A_MEASURES:=cv random}" "${FIG5A_SEEDS:=0}"
  : "${FIG5A_STEPS:=10}" "${FIG5A_SCORER_EPOCHS:=1}" "${FIG5A_DRAWS:=3}" "${FIG5A_SAMPLES:=1000}" "${FIG5A_TEST:=300}"
fi
out=${FIG5A_OUT:-runs/fig5a}
dmix=${DMIX:-build/apps/dmix}
model=${FIG5A_MODEL:-pyramidnet11_a40_basic}
ratios=${FIG5A_RATIOS:-0.01 0.02 0.05 0.1 0.2}
measures=${FIG5A_MEASURES:-cv mean-low mean-high std random mc-dropout kcenter}
seeds=${FIG5A_SEEDS:-0 1 2}
steps=${FIG5A_STEPS:-1000}
scorer_epochs=${FIG5A_SCORER_EPOCHS:-6}
draws=${FIG5A_DRAWS:-10}
threads=${FIG5A_THREADS:-2}
nomix=${FIG5A_NOMIX:-1}
samples=${FIG5A_SAMPLES:-0}
test_images=${FIG5A_TEST:-0}
batch=64

[ -x "$dmix" ] || { echo "fig5a: no dmix binary at $dmix (build it: bash scripts/build.sh, or set DMIX)"; exit 1; }
mkdir -p "$out"/{scorer,scores,subsets,runs,results}
exec 9> "$out/.lock"
flock -n 9 || { echo "fig5a: another run holds $out/.lock"; exit 1; }
run=(--threads "$threads" --workers 2)
pool=(); [ "$samples" -gt 0 ] && pool=(--samples "$samples")
test_limit=(); [ "$test_images" -gt 0 ] && test_limit=(--limit-test "$test_images")
log() { echo "fig5a $(date '+%F %T'): $*"; }
lines() { [ -f "$1" ] && wc -l < "$1" || echo 0; }

# 1. The scoring model, resumed where a previous session stopped.
scorer="$out/scorer/last.safetensors"
if [ "$(lines "$out/scorer/metrics.jsonl")" -lt "$scorer_epochs" ]; then
  log "training the scorer: $model, $scorer_epochs epochs with DCutMix"
  resume=(); [ -f "$scorer" ] && resume=(--resume "$scorer")
  limit=(); [ "$samples" -gt 0 ] && limit=(--limit-train "$samples")
  "$dmix" train --model "$model" --epochs "$scorer_epochs" --seed 0 "${limit[@]}" "${test_limit[@]}" "${run[@]}" \
    --quiet --out "$out/scorer" "${resume[@]}"
fi

# 2. One scoring pass gives cv, mean and std for every image.
if [ ! -f "$out/scores/scores.json" ]; then
  log "scoring the training set, M = $draws"
  "$dmix" subsample --weights "$scorer" "${pool[@]}" --measure cv --ratio 1 --draws "$draws" --threads "$threads" \
    --out "$out/scores/all.txt" --scores "$out/scores/scores.json.part" --json > "$out/scores/scoring.json.part"
  mv "$out/scores/scoring.json.part" "$out/scores/scoring.json"
  mv "$out/scores/scores.json.part" "$out/scores/scores.json"
fi
if [ ! -f "$out/scores/bench.json" ]; then
  "$dmix" bench --model "$model" --infer --fmnist --batch 256 --threads "$threads" --json > "$out/scores/bench.json.part"
  mv "$out/scores/bench.json.part" "$out/scores/bench.json"
fi

# 3. The subsets. write_subset_file writes atomically, so a file present is complete.
subset_file() {  # subset_file MEASURE RATIO SEED: the path, made when missing
  local measure=$1 ratio=$2 seed=$3 file
  case "$measure" in
    random) file="$out/subsets/random-t$ratio-s$seed.txt" ;;
    *) file="$out/subsets/$measure-t$ratio.txt" ;;
  esac
  if [ ! -f "$file" ]; then
    case "$measure" in
      cv | mean-low | mean-high | std) src=(--from-scores "$out/scores/scores.json") ;;
      random) src=(--weights "$scorer" "${pool[@]}" --seed "$seed") ;;
      *) src=(--weights "$scorer" "${pool[@]}") ;;
    esac
    "$dmix" subsample "${src[@]}" --measure "$measure" --ratio "$ratio" --threads "$threads" --out "$file" > /dev/null
  fi
  echo "$file"
}

# 4. The runs.
train_run() {  # train_run NAME SUBSET SEED MIX MEASURE RATIO
  local name=$1 subset=$2 seed=$3 mix=$4 measure=$5 ratio=$6
  local result="$out/results/$name.json" dir="$out/runs/$name"
  [ -f "$result" ] && return 0
  local size per_epoch epochs resume=()
  size=$(grep -vc '^#' "$subset")
  per_epoch=$((size / batch))
  [ "$per_epoch" -ge 1 ] || { log "$name: $size images make no batch of $batch; skipped"; return 0; }
  epochs=$(((steps + per_epoch - 1) / per_epoch))
  if [ "$(lines "$dir/metrics.jsonl")" -lt "$epochs" ]; then
    local from=""
    if [ -f "$dir/last.safetensors" ]; then
      resume=(--resume "$dir/last.safetensors")
      from=", resuming after epoch $(lines "$dir/metrics.jsonl")"
    fi
    log "$name: $size images, $epochs epochs of $per_epoch steps, mix $mix$from"
    local t0=$SECONDS
    "$dmix" train --model "$model" --subset "$subset" --epochs "$epochs" --batch "$batch" --mix "$mix" --seed "$seed" \
      --limit-test 100 "${run[@]}" --quiet --out "$dir" "${resume[@]}" > /dev/null
    echo $((SECONDS - t0)) >> "$dir/train_seconds"
  fi
  local eval_json
  eval_json=$("$dmix" eval --weights "$dir/last.safetensors" "${test_limit[@]}" --threads "$threads" --json)
  local seconds
  seconds=$(awk '{ s += $1 } END { print s + 0 }' "$dir/train_seconds" 2> /dev/null || echo 0)
  printf '{"name": "%s", "measure": "%s", "mix": "%s", "ratio": %s, "seed": %s, "model": "%s", "subset": "%s", ' \
    "$name" "$measure" "$mix" "$ratio" "$seed" "$model" "$subset" > "$result.part"
  printf '"subset_size": %s, "epochs": %s, "steps": %s, "train_seconds": %s, "eval": %s}\n' \
    "$size" "$epochs" "$((epochs * per_epoch))" "$seconds" "$eval_json" >> "$result.part"
  mv "$result.part" "$result"
  log "$name: $(grep -o '"top1_error": *[0-9.]*' "$result")"
}

for seed in $seeds; do
  for ratio in $ratios; do
    for measure in $measures; do
      subset=$(subset_file "$measure" "$ratio" "$seed")
      train_run "$measure-t$ratio-s$seed" "$subset" "$seed" dcutmix "$measure" "$ratio"
      if [ "$measure" = random ] && [ "$nomix" = 1 ]; then
        train_run "random-nomix-t$ratio-s$seed" "$subset" "$seed" none random "$ratio"
      fi
    done
  done
done
log "all runs done: $(find "$out/results" -name '*.json' | wc -l) results in $out/results"
