"""Fitness = quality + lambda x diversity (spec section 3).

Quality is a member's accuracy on the discriminator split (never the test set). Diversity is
behavioural, measured from the population's predictions on a probe set, in one of two ways:

- ``"disagreement"``: the member's mean prediction disagreement with each other member
  (:func:`mge.evaluation.disagreement_with_rest`);
- ``"sharing"``: resource sharing -- each probe example is a resource shared by the members that
  classify it correctly, so an example few members solve is worth more. This is implicit fitness
  sharing (Smith, Forrest & Perelson 1993, "Searching for diverse, cooperative populations with
  genetic algorithms", Evolutionary Computation 1(2); Rosin & Belew 1997, "New methods for
  competitive coevolution", Evolutionary Computation 5(1), where a test case is worth 1 / the
  number of individuals that solve it), used for neural-network ensembles by Liu, Yao & Higuchi
  (2000, "Evolutionary ensembles with negative correlation learning", IEEE TEC 4(4)). The
  member's shared accuracy is ``(B / N) sum_n c_in / m_n`` (c_in: member i solves example n,
  m_n: members that solve it); equal to its accuracy when all members solve the same examples.
  The diversity term is its excess over the plain probe accuracy, scaled to [0, accuracy]:

      sharing_bonus_i = (1 / N) sum_n c_in (B / m_n - 1) / (B - 1),

  so an example only member i solves adds 1/N, as an example on which it disagrees with every
  other member adds 1/N to its disagreement; both diversity terms share one scale for lambda.
  With lambda = B - 1 and the discriminator split as the probe set, the fitness is exactly the
  shared accuracy.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from mge.evaluation import disagreement_with_rest

FitnessKind = Literal["disagreement", "sharing"]
FITNESS_KINDS: tuple[str, ...] = get_args(FitnessKind)


def sharing_bonus(predictions: Tensor, labels: Tensor) -> Tensor:
    """Per member (B,) float64: the resource-sharing diversity term of the module docstring.

    Args:
        predictions: (B, N) class predictions of the population on the probe set.
        labels: (N,) probe labels.
    """
    correct = predictions == labels  # (B, N)
    b = correct.shape[0]
    if b < 2:
        return torch.zeros(b, dtype=torch.float64, device=predictions.device)
    solvers = correct.sum(dim=0).double().clamp(min=1)  # (N,) an example nobody solves adds nothing anyway
    worth = (b / solvers - 1) / (b - 1)  # (N,) 0 where everybody solves it, 1 where one member does
    return (correct.double() * worth).mean(dim=1)


def diversity(predictions: Tensor, labels: Tensor, *, kind: FitnessKind, num_classes: int) -> Tensor:
    """Diversity term per member (B,) float64 from the probe predictions (B, N) and labels (N,)."""
    if kind == "disagreement":
        return disagreement_with_rest(predictions, num_classes).double()
    if kind == "sharing":
        return sharing_bonus(predictions, labels)
    raise ValueError(f"Unknown fitness kind {kind!r}. Valid values are {list(FITNESS_KINDS)}; set evolution.fitness.")


def fitness(
    accuracy: Tensor,
    predictions: Tensor,
    labels: Tensor,
    *,
    kind: FitnessKind,
    weight: float,
    num_classes: int,
) -> Tensor:
    """quality + lambda x diversity per member (B,) float64.

    Args:
        accuracy: (B,) discriminator-split accuracy, the quality term.
        predictions: (B, N) predictions on the probe set; diversity is relative to these B members.
        labels: (N,) probe labels (used by ``"sharing"``).
        kind: ``"disagreement"`` or ``"sharing"``.
        weight: lambda >= 0.
        num_classes: number of classes of the predictions.
    """
    return accuracy.double() + weight * diversity(predictions, labels, kind=kind, num_classes=num_classes)
