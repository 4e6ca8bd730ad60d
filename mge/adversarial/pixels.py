"""Pixel space and the models' normalised input space.

An L-infinity budget eps is a bound on how far each *pixel* may move, with pixels in [0, 1]
(eps = 0.3 on MNIST is 30% of the intensity range, as in Madry et al. 2018). Our datamodules
return normalised tensors ``(x - mean) / std``, and the models expect them, so attacks work in
pixel space and normalise inside the model call; these two functions convert between the spaces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def _per_channel(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> tuple[Tensor, Tensor]:
    """``mean`` and ``std`` as ``(C, 1, 1)`` tensors on ``x``'s device, checked against ``x``'s channels."""
    if len(mean) != len(std):
        raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}: pass the dataset's mean and std.")
    if x.dim() < 3 or x.shape[-3] != len(mean):
        channels = f"{x.shape[-3]} channels" if x.dim() >= 3 else "no channel axis"
        raise ValueError(
            f"Images of shape {tuple(x.shape)} (..., C, H, W) have {channels} but mean and std have {len(mean)}. "
            "Pass the dataset's per-channel mean and std (e.g. DigitsDataModule.mean and .std)."
        )
    if not all(math.isfinite(s) and s > 0 for s in std) or not all(math.isfinite(m) for m in mean):
        raise ValueError(f"std must be finite and > 0 and mean finite, got mean={list(mean)}, std={list(std)}.")
    shape = (len(mean), 1, 1)
    return (
        torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape),
        torch.tensor(std, dtype=x.dtype, device=x.device).view(shape),
    )


def to_pixels(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Normalised images ``(..., C, H, W)`` back to pixels in [0, 1].

    The result is clamped to [0, 1]: undoing the normalisation leaves rounding errors of about
    1e-7 outside the range, which an attack's box constraint would otherwise "repair" and so
    perturb an eps = 0 input.
    """
    m, s = _per_channel(x, mean, std)
    return (x * s + m).clamp(0.0, 1.0)


def normalise(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Pixels ``(..., C, H, W)`` in [0, 1] to the models' input space ``(x - mean) / std``."""
    m, s = _per_channel(x, mean, std)
    return (x - m) / s


def check_pixels(x: Tensor, name: str = "inputs") -> None:
    """Refuse inputs outside [0, 1]: they are almost always normalised tensors passed by mistake."""
    if x.numel() and (not bool(torch.isfinite(x).all()) or x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{name} must be pixels in [0, 1], got values in [{x.min().item():.4g}, {x.max().item():.4g}]. "
            "Datamodules return normalised tensors: convert them with mge.adversarial.to_pixels(x, mean, std)."
        )
