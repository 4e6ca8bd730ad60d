#!/usr/bin/env bash
# T3 threshold ablation on the MNIST and Fashion-MNIST seeds of experiments/results_mnist.sh:
# one Hydra multirun over t (conf/experiment/t3_threshold.yaml) and both seeds, ending with
# t3_threshold.{md,csv,png} in outputs/t3_threshold/multiruns/<time>/.
# Usage: bash experiments/t3_threshold.sh   (after bash experiments/results_mnist.sh)
set -euo pipefail
mge-generate -m experiment=t3_threshold seed_model=outputs/results/mnist,outputs/results/fashion_mnist
