"""A pool used as a defence: majority vote, or one member drawn at random per query.

Both are scored per example from the members' predictions ``(B, N)``, so that a worst case over
several attacks can be taken example by example (the attacker picks, for each input, whichever
attack hurts the defence most).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# How :func:`majority_vote_correct` scores a tie (the one place it is decided); reports record it.
MAJORITY_VOTE_TIES = "a tie between the true class and another counts as wrong"


def majority_vote_correct(predictions: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Per example ``(N,)``: does the true class get strictly more votes than any other class?

    A tie counts as wrong: the defence must not gain robustness from a tie-breaking rule the
    attacker could equally exploit (no defence is overclaimed).

    Args:
        predictions: ``(B, N)`` class predicted by each member.
        labels: ``(N,)`` true classes.
        num_classes: number of classes.
    """
    votes = F.one_hot(predictions, num_classes).sum(dim=0)  # (N, classes)
    true_votes = votes.gather(1, labels.unsqueeze(1)).squeeze(1)  # (N,)
    others = votes.scatter(1, labels.unsqueeze(1), -1).amax(dim=1)  # (N,) best wrong class
    return true_votes > others


def random_member_accuracy(predictions: Tensor, labels: Tensor) -> Tensor:
    """Per example ``(N,)``: the probability that a member drawn uniformly at random is right.

    This is the random-member defence's exact expected accuracy, not one random draw of it.
    """
    return (predictions == labels).to(torch.float64).mean(dim=0)
