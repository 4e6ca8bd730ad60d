"""A pool as an ensemble (spec section 6): soft and majority vote, NLL, ECE, and accuracy against pool size.

Every metric is computed from running sums, so a pool never has to be held in memory at once: a
pool of 1000 members on 10,000 test images has 1000 x 10,000 x 10 logits (400 MB in float32), but
the summaries only need, per example and class,

- the sum of the members' softmax probabilities (soft vote: Lakshminarayanan et al. 2017, "Simple
  and Scalable Predictive Uncertainty Estimation using Deep Ensembles", average the probabilities),
- the number of members voting for the class (majority vote),
- the log of the summed probability of the true class, accumulated with ``logaddexp`` so that the
  negative log-likelihood stays exact where probabilities underflow,

and, for accuracy against pool size, the same sums for the first k members of a few random
orderings. Feed :class:`EnsembleAccumulator` the logits of consecutive chunks of members (e.g. what
``mge.evaluation.batched_logits`` returns for each chunk of a pool) and read the results at the end;
:func:`ensemble_metrics` does it in one call for logits already in memory.

Ties, deterministically: the soft vote takes the lowest class index among classes of equal summed
probability (``argmax``); the majority vote takes, among the classes with the most votes, the one of
highest summed probability, then the lowest class index. :func:`majority_vote` is mge's one
definition of a pool's majority vote: every table and every defence that votes uses it (through
:func:`majority_vote_of_logits` where the members' logits are at hand), so that a "majority vote"
accuracy means the same thing wherever it is reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mge.evaluation.calibration import ECE_BINS, expected_calibration_error

# Random orderings of the members for accuracy against pool size (mean and spread over them).
DEFAULT_ORDERINGS = 5
# Most pool sizes on the default grid; every size of the grid costs 2 x orderings x N x C float64.
DEFAULT_SIZE_POINTS = 16


def pool_size_grid(num_members: int, max_points: int = DEFAULT_SIZE_POINTS) -> list[int]:
    """Pool sizes at which to measure ensemble accuracy: every size up to ``max_points`` members,
    else ``max_points`` sizes spaced geometrically from 1 to ``num_members`` (both included).

    Ensemble accuracy changes fastest for the first few members, so a geometric grid spends its
    points there; it also bounds the memory of :class:`EnsembleAccumulator`.
    """
    if num_members < 1 or max_points < 2:
        raise ValueError(f"pool_size_grid needs num_members >= 1 and max_points >= 2, got {num_members}, {max_points}.")
    if num_members <= max_points:
        return list(range(1, num_members + 1))
    grid = torch.logspace(0, math.log10(num_members), max_points, dtype=torch.float64).round().long()
    return sorted({*grid.tolist(), 1, num_members})


def _soft_vote(prob_sum: Tensor) -> Tensor:
    """Class of highest summed probability; the lowest index on a tie."""
    return prob_sum.argmax(dim=-1)


def majority_vote(votes: Tensor, prob_sum: Tensor) -> Tensor:
    """The pool's majority vote ``(...,)`` from per-class vote counts and summed probabilities ``(..., C)``.

    The class with the most votes; a tie goes to the tied class of highest summed probability
    (the members' confidence decides, as a soft vote would), then to the lowest class index. A tie
    is not counted as a mistake: the vote is a classifier and always answers.

    Args:
        votes: number of members predicting each class.
        prob_sum: the members' softmax probabilities, summed.
    """
    tied = votes == votes.amax(dim=-1, keepdim=True)
    return prob_sum.masked_fill(~tied, -math.inf).argmax(dim=-1)


def majority_vote_of_logits(logits: Tensor) -> Tensor:
    """:func:`majority_vote` of members' logits ``(B, N, C)``: the class the pool votes for on each example ``(N,)``.

    Example:
        >>> logits = torch.tensor([[[0.0, 1.0]], [[0.0, 3.0]], [[2.0, 0.0]]])  # 3 members, 1 example
        >>> majority_vote_of_logits(logits)
        tensor([1])
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (members, examples, classes), got shape {tuple(logits.shape)}.")
    c = logits.shape[-1]
    votes = torch.nn.functional.one_hot(logits.argmax(dim=-1), c).sum(dim=0)  # (N, C)
    prob_sum = logits.double().log_softmax(dim=-1).exp().sum(dim=0)  # (N, C), as EnsembleAccumulator sums them
    return majority_vote(votes, prob_sum)


@dataclass(frozen=True)
class EnsembleMetrics:
    """The whole pool as one classifier; the field names say which way is better."""

    members: int
    soft_vote_accuracy: float  # higher = better
    majority_vote_accuracy: float  # higher = better
    soft_vote_nll: float  # mean negative log-likelihood of the soft vote (nats); lower = better
    soft_vote_ece: float  # expected calibration error of the soft vote, 15 bins; lower = better

    def to_dict(self) -> dict[str, float | int]:
        """JSON-serialisable."""
        return {
            "members": self.members,
            "soft_vote_accuracy": self.soft_vote_accuracy,
            "majority_vote_accuracy": self.majority_vote_accuracy,
            "soft_vote_nll": self.soft_vote_nll,
            "soft_vote_ece": self.soft_vote_ece,
        }


@dataclass(frozen=True)
class EnsembleCurve:
    """Ensemble accuracy (higher = better) of the first ``sizes[k]`` members of random orderings of the pool."""

    sizes: list[int]  # (K,) pool sizes, increasing
    order: Tensor  # (R, B) member indices of each ordering, first member first
    soft_vote_accuracy: Tensor  # (R, K) float64: ordering r, size sizes[k]
    majority_vote_accuracy: Tensor  # (R, K)

    def to_dict(self) -> dict[str, object]:
        """Per size: mean, std (population), min and max over the orderings; JSON-serialisable."""

        def spread(acc: Tensor) -> dict[str, list[float]]:
            return {
                "mean": acc.mean(dim=0).tolist(),
                "std": acc.std(dim=0, unbiased=False).tolist(),
                "min": acc.amin(dim=0).tolist(),
                "max": acc.amax(dim=0).tolist(),
            }

        return {
            "sizes": list(self.sizes),
            "orderings": self.soft_vote_accuracy.shape[0],
            "soft_vote_accuracy": spread(self.soft_vote_accuracy),
            "majority_vote_accuracy": spread(self.majority_vote_accuracy),
        }


class EnsembleAccumulator:
    """Ensemble metrics of a pool, fed chunk by chunk of members.

    Memory: ``(N, C)`` float64 sums for the whole pool, plus ``2 x orderings x len(sizes) x N x C``
    float64 for the curve (10,000 examples, 10 classes, 5 orderings, 16 sizes: 128 MB); a chunk's
    logits are freed after :meth:`update`. ``orderings=0`` skips the curve.

    Member i of ordering r counts towards size k when its rank in that ordering is below
    ``sizes[k]``, so each chunk adds its probabilities and votes to every (ordering, size) slot with
    one matrix product, whatever order the chunks come in.

    Args:
        labels: true classes of the N examples ``(N,)``, on the device the logits will be on.
        num_members: the pool size B; :meth:`update` must receive exactly B members in all.
        sizes: pool sizes of the curve, increasing, in [1, B]; default :func:`pool_size_grid`.
        orderings: random orderings of the members for the curve (0: no curve).
        seed: seed of the orderings.
    """

    def __init__(
        self,
        labels: Tensor,
        num_members: int,
        *,
        sizes: Sequence[int] | None = None,
        orderings: int = DEFAULT_ORDERINGS,
        seed: int = 0,
    ) -> None:
        if labels.dim() != 1 or labels.numel() == 0:
            raise ValueError(f"labels must be a non-empty 1-D tensor (N,), got shape {tuple(labels.shape)}.")
        if num_members < 1:
            raise ValueError(f"num_members must be >= 1 (the pool size), got {num_members}.")
        if orderings < 0:
            raise ValueError(f"orderings must be >= 0 (0 skips the curve), got {orderings}.")
        sizes = pool_size_grid(num_members) if sizes is None else [int(s) for s in sizes]
        if not sizes or sizes != sorted(set(sizes)) or sizes[0] < 1 or sizes[-1] > num_members:
            raise ValueError(
                f"sizes must be distinct, increasing and within [1, {num_members}] (the pool size), got {sizes}."
            )
        self.labels = labels
        self.num_members = num_members
        self.sizes = sizes
        self.orderings = orderings
        g = torch.Generator().manual_seed(seed)
        # rank[r, i]: position of member i in ordering r
        ranks = [torch.randperm(num_members, generator=g).argsort() for _ in range(orderings)]
        self._rank = torch.stack(ranks).to(labels.device) if ranks else torch.empty(0, num_members)  # (R, B)
        self._sizes = torch.tensor(sizes, device=labels.device)  # (K,)
        self._seen = 0
        self._num_classes = 0
        self._prob_sum = torch.empty(0)  # (N, C) float64
        self._votes = torch.empty(0)  # (N, C) float64, whole numbers
        self._label_logp = torch.empty(0)  # (N,) log sum_i p_i(y)
        self._curve = torch.empty(0)  # (R * K, N, 2C): summed probabilities, then votes

    def _allocate(self, num_classes: int) -> None:
        n, dev = self.labels.shape[0], self.labels.device
        self._num_classes = num_classes
        self._prob_sum = torch.zeros(n, num_classes, dtype=torch.float64, device=dev)
        self._votes = torch.zeros_like(self._prob_sum)
        self._label_logp = torch.full((n,), -math.inf, dtype=torch.float64, device=dev)
        slots = self.orderings * len(self.sizes)
        self._curve = torch.zeros(slots, n, 2 * num_classes, dtype=torch.float64, device=dev)

    @torch.no_grad()
    def update(self, logits: Tensor) -> None:
        """Add the next members of the pool, in pool order.

        Args:
            logits: ``(b, N, C)``, members ``seen .. seen + b - 1`` of the pool.
        """
        if logits.dim() != 3 or logits.shape[1] != self.labels.shape[0]:
            raise ValueError(
                f"logits must be (members, N={self.labels.shape[0]}, classes), got shape {tuple(logits.shape)}."
            )
        b, n, c = logits.shape
        if self._seen + b > self.num_members:
            raise ValueError(
                f"Got {self._seen + b} members in all, but the accumulator was made for num_members="
                f"{self.num_members}. Make it with the pool's size."
            )
        if self._seen == 0:
            self._allocate(c)
        elif c != self._num_classes:
            raise ValueError(f"logits have {c} classes, earlier chunks had {self._num_classes}.")
        logp = logits.double().log_softmax(dim=-1)  # (b, N, C)
        probs = logp.exp()
        votes = torch.nn.functional.one_hot(logits.argmax(dim=-1), c).double()  # (b, N, C)
        self._prob_sum += probs.sum(dim=0)
        self._votes += votes.sum(dim=0)
        label_logp = logp.gather(-1, self.labels.view(1, n, 1).expand(b, n, 1)).squeeze(-1)  # (b, N)
        self._label_logp = torch.logaddexp(self._label_logp, label_logp.logsumexp(dim=0))
        if self.orderings:
            rank = self._rank[:, self._seen : self._seen + b]  # (R, b)
            counts = (rank.unsqueeze(1) < self._sizes.view(1, -1, 1)).double()  # (R, K, b)
            both = torch.cat([probs, votes], dim=-1).reshape(b, -1)  # (b, N * 2C)
            self._curve.view(counts.shape[0] * counts.shape[1], -1).addmm_(counts.flatten(0, 1), both)
        self._seen += b

    def _check_complete(self) -> None:
        if self._seen != self.num_members:
            raise ValueError(
                f"The accumulator has seen {self._seen} of num_members={self.num_members} members; "
                "feed the whole pool to update() first."
            )

    def metrics(self) -> EnsembleMetrics:
        """Soft- and majority-vote accuracy, NLL and ECE of the whole pool."""
        self._check_complete()
        mean_probs = self._prob_sum / self.num_members  # (N, C)
        nll = -(self._label_logp - math.log(self.num_members)).mean()
        return EnsembleMetrics(
            members=self.num_members,
            soft_vote_accuracy=(_soft_vote(self._prob_sum) == self.labels).double().mean().item(),
            majority_vote_accuracy=(majority_vote(self._votes, self._prob_sum) == self.labels).double().mean().item(),
            soft_vote_nll=nll.item(),
            soft_vote_ece=expected_calibration_error(mean_probs, self.labels, num_bins=ECE_BINS),
        )

    def curve(self) -> EnsembleCurve:
        """Soft- and majority-vote accuracy at each pool size of each ordering."""
        self._check_complete()
        if not self.orderings:
            raise ValueError("This accumulator was made with orderings=0, so it has no curve; use orderings >= 1.")
        c = self._num_classes
        curve = self._curve.view(self.orderings, len(self.sizes), -1, 2 * c)  # (R, K, N, 2C)
        prob_sum, votes = curve[..., :c], curve[..., c:]
        return EnsembleCurve(
            sizes=list(self.sizes),
            order=self._rank.argsort(dim=1).cpu(),
            soft_vote_accuracy=(_soft_vote(prob_sum) == self.labels).double().mean(dim=-1).cpu(),
            majority_vote_accuracy=(majority_vote(votes, prob_sum) == self.labels).double().mean(dim=-1).cpu(),
        )


def ensemble_metrics(
    logits: Tensor,
    labels: Tensor,
    *,
    sizes: Sequence[int] | None = None,
    orderings: int = DEFAULT_ORDERINGS,
    seed: int = 0,
) -> tuple[EnsembleMetrics, EnsembleCurve | None]:
    """Ensemble metrics and curve of member logits already in memory; see :class:`EnsembleAccumulator`.

    Args:
        logits: ``(B, N, C)``, as ``mge.evaluation.batched_logits`` returns them.
        labels: ``(N,)``.
        sizes: pool sizes of the curve; default :func:`pool_size_grid`.
        orderings: random orderings for the curve; 0 returns no curve.
        seed: seed of the orderings.

    Example:
        >>> logits = torch.tensor([[[5.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]]])  # 3 members, 1 example
        >>> metrics, _ = ensemble_metrics(logits, torch.tensor([0]), orderings=0)
        >>> metrics.soft_vote_accuracy, metrics.majority_vote_accuracy
        (1.0, 0.0)
    """
    acc = EnsembleAccumulator(labels, logits.shape[0], sizes=sizes, orderings=orderings, seed=seed)
    acc.update(logits)
    return acc.metrics(), acc.curve() if orderings else None
