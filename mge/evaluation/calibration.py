"""Expected calibration error: does a classifier's confidence match how often it is right?

An ensemble can be more accurate than its members and still be over- or under-confident; spec
section 6 reports the expected calibration error (ECE) of every pool's soft-vote ensemble beside
its accuracy and negative log-likelihood.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Guo et al. 2017, "On Calibration of Modern Neural Networks", section 2: M = 15 bins.
ECE_BINS = 15


def expected_calibration_error(probs: Tensor, labels: Tensor, *, num_bins: int = ECE_BINS) -> float:
    """ECE of class probabilities ``probs`` (N, C) against ``labels`` (N,); lower = better calibrated.

    The usual definition (Guo et al. 2017, eq. 3): the confidence of an example is its largest
    probability, its prediction the class holding it (the lowest class index on a tie, as
    ``argmax``). Examples fall into ``num_bins`` equal-width confidence bins ``((m-1)/M, m/M]``, and

        ECE = sum_m |B_m| / N * |accuracy(B_m) - mean confidence(B_m)|.

    0 is perfect calibration; the largest possible value is 1.

    Args:
        probs: probabilities, each row summing to 1 (e.g. a soft-vote ensemble's mean probabilities).
        labels: the true classes.
        num_bins: number of equal-width bins over (0, 1].
    """
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(
            f"expected_calibration_error needs probs (N, C) and labels (N,), got {tuple(probs.shape)} and "
            f"{tuple(labels.shape)}."
        )
    if probs.shape[0] == 0:
        raise ValueError("expected_calibration_error got no example (N = 0); pass at least one.")
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins must be an integer >= 1, got {num_bins!r}; Guo et al. use {ECE_BINS}.")
    confidence, prediction = probs.double().max(dim=-1)  # (N,), (N,)
    correct = (prediction == labels).double()  # (N,)
    # bin m (0-based) holds confidences in (m/M, (m+1)/M]; a confidence is never 0 (rows sum to 1)
    bins = (confidence * num_bins).ceil().long().sub(1).clamp(0, num_bins - 1)  # (N,)
    conf_sum = torch.zeros(num_bins, dtype=torch.float64, device=probs.device).index_add_(0, bins, confidence)
    correct_sum = torch.zeros_like(conf_sum).index_add_(0, bins, correct)
    # |B_m| / N * |acc - conf| = |sum correct - sum confidence| / N: empty bins add 0
    return ((correct_sum - conf_sum).abs().sum() / probs.shape[0]).item()
