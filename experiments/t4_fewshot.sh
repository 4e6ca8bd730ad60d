#!/usr/bin/env bash
# T4 few-shot transfer (docs/fewshot.md) on real MNIST and Fashion-MNIST, 5/5 class split:
# per dataset, K+1 class-split seeds trained on classes 0-4 with the dataset's full recipe
# (seed 0 is the seed; seeds 1..K form the independent pool), a 100-model MGE pool of seed 0, then
# the T4 multirun (conf/experiment/t4_fewshot.yaml: dataset x {1-shot, 5-shot}, both heads), ending
# with t4_fewshot.{md,csv,png} in outputs/t4_fewshot/multiruns/<time>/.
# Steps already done (a seed file, a pool's metrics.json, the independent pool) are skipped.
# Usage: bash experiments/t4_fewshot.sh [DATA_ROOT] [OUT] [K] [REF]   (defaults ../shared/data outputs/t4 4 0)
# REF picks the reference seed (the "seed" row, the base of the MGE and independent pools; the other
# seeds of 0..K form the independent pool): REF=0 keeps the pools in OUT/<dataset>, another REF puts
# them in OUT/<dataset>/ref<REF>, so that T4 can be repeated over reference seeds on the same seeds.
# LOCK="flock /work/cpu.lock" runs each heavy step under a machine lock. E-MGE: EVOLVE="<overrides>"
# (e.g. EVOLVE="evolution/fitness=sharing evolution.diversity_weight=4", the evolution study's choice)
# evolves each MGE pool into <pools>/emge and adds pools.E-MGE=<pools>/emge/population to the sweep.
# EXTRA="<overrides>" is passed to the sweep (e.g. hydra.sweep.dir=...).
set -euo pipefail
root="${1:-../shared/data}"
out="${2:-outputs/t4}"
k="${3:-4}"
ref="${4:-0}"
lock=${LOCK:-}
for dataset in mnist fashion_mnist; do
  dir="$out/$dataset"
  pools="$dir"
  [ "$ref" = 0 ] || pools="$dir/ref$ref"
  for seed in $(seq 0 "$k"); do
    [ -f "$dir/seed$seed/seed.safetensors" ] && continue
    echo "== $(date +%T) $dataset seed $seed (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    $lock python -m mge.cli.train dataset="$dataset" data.root="$root" 'data.classes=[0,1,2,3,4]' seed="$seed" \
      logger=none trainer.enable_progress_bar=false hydra.run.dir="$dir/seed$seed"
  done
  if [ ! -f "$pools/mge/metrics.json" ]; then
    echo "== $(date +%T) $dataset MGE pool of seed $ref (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    $lock python -m mge.cli.generate seed_model="$dir/seed$ref" n=100 progress=false logger=none hydra.run.dir="$pools/mge"
  fi
  runs=$(seq 0 "$k" | grep -vx "$ref" | sed "s|^|$dir/seed|" | paste -sd,)
  echo "== $(date +%T) $dataset independent pool (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  $lock python -m mge.cli.baseline baseline=independent seed_model="$dir/seed$ref" "baseline.runs=[$runs]" \
    pool_dir="$pools/independent" hydra.run.dir="$pools/independent-run"
  if [ -n "${EVOLVE:-}" ]; then
    echo "== $(date +%T) $dataset E-MGE of the MGE pool (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    # shellcheck disable=SC2086
    $lock python -m mge.cli.evolve pool="$pools/mge/pool" $EVOLVE progress=false logger=none hydra.run.dir="$pools/emge"
  fi
done
sub=""
[ "$ref" = 0 ] || sub="/ref$ref"
emge=""
# shellcheck disable=SC2016
[ -z "${EVOLVE:-}" ] || emge='pools.E-MGE=${t4.dir}/emge/population'
echo "== $(date +%T) T4 (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
# shellcheck disable=SC2086,SC2016
$lock python -m mge.cli.fewshot -m experiment=t4_fewshot "t4.dir=$out/\${t4.dataset}$sub" $emge ${EXTRA:-}
echo "== $(date +%T) done (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
