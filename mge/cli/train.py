"""``mge-train``: train one seed model with Lightning and save it for MGE.

Writes into the run folder: ``checkpoints/`` (Lightning, for resuming), ``seed.safetensors``
(weights + metadata, what ``mge-generate`` reads) and ``metrics.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from mge.cli.config import (
    CONF_DIR,
    ConfigError,
    build_callbacks,
    build_loggers,
    call_with_config,
    config_hash,
    job,
    log,
    to_plain,
    write_metrics,
)
from mge.data import build_datamodule
from mge.models.lightning_module import SeedClassifier
from mge.pool import SEED_FILENAME, SeedModel, save_seed


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit and test a seed; return ``(metrics, objects)`` without needing the CLI."""
    out = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # init, data order, augmentation
    datamodule = call_with_config(build_datamodule, cfg.data, "data")
    if "model" not in cfg or "arch" not in cfg.model:
        raise ConfigError("model.arch is missing: pick an architecture with model=<name> (conf/model/).")
    module = call_with_config(
        SeedClassifier,
        cfg.optim,
        "optim",
        arch=cfg.model.arch,
        arch_kwargs=to_plain(cfg.model.get("kwargs")) or {},
        num_classes=datamodule.num_classes,
        in_channels=datamodule.in_channels,
        image_size=datamodule.image_size,
    )
    loggers = build_loggers(cfg)
    try:
        trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=build_callbacks(cfg))
    except Exception as err:  # Hydra hides the cause of a failed instantiate (hydra #2099)
        raise ConfigError(f"trainer: could not build lightning.Trainer from {to_plain(cfg.trainer)}: {err}") from err
    for logger in loggers:
        logger.log_hyperparams(to_plain(cfg))

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    train_seconds = time.perf_counter() - start
    (test,) = trainer.test(module, datamodule=datamodule, verbose=False)

    metrics = {
        "test_accuracy": float(test["test/acc"]),
        "train_seconds": train_seconds,
        "epochs": trainer.current_epoch,
        "device": str(trainer.strategy.root_device),
        "dataset": cfg.data.name,
        "model": cfg.model.arch,
        "param_count": sum(p.numel() for p in module.model.parameters()),
        "seed": cfg.seed,
        "config_hash": config_hash(cfg),
    }
    seed_path = out / SEED_FILENAME
    if trainer.is_global_zero:
        data = to_plain(cfg.data)
        seed = SeedModel(
            arch=cfg.model.arch,
            arch_kwargs=to_plain(cfg.model.get("kwargs")) or {},
            num_classes=datamodule.num_classes,
            in_channels=datamodule.in_channels,
            image_size=datamodule.image_size,
            state_dict=module.model.state_dict(),
            meta={**metrics, "data": {**data, "root": str(Path(data["root"]).resolve())}},
        )
        save_seed(seed, seed_path)
    log.info(
        "seed test accuracy %.4f (%s on %s, %.1f s)",
        metrics["test_accuracy"],
        metrics["model"],
        metrics["dataset"],
        train_seconds,
    )
    return metrics, {"trainer": trainer, "module": module, "datamodule": datamodule, "seed_path": seed_path}


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    with job(cfg):
        metrics, objects = train(cfg)
        if objects["trainer"].is_global_zero:
            write_metrics(metrics, cfg.paths.output_dir)
        print(f"seed test accuracy: {metrics['test_accuracy']:.4f}")
        return metrics["test_accuracy"]


if __name__ == "__main__":
    main()
