#!/usr/bin/env bash
# The paper's flatness claim (its Fig. 3a/3b) on Fashion-MNIST: does DCutMix converge to a
# flatter minimum than CutMix and than no mixing, at the same training budget?
#
#   1. train:     the main job's model (dmix train's default, pyramidnet11_a40_basic) once per
#                 method, FLATNESS_EPOCHS epochs (default 3), seed 0, batch 64, otherwise dmix
#                 train's defaults: no mixing; CutMix with Beta(1, 1) boxes (Yun et al.'s alpha)
#                 on half the batches; DCutMix K = 3, Dir(0.2), half the batches (the main job);
#   2. eval:      `dmix eval` of each last checkpoint on the test set (no test-set model selection);
#   3. hessian:   `dmix hessian` on a fixed test subset (the first FLATNESS_SAMPLES = 1000 images,
#                 eval mode): top-3 eigenvalues (Lanczos), the trace from exactly
#                 FLATNESS_TRACE_SAMPLES = 30 Rademacher vectors (PyHessian's stopping rule often
#                 stops after a handful), the spectral density (SLQ, 100 Lanczos steps), its plot;
#   4. sigma:     `dmix landscape --mode sigma` of the three checkpoints together on the same
#                 subset: loss and accuracy under N(0, sigma^2) noise on every weight, 5 draws per
#                 sigma, the paper's grid 0 ... 0.012 extended to 0.05 (the curves only part further
#                 out on so small a model), one figure with the three curves;
#   5. eigen2d:   `dmix landscape --mode eigen2d` of the three on an 11 x 11 grid over [-0.1, 0.1]^2
#                 along each model's top-2 Hessian eigenvectors (Fig. 3a): contour panels on one
#                 colour scale and a 3-D surface per model (FLATNESS_EIGEN2D=0 skips it).
#
# Every step leaves OUT/results/NAME.json (plots in OUT/plots/), written last and atomically; a
# rerun skips what exists and resumes a training cut off mid-way from its last epoch (dmix train
# --resume is bit-exact). To redo a step, delete its result. Then the report:
#
#   nohup bash scripts/experiments/flatness.sh >> runs/flatness.log 2>&1 &
#   /usr/bin/python3 scripts/experiments/flatness-report.py runs/flatness docs/experiments
#
# Budget on the 2 CPU cores (idle machine, estimated from `dmix bench --hvp`: one Hessian-vector
# product over the 1000 images takes about 6 s): training ~1.5 min an epoch and model, the
# Hessian step ~15 min a model (about 150 products), sigma ~2 min, eigen2d ~3 min a model:
# about 1.5 hours with the defaults. FLATNESS_TINY=1 takes about 10 minutes.
#
# Settings (environment): FLATNESS_OUT (runs/flatness), DMIX (build/apps/dmix), FLATNESS_MODEL,
# FLATNESS_METHODS ("none cutmix dcutmix"; any dmix train --mix name), FLATNESS_EPOCHS,
# FLATNESS_SEED, FLATNESS_THREADS, FLATNESS_TRAIN_LIMIT (> 0: train on the first N training
# images), FLATNESS_TEST (> 0: evaluate on the first N test images), FLATNESS_SAMPLES,
# FLATNESS_BATCH (batch of the Hessian and landscape passes), FLATNESS_TOP_K,
# FLATNESS_TRACE_SAMPLES, FLATNESS_DENSITY_STEPS, FLATNESS_SIGMAS (comma list), FLATNESS_DRAWS,
# FLATNESS_EIGEN2D, FLATNESS_EIGEN_STEPS, FLATNESS_EIGEN_RANGE, FLATNESS_CUTMIX_ARGS and
# FLATNESS_DCUTMIX_ARGS (extra dmix train flags of those methods). FLATNESS_TINY=1 shrinks
# everything to a few-minute check of the script itself.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."

if [ "${FLATNESS_TINY:-0}" = 1 ]; then
  : "${FLATNESS_MODEL:=pyramidnet11_a8}" "${FLATNESS_EPOCHS:=1}" "${FLATNESS_TRAIN_LIMIT:=1000}" "${FLATNESS_TEST:=200}"
  : "${FLATNESS_SAMPLES:=32}" "${FLATNESS_BATCH:=32}" "${FLATNESS_TOP_K:=2}" "${FLATNESS_TRACE_SAMPLES:=3}"
  : "${FLATNESS_DENSITY_STEPS:=8}" "${FLATNESS_SIGMAS:=0,0.01,0.05}" "${FLATNESS_DRAWS:=2}" "${FLATNESS_EIGEN_STEPS:=3}"
fi
out=${FLATNESS_OUT:-runs/flatness}
dmix=${DMIX:-build/apps/dmix}
model=${FLATNESS_MODEL:-pyramidnet11_a40_basic}
methods=${FLATNESS_METHODS:-none cutmix dcutmix}
epochs=${FLATNESS_EPOCHS:-3}
seed=${FLATNESS_SEED:-0}
threads=${FLATNESS_THREADS:-2}
train_limit=${FLATNESS_TRAIN_LIMIT:-0}
test_images=${FLATNESS_TEST:-0}
samples=${FLATNESS_SAMPLES:-1000}
batch=${FLATNESS_BATCH:-250}
top_k=${FLATNESS_TOP_K:-3}
trace_samples=${FLATNESS_TRACE_SAMPLES:-30}
density_steps=${FLATNESS_DENSITY_STEPS:-100}
sigmas=${FLATNESS_SIGMAS:-0,0.002,0.004,0.006,0.008,0.01,0.012,0.02,0.03,0.05}
draws=${FLATNESS_DRAWS:-5}
eigen2d=${FLATNESS_EIGEN2D:-1}
eigen_steps=${FLATNESS_EIGEN_STEPS:-11}
eigen_range=${FLATNESS_EIGEN_RANGE:--0.1,0.1}

[ -x "$dmix" ] || { echo "flatness: no dmix binary at $dmix (build it: bash scripts/build.sh, or set DMIX)"; exit 1; }
mkdir -p "$out"/{train,results,plots}
exec 9> "$out/.lock"
flock -n 9 || { echo "flatness: another run holds $out/.lock"; exit 1; }
log() { echo "flatness $(date '+%F %T'): $*"; }
lines() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
subset=(--samples "$samples" --batch "$batch" --threads "$threads" --workers 2)
test_limit=(); [ "$test_images" -gt 0 ] && test_limit=(--limit-test "$test_images")

mix_args() {  # mix_args METHOD: the dmix train flags of a method
  case "$1" in
    cutmix) echo "--mix cutmix ${FLATNESS_CUTMIX_ARGS:---mix-alpha 1}" ;;
    dcutmix) echo "--mix dcutmix ${FLATNESS_DCUTMIX_ARGS:-}" ;;
    *) echo "--mix $1" ;;
  esac
}
weights() { echo "$out/train/$1/last.safetensors"; }

# 1-3. Per method: the model, its test error, its Hessian.
for m in $methods; do
  dir="$out/train/$m"
  if [ "$(lines "$dir/metrics.jsonl")" -lt "$epochs" ]; then
    resume=(); [ -f "$dir/last.safetensors" ] && resume=(--resume "$dir/last.safetensors")
    limit=(); [ "$train_limit" -gt 0 ] && limit=(--limit-train "$train_limit")
    read -r -a mix <<< "$(mix_args "$m")"
    log "$m: training $model for $epochs epochs (${mix[*]})"
    t0=$SECONDS
    "$dmix" train --model "$model" --epochs "$epochs" --seed "$seed" "${mix[@]}" "${limit[@]}" "${test_limit[@]}" \
      --threads "$threads" --quiet --out "$dir" "${resume[@]}"
    echo $((SECONDS - t0)) >> "$dir/train_seconds"
  fi
  result="$out/results/eval-$m.json"
  if [ ! -f "$result" ]; then
    "$dmix" eval --weights "$(weights "$m")" "${test_limit[@]}" --threads "$threads" --json > "$result.part"
    mv "$result.part" "$result"
    log "$m: $(cat "$result")"
  fi
  result="$out/results/hessian-$m.json"
  if [ ! -f "$result" ]; then
    log "$m: Hessian on $samples test images (top-$top_k, trace of $trace_samples samples, density)"
    "$dmix" hessian --weights "$(weights "$m")" "${subset[@]}" --top-k "$top_k" --trace-samples "$trace_samples" \
      --density --density-steps "$density_steps" --seed "$seed" --plot "$out/plots/esd-$m.png" \
      --json "$result.part" > /dev/null
    mv "$result.part" "$result"
    log "$m: $(grep -o '"top_eigenvalues":\[[^]]*\]' "$result"), $(grep -o '"trace":[-0-9.e+]*' "$result")"
  fi
done

# 4-5. The landscapes of all methods together: one figure each, one colour scale.
all=() names=""
for m in $methods; do
  all+=("$(weights "$m")")
  names+="${names:+,}$m"
done
result="$out/results/sigma.json"
if [ ! -f "$result" ]; then
  log "sigma-curves of $methods on $samples test images"
  "$dmix" landscape --weights "${all[@]}" --names "$names" --mode sigma --sigmas "$sigmas" --draws "$draws" \
    --seed "$seed" "${subset[@]}" --plot "$out/plots/sigma.png" --accuracy-plot "$out/plots/sigma-accuracy.png" \
    --json "$result.part" > /dev/null
  mv "$result.part" "$result"
fi
result="$out/results/eigen2d.json"
if [ "$eigen2d" = 1 ] && [ ! -f "$result" ]; then
  log "surfaces along the top-2 eigenvectors of $methods ($eigen_steps x $eigen_steps over $eigen_range)"
  "$dmix" landscape --weights "${all[@]}" --names "$names" --mode eigen2d --range "$eigen_range" \
    --steps "$eigen_steps" --seed "$seed" "${subset[@]}" --plot "$out/plots/eigen2d.png" \
    --surface "$out/plots/eigen2d-surface.png" --json "$result.part" > /dev/null
  mv "$result.part" "$result"
fi
log "done: results in $out/results; report: /usr/bin/python3 scripts/experiments/flatness-report.py $out docs/experiments"
