"""``mge-train``: train one seed model with Lightning and save it for MGE.

Writes into the run folder: ``checkpoints/`` (Lightning, for resuming), ``seed.safetensors``
(weights + metadata, what ``mge-generate`` reads) and ``metrics.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from mge.cli.config import (
    CONF_DIR,
    ConfigError,
    build_callbacks,
    build_loggers,
    job,
    settings_from_config,
    to_plain,
    write_metrics,
)
from mge.cli.reuse import reused_metrics, stage_hash
from mge.models import list_models
from mge.runs import OptimSettings, TrainReport, TrainSettings, train_seed

log = logging.getLogger("mge")


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
        config_hash=stage_hash(cfg),
    )


def build_trainer(cfg: DictConfig, loggers: list) -> L.Trainer:
    """The Lightning trainer of ``cfg.trainer``, with the run's loggers and callbacks."""
    try:
        return instantiate(cfg.trainer, logger=loggers or False, callbacks=build_callbacks(cfg))
    except Exception as err:  # Hydra hides the cause of a failed instantiate (hydra #2099)
        cause = err.__cause__ or err
        raise ConfigError(f"trainer: could not build lightning.Trainer: {cause}") from err


def train(cfg: DictConfig) -> TrainReport:
    """Validate ``cfg``, build the trainer and loggers, and run :func:`mge.runs.train_seed`.

    With ``reuse=true``, a run folder that holds the finished training of this config is not trained
    again: its recorded report is returned (``mge-train -m seed=1,2,3 reuse=true`` with fixed folders
    only trains the seeds that are missing).
    """
    settings = train_settings(cfg)
    done = reused_metrics(cfg)
    if done is not None:
        log.info("reusing the finished run in %s (same config_hash %s)", cfg.paths.output_dir, settings.config_hash)
        return TrainReport.from_dict(done)
    loggers = build_loggers(cfg)
    trainer = build_trainer(cfg, loggers)
    for logger in loggers:
        logger.log_hyperparams(to_plain(cfg))
    return train_seed(settings, trainer)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    with job(cfg):
        report = train(cfg)
        if rank_zero_only.rank == 0:  # type: ignore[attr-defined]  # one metrics.json per run, also under DDP
            write_metrics(report.to_dict(), cfg.paths.output_dir)
            print(f"seed test accuracy: {report.test_accuracy:.4f}")
            print(f"run folder: {cfg.paths.output_dir}")
        return report.test_accuracy


if __name__ == "__main__":
    main()
