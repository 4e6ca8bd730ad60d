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

from mge.latent import LatentCodec, keep_masks


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

    The rule of :class:`~mge.generator.LatentSampler`, per member and tensor: keep the
    highest-energy coefficients holding a fraction t of the energy, redraw the others from
    N(mu, (alpha sigma)^2), mu and sigma being the mean and std of the coefficients they replace
    (mu = 0 with ``zero_mean``). The members' thresholds differ, and so do their keep masks, but
    every step runs on all members at once (:func:`mge.latent.keep_masks`), one tensor at a time.

    Args:
        members: stacked parameters ``{name: (C, *shape)}``.
        thresholds: (C,) energy thresholds t in (0, 1].
        codec: the latent space.
        alpha: scale on the std of the resampled coefficients.
        zero_mean: resample around 0 instead of the replaced coefficients' mean.
        generator: the noise source; one draw of (C, size) per tensor, in the members' tensor order.

    Returns:
        The mutants ``{name: (C, *shape)}`` in float32.
    """
    n = thresholds.shape[0]
    if n == 0:
        return {name: t[:0].to(torch.float32) for name, t in members.items()}
    mutants = {}
    for name, w in members.items():
        x = w.to(torch.float32)
        shape = x.shape[1:]
        z = codec.encode(x, shape).reshape(n, -1)  # (C, K)
        keep = keep_masks(z.square(), thresholds)  # (C, K)
        replaced = (~keep).to(z.dtype)
        count = replaced.sum(dim=1, keepdim=True).clamp(min=1)  # (C, 1)
        mean = (z * replaced).sum(dim=1, keepdim=True) / count  # of the replaced coefficients
        sigma = alpha * (((z - mean) * replaced).square().sum(dim=1, keepdim=True) / count).sqrt()  # their std
        mu = torch.zeros_like(mean) if zero_mean else mean
        noise = torch.randn(z.shape, generator=generator, device=generator.device).to(z.device)
        delta = torch.where(keep, 0.0, mu + sigma * noise - z).reshape(x.shape)  # 0 on kept coefficients
        mutants[name] = x + codec.decode(delta, shape)
    return mutants
