"""The training stage: fit and test one seed with Lightning, and save it for MGE."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

from mge.data import build_datamodule
from mge.errors import CheckpointError
from mge.models.lightning_module import SeedClassifier
from mge.pool import SEED_FILENAME, SeedModel, save_seed

log = logging.getLogger("mge")


@dataclass(frozen=True)
class OptimSettings:
    """The optimiser recipe (``conf/dataset/*.yaml: optim``); SeedClassifier checks the values."""

    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    scheduler: str = "cosine"  # cosine | cosine_restarts | none
    cycle_epochs: int | None = None  # epochs per warm-restart cycle (cosine_restarts only)


@dataclass(frozen=True)
class TrainSettings:
    """Everything :func:`train_seed` needs besides the Lightning trainer."""

    data: Mapping[str, Any]  # build_datamodule arguments, "name" included
    arch: str
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    optim: OptimSettings = field(default_factory=OptimSettings)
    seed: int = 0  # fixes weight initialisation and data order
    output_dir: Path = Path(".")
    ckpt_path: Path | None = None  # resume an interrupted run from its last.ckpt
    config_hash: str = ""  # of the config that decides the result, recorded with the seed


@dataclass(frozen=True)
class TrainReport:
    """What a training run produced; :meth:`to_dict` is its ``metrics.json``."""

    test_accuracy: float
    train_seconds: float
    epochs: int
    device: str
    dataset: str
    model: str
    param_count: int
    seed: int
    config_hash: str
    seed_path: Path

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seed_path": str(self.seed_path)}


def check_resume_checkpoint(path: Path) -> None:
    """Refuse a ``ckpt_path`` that is missing, truncated or not a Lightning checkpoint, with one clear line.

    The file is loaded with ``weights_only=True`` (no code runs); Lightning loads it again to resume.
    """
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path {path} does not exist; give the checkpoints/last.ckpt of a run to resume.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or refused pickles
        raise CheckpointError(
            f"ckpt_path {path} cannot be resumed from ({type(err).__name__}: {str(err).splitlines()[0]}). It is "
            "truncated, not a Lightning checkpoint, or holds objects a weights-only load refuses; resume only from "
            "the checkpoints/last.ckpt that mge-train wrote."
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "epoch" not in ckpt:
        raise CheckpointError(f"ckpt_path {path} is not a Lightning training checkpoint (no state_dict or epoch).")


def train_seed(settings: TrainSettings, trainer: L.Trainer) -> TrainReport:
    """Fit and test a seed with ``trainer``; save ``seed.safetensors`` (weights + metadata) into the output folder."""
    if settings.ckpt_path is not None:
        check_resume_checkpoint(Path(settings.ckpt_path))
    L.seed_everything(settings.seed, workers=True, verbose=False)  # init, data order, augmentation
    datamodule = build_datamodule(**settings.data)
    module = SeedClassifier(
        arch=settings.arch,
        arch_kwargs=dict(settings.arch_kwargs),
        num_classes=datamodule.num_classes,
        in_channels=datamodule.in_channels,
        image_size=datamodule.image_size,
        **asdict(settings.optim),
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=settings.ckpt_path)
    train_seconds = time.perf_counter() - start
    (test,) = trainer.test(module, datamodule=datamodule, verbose=False)

    report = TrainReport(
        test_accuracy=float(test["test/acc"]),
        train_seconds=train_seconds,
        epochs=trainer.current_epoch,
        device=str(trainer.strategy.root_device),
        dataset=datamodule.name,
        model=settings.arch,
        param_count=sum(p.numel() for p in module.model.parameters()),
        seed=settings.seed,
        config_hash=settings.config_hash,
        seed_path=Path(settings.output_dir) / SEED_FILENAME,
    )
    if trainer.is_global_zero:
        data = dict(settings.data)
        metrics = {k: v for k, v in report.to_dict().items() if k != "seed_path"}
        seed = SeedModel(
            arch=settings.arch,
            arch_kwargs=dict(settings.arch_kwargs),
            num_classes=datamodule.num_classes,
            in_channels=datamodule.in_channels,
            image_size=datamodule.image_size,
            state_dict=module.model.state_dict(),
            meta={**metrics, "data": {**data, "root": str(Path(data["root"]).resolve())}},
        )
        save_seed(seed, report.seed_path)
    log.info(
        "seed test accuracy %.4f (%s on %s, %.1f s)", report.test_accuracy, report.model, report.dataset, train_seconds
    )
    return report
