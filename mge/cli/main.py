"""``mge``: the main job -- train the seed, generate a pool from it, evolve the pool, print the table.

With no arguments it runs on scikit-learn's bundled digits (no download).
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from mge.cli.config import CONF_DIR, finished_or_run, job, settings_from_config
from mge.cli.evolve import evolve, evolve_settings
from mge.cli.evolve import summary_rows as evolve_rows
from mge.cli.generate import generate, generate_settings
from mge.cli.generate import summary_rows as generate_rows
from mge.cli.objective import Objective
from mge.cli.train import train, train_settings
from mge.reporting import markdown_table
from mge.runs import FromPool


def run(cfg: DictConfig) -> dict[str, Any]:
    """The pipeline: train -> generate -> evolve; returns ``{"train", "generate", "evolve"}`` (metrics.json)."""
    # every stage's settings are checked before the seed trains, so a bad value fails in seconds
    settings_from_config(Objective, cfg.get("objective"), "objective")
    train_settings(cfg)
    generate_settings(cfg)
    evolve_settings(cfg)
    trained = train(cfg)
    generated = generate(cfg, trained.seed_path)
    evolved = evolve(cfg, FromPool(generated.pool_dir))
    per_model = generated.state.seconds_per_kept
    time = {  # table T2: one seed training and one generated model, measured in this same run
        "training_seconds": trained.train_seconds,
        "seconds_per_kept_model": per_model,
        "ratio_to_training_in_this_run": None if per_model is None else per_model / trained.train_seconds,
        "evolution_seconds": evolved.stage_seconds,
        "evolution_ratio_to_training_in_this_run": evolved.stage_seconds / trained.train_seconds,
    }
    return {"train": trained.to_dict(), "generate": generated.to_dict(), "evolve": evolved.to_dict(), "time": time}


def summary_table(metrics: dict[str, Any]) -> str:
    """The table ``mge`` prints: the MGE pool's rows, then the E-MGE population's."""
    return markdown_table(["metric", "value"], [*generate_rows(metrics["generate"]), *evolve_rows(metrics["evolve"])])


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="main")
def main(cfg: DictConfig) -> float | None:
    with job(cfg):
        metrics = finished_or_run(cfg, lambda: run(cfg))
        print(summary_table(metrics))
        print(f"run folder: {cfg.paths.output_dir}")
        return settings_from_config(Objective, cfg.get("objective"), "objective")(metrics)


if __name__ == "__main__":
    main()
