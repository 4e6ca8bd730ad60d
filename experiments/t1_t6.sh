#!/usr/bin/env bash
# Tables T1 (accuracy) and T6 (accuracy against novelty) for one dataset and one seed index s: builds
# every pool they need with the documented commands, then evaluates the seed, MGE, E-MGE (when a pool
# is given) and the baselines together (conf/experiment/t1_accuracy.yaml, t6_novelty.yaml).
# experiments/t1_t3_t6_report.py turns the folders of several seed indices into mean ± std tables.
#
# Usage: bash experiments/t1_t6.sh DATASET SEED SEEDS_DIR OUT [DATA_ROOT] [EMGE_RUN]
#   DATASET    mnist | fashion_mnist | digits (the recipe of conf/dataset/<DATASET>.yaml)
#   SEED       s in 0..5: the seed model is SEEDS_DIR/seed<s>, the independent pool the five others
#   SEEDS_DIR  holds seed0 .. seed5, mge-train run folders of the recipe trained with seed=0..5 (or
#              symlinks to existing ones: ln -s /work/artifacts/mnist/seed0 SEEDS_DIR/seed0); a seed<k>
#              without seed.safetensors is trained there (an existing seed file is never retrained)
#   OUT        every stage gets a fixed folder under OUT/seed<s>; rerunning skips finished stages:
#                mge/                       the MGE pool of the seed: n=100, default generator and discriminator
#                snapshot-run/              one training with seed=s, warm restarts and a snapshot per cycle
#                baselines/<name>/          noise_gated, noise_ungated (matched to mge/pool), noise_curve,
#                                           independent (the five other seeds), snapshot
#                t1_accuracy/, t6_novelty/  the tables and plots (mge-eval)
#                stages.tsv                 per stage: start time, seconds (timed inside the lock), load before
#                                           and after, exit code, skipped (yes: a finished job, not rerun)
#   DATA_ROOT  where MNIST/FashionMNIST live (default ../shared/data)
#   EMGE_RUN   an mge-evolve run folder of the same seed (optional; its population/ becomes the E-MGE row)
# Heavy stages can share a machine lock: MGE_LOCK="flock /work/cpu.lock" bash experiments/t1_t6.sh ...
# Extra overrides (word-split; e.g. small settings in tests): TRAIN_ARGS for every training,
# GENERATE_ARGS for mge-generate, CURVE_ARGS for the noise curve; SNAPSHOT_CYCLE: epochs per warm-restart
# cycle of the snapshot training (default below, per dataset).
set -euo pipefail
dataset="$1" s="$2" seeds="$3" out="$4/seed$2" root="${5:-../shared/data}" emge_run="${6:-}"
lock="${MGE_LOCK:-}"
read -r -a train_args <<<"${TRAIN_ARGS:-}"
read -r -a generate_args <<<"${GENERATE_ARGS:-}"
read -r -a curve_args <<<"${CURVE_ARGS:-}"
case "$dataset" in
  mnist) cycle=2 ;;         # 8 epochs: snapshots at the ends of 4 warm-restart cycles, the seed's budget
  fashion_mnist) cycle=3 ;; # 15 epochs: 5 cycles
  cifar10) cycle=20 ;;      # 100 epochs: 5 cycles
  gtsrb) cycle=6 ;;         # 30 epochs: 5 cycles
  digits) cycle=6 ;;        # 30 epochs: 5 cycles
  *) echo "unknown dataset $dataset (mnist | fashion_mnist | cifar10 | gtsrb | digits)" >&2; exit 2 ;;
esac
cycle="${SNAPSHOT_CYCLE:-$cycle}"
case "$s" in
  [0-5]) ;;
  *) echo "SEED must be one of 0..5, got $s" >&2; exit 2 ;;
esac
mkdir -p "$out"
stages="$(cd "$out" && pwd)/stages.tsv"
[ -f "$stages" ] || printf 'stage\tstarted\tseconds\tload_before\tload_after\texit\tskipped\n' >"$stages"

timed() { # timed LOG NAME CMD...: run CMD, append its wall-clock, the load average around it and whether it
  # skipped a finished job (its "finished before:" line on stderr) to LOG
  local log="$1" name="$2" t0 l0 rc err skipped=no
  shift 2
  err=$(mktemp)
  t0=$(date +%s.%N) l0=$(cut -d' ' -f1-3 /proc/loadavg)
  { "$@" 2>&1 1>&3 3>&- | tee "$err" >&2; rc=${PIPESTATUS[0]}; } 3>&1
  if grep -q "^finished before:" "$err"; then skipped=yes; fi
  rm -f "$err"
  printf '%s\t%s\t%.1f\t%s\t%s\t%s\t%s\n' "$name" "$(date -d "@$t0" +%T)" "$(echo "$(date +%s.%N) - $t0" | bc)" \
    "$l0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$rc" "$skipped" >>"$log"
  return "$rc"
}
export -f timed
stage() { # stage NAME CMD...: CMD under the lock, timed once the lock is held
  echo "== $1 $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $lock bash -c 'timed "$@"' _ "$stages" "$@"
}

others=()
for k in 0 1 2 3 4 5; do
  if [ ! -f "$seeds/seed$k/seed.safetensors" ]; then
    stage "train seed$k" python -m mge.cli.train dataset="$dataset" data.root="$root" seed="$k" \
      trainer.enable_progress_bar=false "${train_args[@]}" hydra.run.dir="$seeds/seed$k"
  fi
  if [ "$k" != "$s" ]; then others+=("$seeds/seed$k"); fi
done
seed_run="$seeds/seed$s" mge_run="$out/mge" base="$out/baselines"

stage "MGE pool" python -m mge.cli.generate seed_model="$seed_run" n=100 data_root="$root" progress=false \
  "${generate_args[@]}" hydra.run.dir="$mge_run"
stage "snapshot training" python -m mge.cli.train dataset="$dataset" data.root="$root" seed="$s" callbacks=snapshots \
  optim.scheduler=cosine_restarts optim.cycle_epochs="$cycle" trainer.enable_progress_bar=false \
  "${train_args[@]}" hydra.run.dir="$out/snapshot-run"
stage "noise gated" python -m mge.cli.baseline baseline=noise baseline.reference_pool="$mge_run/pool" \
  baseline.max_rounds=50 data_root="$root" hydra.run.dir="$base/noise_gated"
stage "noise ungated" python -m mge.cli.baseline baseline=noise baseline.reference_pool="$mge_run/pool" \
  baseline.gated=false hydra.run.dir="$base/noise_ungated"
stage "noise curve" python -m mge.cli.baseline baseline=noise_curve seed_model="$seed_run" "${curve_args[@]}" \
  hydra.run.dir="$base/noise_curve"
runs=$(IFS=,; echo "${others[*]}")
stage "independent pool" python -m mge.cli.baseline baseline=independent seed_model="$seed_run" \
  "baseline.runs=[$runs]" hydra.run.dir="$base/independent"
stage "snapshot pool" python -m mge.cli.baseline baseline=snapshot seed_model="$seed_run" \
  baseline.run="$out/snapshot-run" hydra.run.dir="$base/snapshot"

emge=()
if [ -n "$emge_run" ]; then emge=("pools.E-MGE=$emge_run/population"); fi
for table in t1_accuracy t6_novelty; do
  stage "$table" python -m mge.cli.evaluate experiment="$table" mge_run="$mge_run" baselines="$base" \
    data_root="$root" "${emge[@]}" hydra.run.dir="$out/$table"
done
echo "== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
