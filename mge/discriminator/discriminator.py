"""MGE's discriminator (spec section 2, step 6): is a candidate a plausible, working model?

It scores a batch of candidates on the two aspects the paper names and rejects non-finite ones:

1. parameter distribution -- per tensor, the 1-Wasserstein distance between the candidate's and
   the seed's empirical weight distributions, divided by the seed tensor's std; the worst tensor
   counts and must stay under ``max_distribution_distance``;
2. performance -- accuracy on the discriminator split (held out from training, never the test set)
   must reach ``seed accuracy - accuracy_tolerance``.

The tests run as a cascade: only candidates that are finite and pass the distribution test are
evaluated on data, which is where the time goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mge.evaluation import accuracy, predict_batched, stacked_size


@dataclass(frozen=True)
class DiscriminatorSettings:
    """Acceptance bounds of the discriminator."""

    max_distribution_distance: float = 0.1  # W1(candidate, seed) / std(seed), worst tensor
    accuracy_tolerance: float = 0.005  # delta: accept at >= seed accuracy - delta (fraction, not points)
    eval_batch_size: int = 1000  # examples per vectorised forward pass
    models_per_chunk: int = 64  # candidates per vectorised forward pass

    def __post_init__(self) -> None:
        if not self.max_distribution_distance > 0:
            raise ValueError(
                f"discriminator.max_distribution_distance must be > 0, got {self.max_distribution_distance}."
            )
        if not 0 <= self.accuracy_tolerance <= 1:
            raise ValueError(
                "discriminator.accuracy_tolerance is a fraction in [0, 1] (0.005 = half a point), "
                f"got {self.accuracy_tolerance}."
            )
        for key in ("eval_batch_size", "models_per_chunk"):
            if getattr(self, key) < 1:
                raise ValueError(f"discriminator.{key} must be >= 1, got {getattr(self, key)}.")


@dataclass(frozen=True)
class DiscriminatorScores:
    """Per-candidate scores; ``accuracy`` is NaN where the data test was skipped."""

    finite: Tensor  # (B,) bool
    distribution_distance: Tensor  # (B,) float, inf for non-finite candidates
    accuracy: Tensor  # (B,) float
    accepted: Tensor  # (B,) bool


def wasserstein_1(candidates: Tensor, reference_sorted: Tensor) -> Tensor:
    """W1 between each row of ``candidates`` (B, n) and one reference sample (n,), sorted.

    For two empirical distributions of equal size, W1 is the mean absolute difference of their
    order statistics.
    """
    return (candidates.sort(dim=-1).values - reference_sorted).abs().mean(dim=-1)


class Discriminator:
    """Scores candidates of one seed on its discriminator split."""

    def __init__(
        self,
        model: nn.Module,
        seed_params: Mapping[str, Tensor],
        inputs: Tensor,
        labels: Tensor,
        settings: DiscriminatorSettings = DiscriminatorSettings(),
    ) -> None:
        """
        Args:
            model: the seed's architecture, holding the seed's weights and buffers.
            seed_params: the seed's target tensors (the ones candidates replace).
            inputs: discriminator-split examples (N, ...), on the model's device.
            labels: their labels (N,).
            settings: acceptance bounds.
        """
        if inputs.shape[0] != labels.shape[0] or inputs.shape[0] == 0:
            raise ValueError(
                f"Discriminator split needs as many labels as inputs (> 0), got {inputs.shape[0]} "
                f"inputs and {labels.shape[0]} labels."
            )
        self.model = model.eval()
        self.inputs, self.labels = inputs, labels
        self.settings = settings
        self._seed_sorted = {k: v.detach().float().flatten().sort().values for k, v in seed_params.items()}
        # a constant seed tensor (e.g. a fresh norm bias) has std 0: measure it in absolute units
        self._seed_scale = {k: v.std(unbiased=False).clamp(min=1e-8) for k, v in self._seed_sorted.items()}
        seed_stacked = {k: v.detach().unsqueeze(0) for k, v in seed_params.items()}
        self.seed_accuracy = float(self._accuracy(seed_stacked)[0])

    @property
    def accuracy_bound(self) -> float:
        """Lowest discriminator-split accuracy a candidate may have."""
        return self.seed_accuracy - self.settings.accuracy_tolerance

    def _accuracy(self, params: Mapping[str, Tensor]) -> Tensor:
        preds = predict_batched(
            self.model,
            params,
            self.inputs,
            batch_size=self.settings.eval_batch_size,
            models_per_chunk=self.settings.models_per_chunk,
        )
        return accuracy(preds, self.labels)

    def distribution_distance(self, candidates: Mapping[str, Tensor]) -> Tensor:
        """Worst-tensor W1 / std(seed) per candidate (B,)."""
        per_tensor = [
            wasserstein_1(c.flatten(1).float(), self._seed_sorted[k]) / self._seed_scale[k]
            for k, c in candidates.items()
        ]
        return torch.stack(per_tensor).amax(dim=0)

    def score(self, candidates: Mapping[str, Tensor]) -> DiscriminatorScores:
        """Run the three tests on stacked candidates ``{name: (B, *shape)}``."""
        b = stacked_size(candidates)
        finite = torch.stack([c.flatten(1).isfinite().all(dim=1) for c in candidates.values()]).all(dim=0)
        distance = torch.full((b,), float("inf"), device=finite.device)
        if finite.any():
            distance[finite] = self.distribution_distance({k: c[finite] for k, c in candidates.items()})
        plausible = finite & (distance <= self.settings.max_distribution_distance)
        acc = torch.full((b,), float("nan"), device=finite.device)
        if plausible.any():
            acc[plausible] = self._accuracy({k: c[plausible] for k, c in candidates.items()})
        accepted = plausible & (acc >= self.accuracy_bound)
        return DiscriminatorScores(finite=finite, distribution_distance=distance, accuracy=acc, accepted=accepted)
