#!/usr/bin/env bash
# T5 on the pools of one dataset and training seed (docs/adversarial.md, "Commands"): the pools that
# experiments/t1_t6.sh (branch results) makes under RESULTS/<dataset>/seed<s> (mge/pool,
# baselines/noise_gated/pool, baselines/independent/pool, and emge/population where finished), one
# mge-attack job into OUT/seed<s>/<dataset>, with one intra-op thread, under $MGE_LOCK when set (e.g. MGE_LOCK="flock /tmp/cpu.lock")
# (experiments/t5_adversarial.sh says why). `python experiments/t5_seeds_report.py OUT` then
# aggregates the jobs over seeds. The job's sampling seed is the training seed.
# Usage: bash experiments/t5_seeds.sh DATASET SEED EXAMPLES RESULTS OUT DATA_ROOT [overrides, e.g. eps=[0.1]]
set -euo pipefail
d=$1 s=$2 n=$3 results=$4 out=$5 data=$6
shift 6
r="$results/$d/seed$s"
emge=null  # E-MGE (mge-evolve) where its population is finished when the job starts
if [ -f "$r/emge/metrics.json" ]; then emge="$r/emge/population"; fi
echo "== T5 $d seed $s, $n examples: start $(date +%T), load average $(cut -d' ' -f1-3 /proc/loadavg)"
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE ${MGE_LOCK:-} \
  python -m mge.cli.attack -m experiment=t5_adversarial artifacts="$r" \
  pools.MGE="$r/mge/pool" pools.E-MGE="$emge" pools.noise="$r/baselines/noise_gated/pool" \
  pools.independent="$r/baselines/independent/pool" data_root="$data" seed="$s" examples="$n" \
  hydra.sweep.dir="$out/seed$s" hydra.sweep.subdir="$d" "$@"
echo "== T5 $d seed $s done $(date +%T), load average $(cut -d' ' -f1-3 /proc/loadavg)"
