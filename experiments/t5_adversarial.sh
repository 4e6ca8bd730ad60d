#!/usr/bin/env bash
# T5 adversarial transfer and pool defence on MNIST and Fashion-MNIST (docs/adversarial.md): one Hydra
# multirun over the datasets' pool folders (conf/experiment/t5_adversarial.yaml), holding the machine
# lock given as $MGE_LOCK (e.g. MGE_LOCK="flock /tmp/cpu.lock"), ending with t5_adversarial.{md,csv,png} in the sweep folder.
# One intra-op thread: on the 2 shared cores two threads ran the attacks 9x slower (docs/adversarial.md).
# Usage: bash experiments/t5_adversarial.sh [ARTIFACTS] [more overrides, e.g. pools.E-MGE=null]
set -euo pipefail
artifacts="${1:-/work/artifacts}"
shift $(( $# > 0 ? 1 : 0 ))
sweep="outputs/t5_adversarial/$(date +%Y-%m-%d_%H-%M-%S)"
echo "== T5 into $sweep (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
OMP_NUM_THREADS=1 ${MGE_LOCK:-} python -m mge.cli.attack -m \
  experiment=t5_adversarial artifacts="$artifacts/mnist,$artifacts/fashion_mnist" hydra.sweep.dir="$sweep" "$@"
echo "== T5 done (load average after: $(cut -d' ' -f1-3 /proc/loadavg))"
