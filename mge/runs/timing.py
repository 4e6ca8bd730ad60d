"""What "one seed training" costs on this machine, measured in the same run as what it is compared with.

A seed's recorded training time was taken whenever and however loaded its run was (85 s on a quiet
machine, 939 s on a busy one for the same MNIST recipe), so a ratio against it moves with the load.
Instead, training steps of the seed's architecture on the seed's own training loader are timed
during the run that is being measured: a few after every generation round, so that they share the
rounds' load (a single window of a few seconds catches whatever burst of load happens then: one
measured 61 s and another 1690 s for the same Fashion-MNIST recipe). Their mean time is extrapolated
to the recipe, ``seconds per step x steps per epoch x epochs``. Validation passes and Lightning's own
overhead are left out, so the estimate is a lower bound on a real training and the ratio errs high.
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


@dataclass(frozen=True)
class TrainingTimeReference:
    """Estimated wall-clock of one seed training, from steps timed in this run."""

    seconds: float
    seconds_per_step: float
    steps_timed: int
    steps_per_epoch: int
    epochs: int
    device: str
    kind: str = "training steps timed between the rounds of the same run"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cycle(loader: Iterable[Any]) -> Iterator[Any]:
    """The loader's batches, epoch after epoch (without caching them, unlike itertools.cycle)."""
    while True:
        yield from loader


class TrainingStepTimer:
    """Times forward + backward + Adam steps of a fresh copy of ``seed``'s architecture on its training loader.

    Call :meth:`step` between the pieces of work being measured, then :meth:`reference`. The global
    random state is left as it was at every call, so timing never changes a run's results.
    """

    def __init__(self, seed: SeedModel, datamodule: ClassificationDataModule, device: torch.device) -> None:
        self.device = device
        self.steps_per_epoch = len(datamodule.train_dataloader())
        with self._own_rng():
            self.model = seed.build_empty().to(device).train()
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
            self.batches = _cycle(datamodule.train_dataloader())
            self.loss = nn.CrossEntropyLoss()
            for _ in range(WARMUP_STEPS):
                self._train_step()
        self.steps, self.seconds = 0, 0.0

    def _own_rng(self) -> Any:
        return torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else [])

    def _train_step(self) -> None:
        x, y = next(self.batches)
        self.optimizer.zero_grad(set_to_none=True)
        self.loss(self.model(x.to(self.device)), y.to(self.device)).backward()
        self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def step(self, n: int = 1) -> None:
        """Time ``n`` more training steps."""
        with self._own_rng():
            for _ in range(n):
                start = time.perf_counter()
                self._train_step()
                self.seconds += time.perf_counter() - start
                self.steps += 1

    def reference(self, epochs: int, *, min_steps: int = 5) -> TrainingTimeReference:
        """The training time of ``epochs`` epochs, from the steps timed so far (topped up to ``min_steps``)."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}.")
        self.step(max(0, min_steps - self.steps))
        per_step = self.seconds / self.steps
        return TrainingTimeReference(
            seconds=per_step * self.steps_per_epoch * epochs,
            seconds_per_step=per_step,
            steps_timed=self.steps,
            steps_per_epoch=self.steps_per_epoch,
            epochs=epochs,
            device=str(self.device),
        )
