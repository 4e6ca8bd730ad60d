#!/usr/bin/env bash
# T4 few-shot transfer (docs/fewshot.md) on real MNIST and Fashion-MNIST, 5/5 class split:
# per dataset, K+1 class-split seeds trained on classes 0-4 with the dataset's full recipe
# (seed 0 is the seed; seeds 1..K form the independent pool), a 100-model MGE pool of seed 0, then
# the T4 multirun (conf/experiment/t4_fewshot.yaml: dataset x {1-shot, 5-shot}, both heads), ending
# with t4_fewshot.{md,csv,png} in outputs/t4_fewshot/multiruns/<time>/.
# Steps already done (a seed file, a pool's metrics.json, the independent pool) are skipped.
# Usage: bash experiments/t4_fewshot.sh [DATA_ROOT] [OUT] [K]   (defaults ../shared/data outputs/t4 4)
# LOCK="flock /work/cpu.lock" runs each heavy step under a machine lock; E-MGE: add
# EXTRA="pools.E-MGE=<folder>/\${t4.dataset}/emge/population" once evolved pools of the seeds exist.
set -euo pipefail
root="${1:-../shared/data}"
out="${2:-outputs/t4}"
k="${3:-4}"
lock=${LOCK:-}
for dataset in mnist fashion_mnist; do
  dir="$out/$dataset"
  for seed in $(seq 0 "$k"); do
    [ -f "$dir/seed$seed/seed.safetensors" ] && continue
    echo "== $dataset seed $seed (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    $lock python -m mge.cli.train dataset="$dataset" data.root="$root" 'data.classes=[0,1,2,3,4]' seed="$seed" \
      logger=none trainer.enable_progress_bar=false hydra.run.dir="$dir/seed$seed"
  done
  if [ ! -f "$dir/mge/metrics.json" ]; then
    echo "== $dataset MGE pool (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    $lock python -m mge.cli.generate seed_model="$dir/seed0" n=100 progress=false logger=none hydra.run.dir="$dir/mge"
  fi
  runs=$(seq -s, 1 "$k" | sed "s|\([0-9]*\)|$dir/seed\1|g")
  $lock python -m mge.cli.baseline baseline=independent seed_model="$dir/seed0" "baseline.runs=[$runs]" logger=none \
    pool_dir="$dir/independent" hydra.run.dir="$dir/independent-run"
done
echo "== T4 (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
# shellcheck disable=SC2086,SC2016
$lock python -m mge.cli.fewshot -m experiment=t4_fewshot "t4.dir=$out/\${t4.dataset}" ${EXTRA:-}
