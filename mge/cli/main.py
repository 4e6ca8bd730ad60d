"""``mge``: the main job -- train the seed, generate a pool from it, print the table.

With no arguments it runs on scikit-learn's bundled digits (no download). Later stages
(evolution, evaluation, reports) extend this same command.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from mge.cli.config import CONF_DIR, job, settings_from_config, write_metrics
from mge.cli.generate import generate_pool, pool_mean_accuracy, summary_table
from mge.cli.train import train
from mge.discriminator import DiscriminatorSettings
from mge.generator import GeneratorSettings


def run(cfg: DictConfig) -> dict[str, Any]:
    """The pipeline: train -> generate -> report; returns the combined metrics."""
    # a bad generator or discriminator value fails now, not after the seed has trained
    settings_from_config(GeneratorSettings, cfg.generator, "generator")
    settings_from_config(DiscriminatorSettings, cfg.discriminator, "discriminator")
    train_metrics, objects = train(cfg)
    pool_metrics, _ = generate_pool(cfg, objects["seed_path"])
    metrics = {"train": train_metrics, "generate": pool_metrics}
    write_metrics(metrics, cfg.paths.output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="main")
def main(cfg: DictConfig) -> float:
    with job(cfg):
        metrics = run(cfg)
        print(summary_table(metrics["generate"]))
        return pool_mean_accuracy(metrics["generate"])


if __name__ == "__main__":
    main()
