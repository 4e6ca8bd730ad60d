"""``mge-train``: train one seed model with Lightning and save it for MGE.

Writes into the run folder: ``checkpoints/`` (Lightning, for resuming), ``seed.safetensors``
(weights + metadata, what ``mge-generate`` reads) and ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from mge.cli.config import (
    CONF_DIR,
    ConfigError,
    build_callbacks,
    config_hash,
    finished_or_run,
    in_multirun,
    job,
    settings_from_config,
    to_plain,
)
from mge.cli.loggers import close_stage, stage_loggers
from mge.cli.progress import StderrProgressBar
from mge.models import list_models
from mge.runs import OptimSettings, TrainReport, TrainSettings, train_seed


def train_settings(cfg: DictConfig) -> TrainSettings:
    """The typed settings of ``cfg``'s training stage, each value checked against its config key."""
    if "model" not in cfg or not cfg.model.get("arch"):
        raise ConfigError("model.arch is missing: pick an architecture with model=<name> (conf/model/).")
    if cfg.model.arch not in list_models():
        raise ConfigError(f"model.arch: unknown architecture {cfg.model.arch!r}. Valid values are {list_models()}.")
    ckpt_path = cfg.get("ckpt_path")
    return TrainSettings(
        data=to_plain(cfg.data),
        arch=cfg.model.arch,
        arch_kwargs=to_plain(cfg.model.get("kwargs")) or {},
        optim=settings_from_config(OptimSettings, cfg.optim, "optim"),
        seed=cfg.seed,
        output_dir=Path(cfg.paths.output_dir),
        ckpt_path=None if ckpt_path is None else Path(ckpt_path),
        config_hash=config_hash(cfg),
    )


def build_trainer(cfg: DictConfig, loggers: list) -> L.Trainer:
    """The Lightning trainer of ``cfg.trainer``, with the run's loggers and callbacks.

    The progress bar goes to stderr and is off inside multirun jobs (their bars would interleave);
    without a ModelCheckpoint callback (``callbacks=none``) no checkpoint is written at all.
    """
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} needs a CUDA GPU and none is visible; use trainer=cpu (the default) "
            "or run on a machine with a GPU."
        )
    callbacks = build_callbacks(cfg)
    overrides: dict[str, Any] = {}
    if cfg.trainer.get("enable_progress_bar", True) and not in_multirun():
        callbacks.append(StderrProgressBar())
    else:
        overrides["enable_progress_bar"] = False
    if not any(isinstance(c, ModelCheckpoint) for c in callbacks):
        overrides["enable_checkpointing"] = False
    try:
        return instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, **overrides)
    except Exception as err:  # Hydra hides the cause of a failed instantiate (hydra #2099)
        cause = err.__cause__ or err
        raise ConfigError(f"trainer: could not build lightning.Trainer: {cause}") from err


def train(cfg: DictConfig) -> TrainReport:
    """Validate ``cfg``, build the trainer and loggers, and run :func:`mge.runs.train_seed`."""
    settings = train_settings(cfg)
    loggers = stage_loggers(cfg, "train")
    report = train_seed(settings, build_trainer(cfg, loggers))
    close_stage(loggers, "train", report.to_dict())
    return report


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    with job(cfg):
        if rank_zero_only.rank != 0:  # type: ignore[attr-defined]  # DDP: the other ranks train, rank 0 reports
            return train(cfg).test_accuracy
        metrics = finished_or_run(cfg, lambda: {"train": train(cfg).to_dict()})  # the layout mge writes too
        print(f"seed test accuracy: {metrics['train']['test_accuracy']:.4f}")
        print(f"run folder: {cfg.paths.output_dir}")
        return float(metrics["train"]["test_accuracy"])


if __name__ == "__main__":
    main()
