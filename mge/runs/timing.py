"""What "one seed training" costs on this machine, measured in the same run as what it is compared with.

A seed's recorded training time was taken whenever and however loaded its run was (85 s on a quiet
machine, 939 s on a busy one for the same MNIST recipe), so a ratio against it moves with the load.
Instead, a few training steps of the seed's architecture on the seed's own training loader are
timed right after generation, under the same load, and extrapolated to the recipe's steps:
``seconds per step x steps per epoch x epochs``. Validation passes and Lightning's own overhead are
left out, so the estimate is a lower bound on a real training and the ratio errs high.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from mge.data import ClassificationDataModule
from mge.pool import SeedModel

WARMUP_STEPS = 2  # untimed: first-call allocations and kernel selection


def _cycle(loader: Iterable[Any]) -> Iterator[Any]:
    """The loader's batches, epoch after epoch (without caching them, unlike itertools.cycle)."""
    while True:
        yield from loader


@dataclass(frozen=True)
class TrainingTimeReference:
    """Estimated wall-clock of one seed training, from steps timed in this run."""

    seconds: float
    seconds_per_step: float
    steps_timed: int
    steps_per_epoch: int
    epochs: int
    device: str
    kind: str = "training steps timed in the same run"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_training_time(
    seed: SeedModel,
    datamodule: ClassificationDataModule,
    *,
    epochs: int,
    device: torch.device,
    budget_seconds: float = 2.0,
    min_steps: int = 5,
) -> TrainingTimeReference:
    """Time forward + backward + Adam steps of a fresh copy of ``seed``'s architecture on its training loader.

    Runs at least ``min_steps`` timed steps and until ``budget_seconds`` have passed; leaves the global
    random state as it found it.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    loader = datamodule.train_dataloader()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = seed.build_empty().to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()

        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x.to(device)), y.to(device)).backward()
            optimizer.step()

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        batches = _cycle(loader)
        for _ in range(WARMUP_STEPS):
            step(*next(batches))
        sync()
        start, steps, elapsed = time.perf_counter(), 0, 0.0
        while steps < min_steps or elapsed < budget_seconds:
            step(*next(batches))
            sync()
            steps, elapsed = steps + 1, time.perf_counter() - start
    per_step = elapsed / steps
    return TrainingTimeReference(
        seconds=per_step * len(loader) * epochs,
        seconds_per_step=per_step,
        steps_timed=steps,
        steps_per_epoch=len(loader),
        epochs=epochs,
        device=str(device),
    )
