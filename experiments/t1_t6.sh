#!/usr/bin/env bash
# Tables T1 (accuracy) and T6 (accuracy against novelty) for one dataset: builds every baseline pool
# they need with the documented commands, then evaluates the seed, MGE, E-MGE (when a pool exists)
# and the baselines together (conf/experiment/t1_accuracy.yaml, t6_novelty.yaml).
#
# Usage: bash experiments/t1_t6.sh DATASET SEED_RUN MGE_RUN OUT [DATA_ROOT] [EMGE_RUN]
#   DATASET    mnist | fashion_mnist (the recipe of conf/dataset/<DATASET>.yaml)
#   SEED_RUN   the mge-train (or mge) run folder of the seed, trained with seed=0
#   MGE_RUN    the mge-generate run folder of that seed's MGE pool
#   OUT        every stage gets a fixed folder under it; rerunning skips finished stages:
#                OUT/independent/seed{1..5}   K=5 trainings of the seed's recipe (a finished job is skipped)
#                OUT/snapshot-run             one training with warm restarts and a snapshot per cycle
#                OUT/baselines/<name>/pool    noise_gated, noise_ungated, noise_curve, independent, snapshot
#                OUT/t1_accuracy, OUT/t6_novelty   the tables and plots
#   DATA_ROOT  where MNIST/FashionMNIST live (default ../shared/data)
#   EMGE_RUN   an mge-evolve run folder of the same seed (optional; its pool/ becomes the E-MGE row)
# Heavy stages can share a machine lock: MGE_LOCK="flock /work/cpu.lock" bash experiments/t1_t6.sh ...
set -euo pipefail
dataset="$1" seed_run="$2" mge_run="$3" out="$4" root="${5:-../shared/data}" emge_run="${6:-}"
lock="${MGE_LOCK:-}"
case "$dataset" in
  mnist) cycle=2 ;;         # 8 epochs: snapshots at the ends of 4 warm-restart cycles, the seed's budget
  fashion_mnist) cycle=3 ;; # 15 epochs: 5 cycles
  *) echo "unknown dataset $dataset (mnist | fashion_mnist)" >&2; exit 2 ;;
esac
stamp() { echo "== $1 $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }

stamp "independent trainings"
$lock python -m mge.cli.train -m dataset="$dataset" data.root="$root" seed=1,2,3,4,5 \
  trainer.enable_progress_bar=false hydra.sweep.dir="$out/independent" 'hydra.sweep.subdir=seed${seed}'
stamp "snapshot training"
$lock python -m mge.cli.train dataset="$dataset" data.root="$root" seed=0 callbacks=snapshots \
  optim.scheduler=cosine_restarts optim.cycle_epochs="$cycle" trainer.enable_progress_bar=false \
  hydra.run.dir="$out/snapshot-run"

base="$out/baselines"
stamp "noise matched to the MGE pool, gated by its discriminator"
$lock python -m mge.cli.baseline baseline=noise baseline.reference_pool="$mge_run/pool" baseline.max_rounds=50 \
  data_root="$root" hydra.run.dir="$base/noise_gated"
stamp "noise matched to the MGE pool, ungated"
$lock python -m mge.cli.baseline baseline=noise baseline.reference_pool="$mge_run/pool" baseline.gated=false \
  hydra.run.dir="$base/noise_ungated"
stamp "noise curve"
$lock python -m mge.cli.baseline baseline=noise_curve seed_model="$seed_run" hydra.run.dir="$base/noise_curve"
stamp "independent pool"
$lock python -m mge.cli.baseline baseline=independent seed_model="$seed_run" "baseline.runs=[$out/independent/seed*]" \
  hydra.run.dir="$base/independent"
stamp "snapshot pool"
$lock python -m mge.cli.baseline baseline=snapshot seed_model="$seed_run" baseline.run="$out/snapshot-run" \
  hydra.run.dir="$base/snapshot"

emge=()
if [ -n "$emge_run" ]; then emge=("pools.E-MGE=$emge_run/pool"); fi
for table in t1_accuracy t6_novelty; do
  stamp "$table"
  $lock python -m mge.cli.evaluate experiment="$table" mge_run="$mge_run" baselines="$base" data_root="$root" \
    "${emge[@]}" hydra.run.dir="$out/$table"
done
stamp "done"
