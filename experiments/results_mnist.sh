#!/usr/bin/env bash
# The runs behind docs/results.md: seed training + a 100-model MGE pool on real MNIST and
# Fashion-MNIST, one `mge` job each (train and generate timed in the same run, same device).
# Usage: bash experiments/results_mnist.sh [DATA_ROOT]   (default ../shared/data)
set -euo pipefail
root="${1:-../shared/data}"
for dataset in mnist fashion_mnist; do
  rm -rf "outputs/results/$dataset"
  echo "== $dataset (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  mge dataset="$dataset" data.root="$root" n=100 progress=false trainer.enable_progress_bar=false \
    hydra.run.dir="outputs/results/$dataset"
  echo "== $dataset done (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
done
