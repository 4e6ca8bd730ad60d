"""MGE's discriminator (spec section 2, step 6): is a candidate a plausible, working model?

It scores a batch of candidates on the two aspects the paper names and rejects non-finite ones:

1. parameter distribution -- per tensor, the 1-Wasserstein distance between the candidate's and
   the seed's empirical weight distributions, divided by the seed tensor's std; the worst tensor
   counts and must stay under ``max_distribution_distance``;
2. performance -- accuracy on the discriminator split (held out from training, never the test set)
   must reach ``seed accuracy - accuracy_tolerance``.

The tests run as a cascade: only candidates that are finite and pass the distribution test are
evaluated on data, which is where the time goes. That evaluation stops early, exactly: examples
are scored in chunks, and a candidate leaves as soon as its verdict is decided -- it has made so
many mistakes that it can no longer reach the bound, or so few that it can no longer miss it. The
accept/reject decisions are those of scoring every example. Chunks start with the examples the
seed is least sure of (smallest margin), where candidates make their mistakes, so that failing
candidates are rejected after a fraction of the split. With ``exact_accepted`` only rejections stop
early: every accepted candidate is scored on the whole split, so its accuracy and its predictions
(``DiscriminatorScores.predictions``) are exact -- what E-MGE needs for its fitness, without running
the accepted children over the split a second time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mge.evaluation import batched_logits, predict_batched, stacked_size


@dataclass(frozen=True)
class DiscriminatorSettings:
    """Acceptance bounds of the discriminator."""

    max_distribution_distance: float = 0.1  # W1(candidate, seed) / std(seed), worst tensor
    accuracy_tolerance: float = 0.005  # delta: accept at >= seed accuracy - delta (fraction, not points)
    early_stop: bool = True  # stop scoring a candidate once its verdict is decided (same verdicts, less time)
    decision_chunk: int = 250  # examples scored between two early-stopping checks
    eval_batch_size: int = 1000  # examples per vectorised forward pass
    models_per_chunk: int = 64  # candidates per vectorised forward pass

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_distribution_distance) and self.max_distribution_distance > 0):
            raise ValueError(
                f"max_distribution_distance must be a finite number > 0, got {self.max_distribution_distance}."
            )
        if not (math.isfinite(self.accuracy_tolerance) and 0 <= self.accuracy_tolerance <= 1):
            raise ValueError(
                f"accuracy_tolerance is a fraction in [0, 1] (0.005 = half a point), got {self.accuracy_tolerance}."
            )
        for key in ("decision_chunk", "eval_batch_size", "models_per_chunk"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}.")


@dataclass(frozen=True)
class DiscriminatorScores:
    """Per-candidate scores and the test that decided each verdict."""

    finite: Tensor  # (B,) bool
    distribution_distance: Tensor  # (B,) float, inf for non-finite candidates
    passed_distribution: Tensor  # (B,) bool: finite and within the distance bound
    accuracy: Tensor  # (B,) float: exact where the whole split was scored, else NaN
    examples_scored: Tensor  # (B,) int: discriminator examples each candidate was scored on (0: not scored)
    accepted: Tensor  # (B,) bool
    # (B, N) long: predictions on ``Discriminator.inputs`` (hardest first) up to examples_scored, -1 after
    predictions: Tensor

    @property
    def rejected_non_finite(self) -> Tensor:
        return ~self.finite

    @property
    def rejected_distribution(self) -> Tensor:
        return self.finite & ~self.passed_distribution

    @property
    def rejected_accuracy(self) -> Tensor:
        return self.passed_distribution & ~self.accepted


def wasserstein_1(candidates: Tensor, reference_sorted: Tensor) -> Tensor:
    """W1 between each row of ``candidates`` (B, n) and one reference sample (n,), sorted.

    For two empirical distributions of equal size, W1 is the mean absolute difference of their
    order statistics.
    """
    return (candidates.sort(dim=-1).values - reference_sorted).abs().mean(dim=-1)


def min_correct(n: int, bound: float) -> int:
    """Fewest correct answers out of ``n`` whose accuracy reaches ``bound``, as the tensor comparison decides it.

    Early stopping compares counts against this, so its verdicts are bit for bit those of comparing
    ``(predictions == labels).float().mean() >= bound`` (a float32 mean against a float32-rounded
    bound). ``n + 1`` if no count reaches it.
    """
    start = max(0, math.floor(bound * n) - 2)
    for correct in range(start, n + 1):
        hits = torch.zeros(n)
        hits[:correct] = 1.0
        if bool(hits.mean() >= bound):
            return correct
    return n + 1


class Discriminator:
    """Scores candidates of one seed on its discriminator split."""

    def __init__(
        self,
        model: nn.Module,
        seed_params: Mapping[str, Tensor],
        inputs: Tensor,
        labels: Tensor,
        settings: DiscriminatorSettings | None = None,
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
        self.settings = settings or DiscriminatorSettings()
        self._seed_sorted = {k: v.detach().float().flatten().sort().values for k, v in seed_params.items()}
        # a constant seed tensor (e.g. a fresh norm bias) has std 0: measure it in absolute units
        self._seed_scale = {k: v.std(unbiased=False).clamp(min=1e-8) for k, v in self._seed_sorted.items()}
        seed_stacked = {k: v.detach().unsqueeze(0) for k, v in seed_params.items()}
        with torch.no_grad():
            logits = batched_logits(self.model, seed_stacked, inputs, batch_size=self.settings.eval_batch_size)[0]
        self.seed_accuracy = float((logits.argmax(dim=-1) == labels).float().mean())
        # hardest first: the seed's margin of the true class over the best other class, ascending
        true = logits.gather(1, labels[:, None]).squeeze(1)
        others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
        order = torch.sort(true - others, stable=True).indices
        self.inputs, self.labels = inputs[order], labels[order]
        self.min_correct = min_correct(len(labels), self.accuracy_bound)

    @property
    def accuracy_bound(self) -> float:
        """Lowest discriminator-split accuracy a candidate may have."""
        return self.seed_accuracy - self.settings.accuracy_tolerance

    def distribution_distance(self, candidates: Mapping[str, Tensor]) -> Tensor:
        """Worst-tensor W1 / std(seed) per candidate (B,)."""
        per_tensor = [
            wasserstein_1(c.flatten(1).float(), self._seed_sorted[k]) / self._seed_scale[k]
            for k, c in candidates.items()
        ]
        return torch.stack(per_tensor).amax(dim=0)

    def _count_correct(self, candidates: Mapping[str, Tensor], exact_accepted: bool) -> tuple[Tensor, Tensor, Tensor]:
        """``(correct, scored, predictions)`` per candidate, stopping each as soon as its verdict is decided
        (with ``exact_accepted``, only once it is rejected)."""
        b, n = stacked_size(candidates), len(self.labels)
        device = self.labels.device
        correct = torch.zeros(b, dtype=torch.long, device=device)
        scored = torch.zeros(b, dtype=torch.long, device=device)
        predictions = torch.full((b, n), -1, dtype=torch.long, device=device)
        undecided = torch.ones(b, dtype=torch.bool, device=device)
        chunk = self.settings.decision_chunk if self.settings.early_stop else n
        for start in range(0, n, chunk):
            idx = undecided.nonzero().flatten()
            if len(idx) == 0:
                break
            end = min(start + chunk, n)
            preds = predict_batched(
                self.model,
                {k: v[idx] for k, v in candidates.items()},
                self.inputs[start:end],
                batch_size=self.settings.eval_batch_size,
                models_per_chunk=self.settings.models_per_chunk,
            )
            correct[idx] += (preds == self.labels[start:end]).sum(dim=1)
            scored[idx] = end
            predictions[idx, start:end] = preds
            remaining = n - end
            decided = correct + remaining < self.min_correct  # rejected whatever the rest gives
            if not exact_accepted:
                decided |= correct >= self.min_correct  # accepted whatever the rest gives
            undecided &= ~decided
        return correct, scored, predictions

    def score(self, candidates: Mapping[str, Tensor], *, exact_accepted: bool = False) -> DiscriminatorScores:
        """Run the three tests on stacked candidates ``{name: (B, *shape)}``.

        Args:
            candidates: stacked target tensors.
            exact_accepted: score every accepted candidate on the whole split (exact accuracy and
                predictions); the verdicts are the same either way.
        """
        b = stacked_size(candidates)
        finite = torch.stack([c.flatten(1).isfinite().all(dim=1) for c in candidates.values()]).all(dim=0)
        distance = torch.full((b,), float("inf"), device=finite.device)
        if finite.any():
            distance[finite] = self.distribution_distance({k: c[finite] for k, c in candidates.items()})
        plausible = finite & (distance <= self.settings.max_distribution_distance)
        n = len(self.labels)
        correct = torch.zeros(b, dtype=torch.long, device=finite.device)
        scored = torch.zeros(b, dtype=torch.long, device=finite.device)
        predictions = torch.full((b, n), -1, dtype=torch.long, device=finite.device)
        if plausible.any():
            correct[plausible], scored[plausible], predictions[plausible] = self._count_correct(
                {k: c[plausible] for k, c in candidates.items()}, exact_accepted
            )
        accuracy = (correct.double() / n).masked_fill(scored != n, float("nan"))
        return DiscriminatorScores(
            finite=finite,
            distribution_distance=distance,
            passed_distribution=plausible,
            accuracy=accuracy,
            examples_scored=scored,
            accepted=plausible & (correct >= self.min_correct),
            predictions=predictions,
        )
