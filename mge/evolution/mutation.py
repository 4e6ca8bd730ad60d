"""Mutation: MGE resampling around an individual, with a self-adaptive energy threshold (spec section 3).

Every individual carries its own energy threshold t. A child's t is inherited and perturbed
before it is used, in the manner of the self-adaptive step sizes of evolution strategies
(Schwefel 1977; Beyer & Schwefel 2002, "Evolution strategies -- a comprehensive introduction",
Natural Computing 1, section 4): the strategy parameter mutates first, then the child is drawn
with it, so thresholds that yield surviving children spread through the population.

The rule acts on the resampled energy fraction ``1 - t``, geometrically, as the MGE feedback does
(``mge/generator/feedback.py``: acceptance changes over orders of magnitude of 1 - t):

    1 - t_child = exp(mean_p log(1 - t_p) + step * N(0, 1)),   clipped to [1 - max_t, 1 - min_t],

the mean running over the child's parents (one for a mutation, two for a fusion), i.e. the
geometric mean of their resampled energies.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from mge.generator import LatentSampler
from mge.latent import LatentCodec


def inherit_threshold(
    parent_thresholds: Tensor,
    noise: Tensor,
    *,
    step: float,
    min_threshold: float,
    max_threshold: float,
) -> Tensor:
    """Children's thresholds from their parents' (see the module docstring).

    Args:
        parent_thresholds: (C, k) float64, the k parents' t of each child (repeat a single parent).
        noise: (C,) standard normal draws, one per child.
        step: the log-normal step size on 1 - t (0 inherits the geometric mean unchanged).
        min_threshold: lowest t a child may get.
        max_threshold: highest t a child may get; below 1, so that 1 - t stays positive.

    Returns:
        (C,) float64 thresholds in [min_threshold, max_threshold].
    """
    log_energy = torch.log1p(-parent_thresholds.double()).mean(dim=1) + step * noise.double()  # (C,)
    energy = log_energy.exp().clamp(min=1.0 - max_threshold, max=1.0 - min_threshold)
    return 1.0 - energy


def mutate(
    members: Mapping[str, Tensor],
    thresholds: Tensor,
    codec: LatentCodec,
    *,
    alpha: float,
    zero_mean: bool,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    """One MGE resample of each member around itself, at the member's own threshold.

    The members' thresholds differ, and so do their keep masks: each is one
    :class:`~mge.generator.LatentSampler` draw. The loop runs over members, each draw over all tensors
    at once; next to the discriminator's forward passes on the children it costs little.

    Args:
        members: stacked parameters ``{name: (C, *shape)}``.
        thresholds: (C,) energy thresholds t in (0, 1].
        codec: the latent space.
        alpha: scale on the std of the resampled coefficients.
        zero_mean: resample around 0 instead of the replaced coefficients' mean.
        generator: the noise source; drawn from in member order.

    Returns:
        The mutants ``{name: (C, *shape)}`` in float32.
    """
    n = thresholds.shape[0]
    if n == 0:
        return {name: t[:0].to(torch.float32) for name, t in members.items()}
    rows = []
    for i in range(n):
        sampler = LatentSampler({name: t[i] for name, t in members.items()}, codec, zero_mean=zero_mean)
        rows.append(sampler.sample(1, threshold=float(thresholds[i]), alpha=alpha, generator=generator))
    return {name: torch.cat([row[name] for row in rows]) for name in members}
