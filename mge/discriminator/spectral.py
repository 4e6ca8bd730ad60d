"""A distribution test in MGE's latent space: how much of a tensor's energy moves between DCT frequency bands.

Each target tensor is mapped to its DCT coefficients with the generator's codec (the same
granularity), and each coefficient is put in a frequency band: its normalised frequency k / n on
every transformed axis, summed over those axes and cut into ``n_bands`` equal bins (for the 5x5
kernels of LeNet-5 and four bands: u + v in 0-2, 3-4, 5-6, 7-8). A tensor's *spectrum* is the share
of its energy in each band. The spectral distance of a candidate is the worst tensor's total
variation distance between its spectrum and the seed's: the fraction of the tensor's energy that
moved between bands (0 = the same spectrum, 1 = disjoint).

Why it separates MGE from noise: MGE keeps the seed's dominant coefficients and redraws only the
weak ones, at their own scale, so the spectrum barely moves; white Gaussian weight noise of the same
size adds the same energy to every coefficient (the DCT is orthonormal), so it lifts the bands where
the seed has little energy and flattens the spectrum. The 1-Wasserstein distance between weight
values sees neither: it compares sorted values, not where the energy sits (measured in
docs/discriminator.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from mge.latent import LatentCodec


def frequency_bands(codec: LatentCodec, shape: torch.Size | tuple[int, ...], n_bands: int) -> Tensor:
    """Band index (0 = lowest frequencies) of every coefficient of a tensor of ``shape``, as a long tensor of ``shape``.

    Axes the codec does not transform do not count; a tensor with no transformed axis (a scalar)
    is one band.
    """
    if n_bands < 1:
        raise ValueError(f"n_bands must be >= 1, got {n_bands}.")
    shape = tuple(shape)
    if codec.granularity == "flat":  # one DCT over the flattened tensor: frequency is the flat position
        numel = 1
        for s in shape:
            numel *= s
        frequency = (torch.arange(numel, dtype=torch.float64) / numel).reshape(shape)
        axes = 1
    else:
        dims = codec.transform_dims(shape)
        frequency = torch.zeros(shape, dtype=torch.float64)
        for dim in dims:
            n = shape[dim]
            view = [1] * len(shape)
            view[dim] = n
            frequency = frequency + (torch.arange(n, dtype=torch.float64) / n).view(view)
        axes = max(len(dims), 1)
    return (frequency / axes * n_bands).floor().clamp(max=n_bands - 1).long()


def band_spectrum(coefficients: Tensor, bands: Tensor, n_bands: int) -> Tensor:
    """Share of energy per band ``(B, n_bands)`` of coefficients ``(B, *shape)``; all zeros for a zero tensor."""
    energy = coefficients.flatten(1).double().square()  # (B, N)
    per_band = torch.zeros(energy.shape[0], n_bands, dtype=torch.float64, device=energy.device)
    per_band.index_add_(1, bands.flatten().to(energy.device), energy)
    total = per_band.sum(dim=1, keepdim=True)
    return torch.where(total > 0, per_band / total.clamp(min=torch.finfo(torch.float64).tiny), 0.0)


class SpectralDistance:
    """Worst-tensor total variation distance between candidates' band spectra and the seed's."""

    def __init__(self, seed_params: Mapping[str, Tensor], codec: LatentCodec, n_bands: int) -> None:
        """
        Args:
            seed_params: the seed's target tensors ``{name: (*shape)}``.
            codec: the generator's codec (its granularity decides the transformed axes).
            n_bands: frequency bands per tensor.
        """
        self.codec, self.n_bands = codec, n_bands
        self._bands = {k: frequency_bands(codec, v.shape, n_bands).to(v.device) for k, v in seed_params.items()}
        self._seed = {
            k: band_spectrum(codec.encode(v.detach(), v.shape).unsqueeze(0), self._bands[k], n_bands)[0]
            for k, v in seed_params.items()
        }

    def __call__(self, candidates: Mapping[str, Tensor]) -> Tensor:
        """``(B,)`` float: the largest share of a tensor's energy that moved between bands, over the tensors."""
        per_tensor = []
        for k, c in candidates.items():
            spectrum = band_spectrum(self.codec.encode(c, c.shape[1:]), self._bands[k], self.n_bands)
            per_tensor.append((spectrum - self._seed[k]).abs().sum(dim=1) / 2)
        return torch.stack(per_tensor).amax(dim=0).float()
