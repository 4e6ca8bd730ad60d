"""Pool metrics of spec section 6: accuracy statistics, novelty, disagreement, distance."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


def summary(values: Tensor) -> dict[str, float]:
    """Mean, median, std (population), min and max of a 1-D tensor."""
    v = values.double()
    if v.numel() == 0:
        raise ValueError("Cannot summarise an empty set of values.")
    return {
        "mean": v.mean().item(),
        "median": v.median().item(),
        "std": v.std(unbiased=False).item(),
        "min": v.min().item(),
        "max": v.max().item(),
    }


def mistake_iou(predictions: Tensor, reference: Tensor, labels: Tensor) -> Tensor:
    """IoU of each model's set of misclassified examples with the reference's (B,).

    1.0 means the model makes exactly the reference's mistakes; lower is more novel. Two models
    that make no mistake at all count as identical (IoU 1).
    """
    wrong = predictions != labels  # (B, N)
    wrong_ref = (reference != labels).unsqueeze(0)  # (1, N)
    inter = (wrong & wrong_ref).sum(dim=-1).double()
    union = (wrong | wrong_ref).sum(dim=-1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def novelty(predictions: Tensor, seed_predictions: Tensor, labels: Tensor) -> Tensor:
    """Spec novelty: max mistake IoU over the seeds (B,); ``seed_predictions`` is (S, N) or (N,)."""
    seeds = seed_predictions.reshape(-1, seed_predictions.shape[-1])
    return torch.stack([mistake_iou(predictions, s, labels) for s in seeds]).amax(dim=0)


def pairwise_disagreement(predictions: Tensor, num_classes: int) -> float:
    """Mean fraction of examples on which two distinct pool members disagree.

    Computed from per-example vote counts, O(B N) instead of O(B^2 N): the number of agreeing
    pairs on an example is sum_c n_c (n_c - 1) / 2.
    """
    b = predictions.shape[0]
    if b < 2:
        return 0.0
    counts = torch.nn.functional.one_hot(predictions, num_classes).sum(dim=0).double()  # (N, C)
    agreeing = (counts * (counts - 1) / 2).sum(dim=-1)  # (N,)
    pairs = b * (b - 1) / 2
    return (1.0 - agreeing / pairs).mean().item()


def disagreement_with_rest(predictions: Tensor, num_classes: int) -> Tensor:
    """Per member (B,): the mean fraction of examples on which it disagrees with each other member.

    Its mean over the members is :func:`pairwise_disagreement`. Counted from per-example votes, O(B N):
    member i agrees with ``n_c - 1`` others on an example where it predicts class c.
    """
    b = predictions.shape[0]
    if b < 2:
        return torch.zeros(b, dtype=torch.float64, device=predictions.device)
    counts = torch.nn.functional.one_hot(predictions, num_classes).sum(dim=0)  # (N, C)
    agreeing_others = counts.gather(1, predictions.t()).t().double() - 1  # (B, N)
    return (1.0 - agreeing_others / (b - 1)).mean(dim=-1)


def relative_l2(params: Mapping[str, Tensor], seed: Mapping[str, Tensor]) -> Tensor:
    """||theta - theta_seed|| / ||theta_seed|| over the stacked params' names (B,)."""
    diff = torch.stack([(params[k] - seed[k]).flatten(1).double().square().sum(dim=1) for k in params]).sum(dim=0)
    norm = torch.stack([seed[k].double().square().sum() for k in params]).sum()
    return (diff / norm).sqrt()


def relative_l2_per_tensor(params: Mapping[str, Tensor], seed: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """||theta_k - theta_seed,k|| / ||theta_seed,k|| for each stacked tensor k: ``{name: (B,)}``.

    NaN or inf where the seed tensor is all zeros (the distance has no scale there).
    """
    return {k: (p - seed[k]).flatten(1).double().norm(dim=1) / seed[k].double().norm() for k, p in params.items()}
