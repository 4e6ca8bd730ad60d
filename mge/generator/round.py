"""What one round of MGE proposes: candidates drawn around a center, scored by the discriminator."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from mge.discriminator import Discriminator, DiscriminatorScores
from mge.generator.sampler import LatentSampler


@dataclass(frozen=True)
class Proposal:
    """A round's candidates and their scores."""

    candidates: dict[str, Tensor]  # {name: (B, *shape)} on the discriminator's device
    scores: DiscriminatorScores
    threshold: float  # the knobs they were drawn with
    alpha: float
    sample_seconds: float
    score_seconds: float


def propose(
    sampler: LatentSampler,
    discriminator: Discriminator,
    n: int,
    *,
    threshold: float,
    alpha: float,
    generator: torch.Generator,
) -> Proposal:
    """Draw ``n`` candidates with ``generator`` and score them (one tensor operation each, not a loop)."""
    device = discriminator.labels.device
    start = time.perf_counter()
    candidates = sampler.sample(n, threshold=threshold, alpha=alpha, generator=generator)
    candidates = {k: v.to(device) for k, v in candidates.items()}
    sampled = time.perf_counter()
    scores = discriminator.score(candidates)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    scored = time.perf_counter()
    return Proposal(candidates, scores, threshold, alpha, sampled - start, scored - sampled)
