#!/usr/bin/env bash
# The runs behind docs/evolution.md: for MNIST and Fashion-MNIST, E-MGE variants searched on held-out
# discriminator examples (test set unseen), then the chosen variant run again and evaluated on the
# test set, next to MGE and a Gaussian-noise curve. Starts from the artifacts' seeds and MGE pools.
# Usage: bash experiments/evolution_study.sh [ARTIFACTS] [DATA_ROOT] [DATASETS...] (run under flock /work/cpu.lock)
set -euo pipefail
artifacts="${1:-/work/artifacts}"
data="${2:-../shared/data}"
shift 2 || true
datasets=("${@:-mnist fashion_mnist}")
for dataset in ${datasets[@]}; do
  pool="$artifacts/$dataset/seed0-mge/pool"
  search="$artifacts/$dataset/emge-search"
  if [ ! -f "$search/search.json" ]; then
    echo "== $dataset search (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    python experiments/evolution_study.py search --pool "$pool" --out "$search" --data-root "$data"
  fi
  chosen=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['chosen'])" "$search/search.json")
  echo "== $dataset final: $chosen (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  rm -rf "$artifacts/$dataset/seed0-emge"
  python experiments/evolution_study.py final --pool "$pool" --out "$artifacts/$dataset/seed0-emge" \
    --data-root "$data" --variant "$chosen" --figure "docs/figures/emge_${dataset}_accuracy_vs_iou.png"
  echo "== $dataset done (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
done
