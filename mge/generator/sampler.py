"""Batched candidate sampling in the DCT latent space (spec section 2, steps 3-5)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from mge.latent import LatentCodec, keep_mask


class LatentSampler:
    """Draws candidate parameter sets around one center: the seed, or any member (E-MGE's mutation).

    For every target tensor the center's coefficients are computed once. A candidate keeps the
    highest-energy coefficients that hold a fraction ``threshold`` of the energy and redraws every
    other coefficient from N(mu, (alpha * sigma)^2), mu and sigma being the mean and std of the
    coefficients it replaces (mu = 0 with ``zero_mean``).

    The candidate is written as ``center + decode(resampled - original)`` on the replaced
    coefficients only: the transform is linear, so this equals ``decode(candidate coefficients)``,
    and where nothing is replaced (t = 1) the center comes back bit for bit instead of through a
    floating-point round trip.
    """

    def __init__(
        self,
        center: Mapping[str, Tensor],
        codec: LatentCodec,
        *,
        zero_mean: bool = False,
    ) -> None:
        if not center:
            raise ValueError("LatentSampler needs at least one target parameter.")
        self.codec = codec
        self.zero_mean = zero_mean
        self.center = {name: w.detach().to(torch.float32) for name, w in center.items()}
        self.coefficients = {name: codec.encode(w, w.shape) for name, w in self.center.items()}
        self._mask_cache: dict[float, dict[str, Tensor]] = {}

    def masks(self, threshold: float) -> dict[str, Tensor]:
        """Keep masks per tensor for energy threshold ``threshold`` (cached: rounds reuse them)."""
        if threshold not in self._mask_cache:
            self._mask_cache = {  # keep one entry: the controller rarely revisits a value
                threshold: {name: keep_mask(z.square(), threshold) for name, z in self.coefficients.items()}
            }
        return self._mask_cache[threshold]

    def sample(self, n: int, *, threshold: float, alpha: float, generator: torch.Generator) -> dict[str, Tensor]:
        """``n`` candidates as stacked tensors ``{name: (n, *shape)}`` in float32.

        Args:
            n: number of candidates (one tensor operation per parameter, not a loop over models).
            threshold: energy threshold t in (0, 1].
            alpha: scale on the std of the resampled coefficients (>= 0).
            generator: the source of randomness; the same state gives the same candidates.
        """
        if n < 1:
            raise ValueError(f"Number of candidates must be >= 1, got {n}.")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}.")
        candidates: dict[str, Tensor] = {}
        for name, mask in self.masks(threshold).items():
            center, z = self.center[name], self.coefficients[name]
            if bool(mask.all()):
                candidates[name] = center.expand(n, *center.shape).clone()
                continue
            replaced = z[~mask]  # (k,)
            mu = 0.0 if self.zero_mean else replaced.mean()
            sigma = alpha * replaced.std(unbiased=False)
            noise = torch.randn((n, *z.shape), generator=generator, device=generator.device)
            noise = noise.to(z.device)
            delta = torch.where(mask, 0.0, mu + sigma * noise - z)  # (n, *shape), 0 on kept coefficients
            candidates[name] = center + self.codec.decode(delta, z.shape)
        return candidates
