"""Seed training: one LightningModule for every architecture and dataset."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from mge.models.registry import build_model

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("cosine", "cosine_restarts", "none")


class SeedClassifier(L.LightningModule):
    """Trains a registry architecture with cross-entropy.

    Only plain values are saved as hyperparameters (not the ``nn.Module``, see Lightning #12068),
    so a checkpoint names the architecture and its kwargs and the seed can be rebuilt from it.
    """

    def __init__(
        self,
        *,
        arch: str,
        num_classes: int,
        in_channels: int,
        image_size: int,
        arch_kwargs: dict[str, Any] | None = None,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        scheduler: str = "cosine",
        cycle_epochs: int | None = None,
    ) -> None:
        """
        Args:
            scheduler: ``cosine`` anneals the learning rate to 0 over the run, once per epoch;
                ``cosine_restarts`` anneals it to 0 every ``cycle_epochs`` epochs, step by step,
                and restarts (SGDR, Loshchilov & Hutter 2017), so that each cycle ends in a
                minimum worth a snapshot (Huang et al. 2017, "Snapshot Ensembles"); ``none``
                keeps it constant.
            cycle_epochs: epochs per cycle of ``cosine_restarts`` (only with that scheduler).
        """
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optim.optimizer {optimizer!r}. Valid values are {list(OPTIMIZERS)}.")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"Unknown optim.scheduler {scheduler!r}. Valid values are {list(SCHEDULERS)}.")
        if scheduler == "cosine_restarts" and (
            isinstance(cycle_epochs, bool) or not isinstance(cycle_epochs, int) or cycle_epochs < 1
        ):
            raise ValueError(
                f"optim.scheduler=cosine_restarts needs optim.cycle_epochs, a whole number of epochs >= 1 per "
                f"cycle, got {cycle_epochs!r}. Set e.g. +optim.cycle_epochs=5."
            )
        if scheduler != "cosine_restarts" and cycle_epochs is not None:
            raise ValueError(
                f"optim.cycle_epochs={cycle_epochs} only applies to optim.scheduler=cosine_restarts, not "
                f"{scheduler!r}. Drop it or set optim.scheduler=cosine_restarts."
            )
        if lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {lr}.")
        if weight_decay < 0:
            raise ValueError(f"optim.weight_decay must be >= 0, got {weight_decay}.")
        arch_kwargs = dict(arch_kwargs or {})
        self.save_hyperparameters(
            {
                "arch": arch,
                "num_classes": num_classes,
                "in_channels": in_channels,
                "image_size": image_size,
                "arch_kwargs": arch_kwargs,
                "optimizer": optimizer,
                "lr": lr,
                "weight_decay": weight_decay,
                "momentum": momentum,
                "scheduler": scheduler,
                "cycle_epochs": cycle_epochs,
            }
        )
        self.model = build_model(
            arch, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **arch_kwargs
        )
        self.loss = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _step(self, batch: tuple[Tensor, Tensor], metric: MulticlassAccuracy, stage: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        metric(logits, y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=stage != "train")
        self.log(f"{stage}/acc", metric, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, self.train_acc, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        # the validation loader is the discriminator split: monitored, never used to select weights
        self._step(batch, self.val_acc, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, self.test_acc, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams  # an AttributeDict
        opt: torch.optim.Optimizer
        if hp["optimizer"] == "sgd":
            opt = torch.optim.SGD(
                self.parameters(), lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"], nesterov=True
            )
        else:
            cls = torch.optim.Adam if hp["optimizer"] == "adam" else torch.optim.AdamW
            opt = cls(self.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
        if hp["scheduler"] == "none":
            return opt
        if hp["scheduler"] == "cosine_restarts":
            max_epochs = self.trainer.max_epochs
            if max_epochs is None or max_epochs < 1:
                raise ValueError(
                    f"optim.scheduler=cosine_restarts needs trainer.max_epochs >= 1, got {max_epochs}: "
                    "cycles are counted in epochs."
                )
            steps_per_epoch = math.ceil(self.trainer.estimated_stepping_batches / max_epochs)
            restarts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                opt, T_0=hp["cycle_epochs"] * steps_per_epoch
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": restarts, "interval": "step"}}
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(self.trainer.max_epochs or 1, 1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
