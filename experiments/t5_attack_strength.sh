#!/usr/bin/env bash
# Is T5's attack strong enough? The same pools, examples and eps attacked with T5's budget (PGD 40
# steps, 1 start) and with a 12.5x larger one (100 steps, 5 random starts, worst case kept); if the
# defences' worst-case accuracies barely move, the T5 figures are not an artefact of a weak attack
# (docs/adversarial.md). Each dataset's MGE pool at T5's size (5 members), 100 examples, the eps
# where the seed's white-box accuracy is mid-range.
# Usage: bash experiments/t5_attack_strength.sh [ARTIFACTS] [more overrides, e.g. +pools.other=<folder>]
set -euo pipefail
artifacts="${1:-/work/artifacts}"
shift $(( $# > 0 ? 1 : 0 ))
out="outputs/t5_attack_strength/$(date +%Y-%m-%d_%H-%M-%S)"
for dataset_eps in mnist:0.1 fashion_mnist:0.05; do
  dataset="${dataset_eps%%:*}"
  eps="${dataset_eps#*:}"
  for budget in "steps=40 restarts=1" "steps=100 restarts=5"; do
    name="$dataset/$(echo "$budget" | tr ' =' '_-')"
    echo "== $name (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    # shellcheck disable=SC2086  # $budget is two overrides
    OMP_NUM_THREADS=1 ${MGE_LOCK:-} python -m mge.cli.attack \
      pools.MGE="$artifacts/$dataset/seed0-mge/pool" members=5 matrix_members=5 examples=100 "eps=[$eps]" $budget \
      hydra.run.dir="$out/$name" "$@"
    echo "== $name done (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
  done
done
