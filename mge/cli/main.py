"""``mge``: the main job -- train the seed, generate a pool from it, print the table.

With no arguments it runs on scikit-learn's bundled digits (no download).
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from mge.cli.config import CONF_DIR, job, settings_from_config, write_metrics
from mge.cli.generate import generate, generate_settings, summary_table
from mge.cli.objective import Objective
from mge.cli.train import train, train_settings


def run(cfg: DictConfig) -> dict[str, Any]:
    """The pipeline: train -> generate; returns ``{"train": ..., "generate": ...}`` as written to metrics.json."""
    # every stage's settings are checked before the seed trains, so a bad value fails in seconds
    settings_from_config(Objective, cfg.get("objective"), "objective")
    train_settings(cfg)
    generate_settings(cfg)
    trained = train(cfg)
    generated = generate(cfg, trained.seed_path)
    metrics = {"train": trained.to_dict(), "generate": generated.to_dict()}
    write_metrics(metrics, cfg.paths.output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="main")
def main(cfg: DictConfig) -> float | None:
    with job(cfg):
        metrics = run(cfg)
        print(summary_table(metrics["generate"]))
        print(f"run folder: {cfg.paths.output_dir}")
        return settings_from_config(Objective, cfg.get("objective"), "objective")(metrics)


if __name__ == "__main__":
    main()
