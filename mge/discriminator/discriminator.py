"""MGE's discriminator (spec section 2, step 6): is a candidate a plausible, working model?

It scores a batch of candidates on the two aspects the paper names and rejects non-finite ones:

1. parameter distribution, in weight space (optional, off by default) -- per tensor, the
   1-Wasserstein distance between the candidate's and the seed's empirical weight distributions,
   divided by the seed tensor's std; the worst tensor counts and must stay under
   ``max_distribution_distance``;
2. parameter distribution, in the latent space (optional) -- the share of a tensor's energy that
   moved between DCT frequency bands (:mod:`mge.discriminator.spectral`), worst tensor, under
   ``max_spectral_distance``;
3. performance -- accuracy on the discriminator split (held out from training, never the test set)
   must reach a bound: ``seed accuracy - accuracy_tolerance``, or the lower binomial confidence
   bound of the seed's own accuracy on the split (:mod:`mge.discriminator.binomial`).

Each test can be switched off (a bound of None; ``accuracy_bound: none``); non-finite candidates
are always rejected. By default only the performance test runs: measured on the test set, the W1
test removed candidates as good as those it kept, and the spectral test, which tells MGE candidates
from Gaussian noise almost perfectly, removed almost no MGE candidate (docs/discriminator.md).
The tests run as a cascade, in that order: only candidates that are finite and pass the
distribution tests are evaluated on data, which is where the time goes. That evaluation
stops early, exactly: examples are scored in chunks, and a candidate leaves as soon as its verdict
is decided -- it has made so many mistakes that it can no longer reach the bound, or so few that it
can no longer miss it, whichever rule set the bound. The accept/reject decisions are those of
scoring every example. Chunks start with the examples the seed is least sure of (smallest
margin), where candidates make their mistakes, so that failing candidates are rejected after a
fraction of the split. With ``exact_accepted`` only rejections stop
early: every accepted candidate is scored on the whole split, so its accuracy and its predictions
(``DiscriminatorScores.predictions``) are exact -- what E-MGE needs for its fitness, without running
the accepted children over the split a second time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from mge.discriminator.binomial import wilson_lower_bound
from mge.discriminator.spectral import SpectralDistance
from mge.evaluation import batched_logits, predict_batched, stacked_size
from mge.latent import LatentCodec

# How the performance test's bound is set: "tolerance" = seed accuracy - accuracy_tolerance;
# "binomial" = the one-sided Wilson lower bound of the seed's accuracy at accuracy_confidence;
# "none" = no performance test.
ACCURACY_BOUNDS = ("tolerance", "binomial", "none")


@dataclass(frozen=True)
class DiscriminatorSettings:
    """Acceptance bounds of the discriminator."""

    # W1(candidate, seed) / std(seed), worst tensor; None (the default): off, because it removed
    # candidates as good as those it kept (docs/discriminator.md)
    max_distribution_distance: float | None = None
    max_spectral_distance: float | None = None  # energy share moved between DCT bands, worst tensor; None: off
    spectral_bands: int = 4  # frequency bands per tensor of the spectral test
    accuracy_bound: str = "tolerance"  # "tolerance", "binomial" or "none" (see ACCURACY_BOUNDS)
    accuracy_tolerance: float = 0.005  # delta: accept at >= seed accuracy - delta (fraction, not points)
    accuracy_confidence: float = 0.95  # one-sided confidence of the binomial bound
    early_stop: bool = True  # stop scoring a candidate once its verdict is decided (same verdicts, less time)
    decision_chunk: int = 250  # examples scored between two early-stopping checks
    eval_batch_size: int = 1000  # examples per vectorised forward pass
    models_per_chunk: int = 64  # candidates per vectorised forward pass

    def __post_init__(self) -> None:
        d = self.max_distribution_distance
        if d is not None and not (_is_number(d) and math.isfinite(d) and d > 0):
            raise ValueError(f"max_distribution_distance must be a finite number > 0 or null (off), got {d!r}.")
        s = self.max_spectral_distance
        if s is not None and not (_is_number(s) and math.isfinite(s) and 0 < s <= 1):
            raise ValueError(f"max_spectral_distance is a share of energy in (0, 1] or null (off), got {s!r}.")
        if self.accuracy_bound not in ACCURACY_BOUNDS:
            raise ValueError(
                f"accuracy_bound {self.accuracy_bound!r} is unknown. Valid values are {list(ACCURACY_BOUNDS)}."
            )
        if not (math.isfinite(self.accuracy_tolerance) and 0 <= self.accuracy_tolerance <= 1):
            raise ValueError(
                f"accuracy_tolerance is a fraction in [0, 1] (0.005 = half a point), got {self.accuracy_tolerance}."
            )
        if not (math.isfinite(self.accuracy_confidence) and 0 < self.accuracy_confidence < 1):
            raise ValueError(
                f"accuracy_confidence is a one-sided confidence level in (0, 1) (e.g. 0.95), "
                f"got {self.accuracy_confidence}."
            )
        for key in ("spectral_bands", "decision_chunk", "eval_batch_size", "models_per_chunk"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}.")


@dataclass(frozen=True)
class DiscriminatorScores:
    """Per-candidate scores and the test that decided each verdict."""

    finite: Tensor  # (B,) bool
    distribution_distance: Tensor  # (B,) float W1 / std, inf for non-finite candidates, NaN with the test off
    spectral_distance: Tensor  # (B,) float, inf for non-finite candidates, NaN with the test off
    passed_weights: Tensor  # (B,) bool: finite and within the W1 bound (or that test off)
    passed_distribution: Tensor  # (B,) bool: passed_weights and within the spectral bound (or that test off)
    accuracy: Tensor  # (B,) float: exact where the whole split was scored, else NaN
    examples_scored: Tensor  # (B,) int: discriminator examples each candidate was scored on (0: not scored)
    accepted: Tensor  # (B,) bool
    # (B, N) long: predictions on ``Discriminator.inputs`` (hardest first) up to examples_scored, -1 after
    predictions: Tensor

    # Each rejected candidate is counted once, by the first test of the cascade that rejected it.
    @property
    def rejected_non_finite(self) -> Tensor:
        return ~self.finite

    @property
    def rejected_distribution(self) -> Tensor:
        return self.finite & ~self.passed_weights

    @property
    def rejected_spectral(self) -> Tensor:
        return self.passed_weights & ~self.passed_distribution

    @property
    def rejected_accuracy(self) -> Tensor:
        return self.passed_distribution & ~self.accepted


def sort_rows(x: Tensor) -> Tensor:
    """``x.sort(dim=-1).values``, the same values; float32 on a CPU is sorted by NumPy.

    NumPy's vectorised sort (x86-simd-sort) is 3-4x faster than ``torch.sort`` on the rows of a
    LeNet-5 candidate batch (128 x 48,000 floats: 0.13 s against 0.48 s on one core), and sorting
    those rows was a quarter of the discriminator's time. Sorted values do not depend on the
    algorithm (only the order of -0.0 and 0.0 might, which no distance sees).
    """
    if x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad:
        return torch.from_numpy(np.sort(x.numpy(), axis=-1))
    return x.sort(dim=-1).values


def wasserstein_1(candidates: Tensor, reference_sorted: Tensor) -> Tensor:
    """W1 between each row of ``candidates`` (B, n) and one reference sample (n,), sorted.

    For two empirical distributions of equal size, W1 is the mean absolute difference of their
    order statistics.
    """
    return (sort_rows(candidates) - reference_sorted).abs().mean(dim=-1)


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
        codec: LatentCodec | None = None,
    ) -> None:
        """
        Args:
            model: the seed's architecture, holding the seed's weights and buffers.
            seed_params: the seed's target tensors (the ones candidates replace).
            inputs: discriminator-split examples (N, ...), on the model's device.
            labels: their labels (N,).
            settings: acceptance bounds.
            codec: the generator's latent codec; needed by the spectral test (``max_spectral_distance``).
        """
        if inputs.shape[0] != labels.shape[0] or inputs.shape[0] == 0:
            raise ValueError(
                f"Discriminator split needs as many labels as inputs (> 0), got {inputs.shape[0]} "
                f"inputs and {labels.shape[0]} labels."
            )
        self.model = model.eval()
        self.settings = settings or DiscriminatorSettings()
        self.spectral: SpectralDistance | None = None
        if self.settings.max_spectral_distance is not None:
            if codec is None:
                raise ValueError(
                    "max_spectral_distance is set, so the discriminator needs the generator's latent codec: "
                    "pass codec=LatentCodec(<generator granularity>)."
                )
            self.spectral = SpectralDistance(seed_params, codec, self.settings.spectral_bands)
        self._seed_sorted = {k: v.detach().float().flatten().sort().values for k, v in seed_params.items()}
        # a constant seed tensor (e.g. a fresh norm bias) has std 0: measure it in absolute units
        self._seed_scale = {k: v.std(unbiased=False).clamp(min=1e-8) for k, v in self._seed_sorted.items()}
        seed_stacked = {k: v.detach().unsqueeze(0) for k, v in seed_params.items()}
        with torch.no_grad():
            logits = batched_logits(self.model, seed_stacked, inputs, batch_size=self.settings.eval_batch_size)[0]
        self.seed_correct = int((logits.argmax(dim=-1) == labels).sum())
        self.seed_accuracy = float((logits.argmax(dim=-1) == labels).float().mean())
        # hardest first: the seed's margin of the true class over the best other class, ascending
        true = logits.gather(1, labels[:, None]).squeeze(1)
        others = logits.scatter(1, labels[:, None], float("-inf")).amax(dim=1)
        order = torch.sort(true - others, stable=True).indices
        self.inputs, self.labels = inputs[order], labels[order]
        bound = self.accuracy_bound
        self.min_correct = 0 if bound is None else min_correct(len(labels), bound)

    @property
    def accuracy_bound(self) -> float | None:
        """Lowest discriminator-split accuracy a candidate may have (None: no performance test)."""
        if self.settings.accuracy_bound == "binomial":
            return wilson_lower_bound(self.seed_correct, len(self.labels), self.settings.accuracy_confidence)
        if self.settings.accuracy_bound == "tolerance":
            return self.seed_accuracy - self.settings.accuracy_tolerance
        return None

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
        """Run the tests that are on, as a cascade, on stacked candidates ``{name: (B, *shape)}``.

        Args:
            candidates: stacked target tensors.
            exact_accepted: score every accepted candidate on the whole split (exact accuracy and
                predictions); the verdicts are the same either way.
        """
        b = stacked_size(candidates)
        settings = self.settings
        finite = torch.stack([c.flatten(1).isfinite().all(dim=1) for c in candidates.values()]).all(dim=0)
        device = finite.device
        distance = self._measure(candidates, finite, settings.max_distribution_distance, self.distribution_distance)
        passed_weights = finite & _within(distance, settings.max_distribution_distance)
        spectral = self._measure(candidates, finite, settings.max_spectral_distance, self.spectral)
        plausible = passed_weights & _within(spectral, settings.max_spectral_distance)
        n = len(self.labels)
        correct = torch.zeros(b, dtype=torch.long, device=device)
        scored = torch.zeros(b, dtype=torch.long, device=device)
        predictions = torch.full((b, n), -1, dtype=torch.long, device=device)
        if settings.accuracy_bound != "none" and plausible.any():
            correct[plausible], scored[plausible], predictions[plausible] = self._count_correct(
                {k: c[plausible] for k, c in candidates.items()}, exact_accepted
            )
        accuracy = (correct.double() / n).masked_fill(scored != n, float("nan"))
        return DiscriminatorScores(
            finite=finite,
            distribution_distance=distance,
            spectral_distance=spectral,
            passed_weights=passed_weights,
            passed_distribution=plausible,
            accuracy=accuracy,
            examples_scored=scored,
            accepted=plausible & (correct >= self.min_correct),
            predictions=predictions,
        )

    @staticmethod
    def _measure(
        candidates: Mapping[str, Tensor],
        finite: Tensor,
        bound: float | None,
        statistic: Callable[[Mapping[str, Tensor]], Tensor] | None,
    ) -> Tensor:
        """A distribution statistic per candidate (B,): inf where not finite, NaN everywhere with the test off."""
        b = finite.shape[0]
        if bound is None or statistic is None:
            return torch.full((b,), float("nan"), device=finite.device)
        values = torch.full((b,), float("inf"), device=finite.device)
        if finite.any():
            values[finite] = statistic({k: c[finite] for k, c in candidates.items()}).to(values.device)
        return values


def _within(values: Tensor, bound: float | None) -> Tensor:
    """``values <= bound``, all True with the test off (``bound`` None)."""
    return torch.ones_like(values, dtype=torch.bool) if bound is None else values <= bound


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
