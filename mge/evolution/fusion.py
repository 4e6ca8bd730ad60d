"""Fusion: crossover of two parents in the DCT latent space (spec section 3).

A child takes its coefficients from two parents ``a`` and ``b`` in one of three ways:

- ``"uniform"``: every coefficient comes from ``a`` or ``b`` with probability 1/2, independently
  (uniform crossover, Syswerda 1989, "Uniform crossover in genetic algorithms", ICGA);
- ``"band"``: the low frequencies come from ``a`` and the high ones from ``b``. A coefficient's
  frequency is the mean, over the axes the codec transforms, of its DCT index on that axis divided
  by the axis length minus one (axes of length 1 carry no frequency and are left out), so it lies
  in [0, 1]: 0 is the DC coefficient, 1 the highest frequency on every axis. Coefficients with
  frequency <= ``band_cut`` are "low". Level sets of an index sum are the diagonals of JPEG's
  zig-zag order, so the low band is a corner of the coefficient array. Per granularity: ``"kernel"``
  gives every conv kernel the same 2-D split of its spatial frequencies, ``"tensor"`` splits the
  N-D spectrum (channel axes included), ``"flat"`` splits the 1-D spectrum of the flattened tensor;
- ``"interpolate"``: ``(1 - w) a + w b`` coefficient by coefficient, ``w`` in [0, 1] fixed or drawn
  uniformly per child.

The DCT is linear, so interpolation is the same in the weight domain; uniform and band fusion are
not. As in :class:`mge.generator.LatentSampler`, a child is written as ``a + decode(z_child - z_a)``,
so whatever it takes from ``a`` stays bit for bit where ``z_child = z_a`` on a whole tensor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, get_args

import torch
from torch import Tensor

from mge.latent import LatentCodec

Fusion = Literal["uniform", "band", "interpolate"]
FUSIONS: tuple[str, ...] = get_args(Fusion)


def band_frequency(shape: torch.Size | tuple[int, ...], codec: LatentCodec) -> Tensor:
    """Normalised frequency in [0, 1] of every DCT coefficient of a parameter of ``shape`` (see the module docstring).

    Args:
        shape: the parameter's shape (no batch axis).
        codec: fixes the axes the DCT runs over.

    Returns:
        A float32 tensor of ``shape``.

    >>> band_frequency((3, 3), LatentCodec("tensor")).tolist()
    [[0.0, 0.25, 0.5], [0.25, 0.5, 0.75], [0.5, 0.75, 1.0]]
    """
    shape = tuple(shape)
    if codec.granularity == "flat":
        n = math.prod(shape)  # 1 for a 0-d tensor
        return (torch.arange(n, dtype=torch.float32) / max(n - 1, 1)).reshape(shape)
    frequency = torch.zeros(shape, dtype=torch.float32)
    axes = [d for d in codec.transform_dims(shape) if shape[d] > 1]
    for d in axes:
        n = shape[d]
        index = torch.arange(n, dtype=torch.float32) / (n - 1)  # (n,)
        frequency = frequency + index.reshape(n, *([1] * (-d - 1)))  # broadcast along axis d
    return frequency / max(len(axes), 1)


def fuse_uniform(za: Tensor, zb: Tensor, generator: torch.Generator) -> Tensor:
    """Each coefficient of ``za`` (F, *shape) or ``zb`` (F, *shape), picked by a fair coin per coefficient."""
    coin = torch.rand(za.shape, generator=generator, device=generator.device).to(za.device) < 0.5
    return torch.where(coin, za, zb)


def fuse_band(za: Tensor, zb: Tensor, frequency: Tensor, cut: float) -> Tensor:
    """Coefficients of ``za`` (F, *shape) where ``frequency`` (*shape) <= ``cut``, of ``zb`` elsewhere."""
    return torch.where(frequency.to(za.device) <= cut, za, zb)


def fuse_interpolate(za: Tensor, zb: Tensor, weight: Tensor) -> Tensor:
    """``(1 - w) za + w zb`` with one weight per child, ``weight`` (F,)."""
    w = weight.to(za.device, za.dtype).reshape(-1, *([1] * (za.dim() - 1)))  # (F, 1, ...)
    return (1 - w) * za + w * zb


def fuse(
    parents_a: Mapping[str, Tensor],
    parents_b: Mapping[str, Tensor],
    codec: LatentCodec,
    *,
    kind: Fusion,
    generator: torch.Generator,
    band_cut: float = 0.5,
    weight: float | None = None,
) -> dict[str, Tensor]:
    """F children, the i-th a fusion of ``parents_a``'s and ``parents_b``'s i-th members.

    Args:
        parents_a: stacked parameters ``{name: (F, *shape)}``; gives the low band in ``"band"`` fusion.
        parents_b: the same names and shapes.
        codec: the latent space the fusion happens in.
        kind: ``"uniform"``, ``"band"`` or ``"interpolate"``.
        generator: draws the uniform masks and, when ``weight`` is None, the interpolation weights.
        band_cut: the highest frequency in [0, 1] taken from ``parents_a`` in ``"band"`` fusion.
        weight: interpolation weight w in [0, 1]; None draws w ~ U(0, 1) per child.

    Returns:
        The children ``{name: (F, *shape)}`` in float32.
    """
    if kind not in FUSIONS:
        raise ValueError(f"Unknown fusion kind {kind!r}. Valid values are {list(FUSIONS)}; set evolution.fusion.")
    children: dict[str, Tensor] = {}
    n = next(iter(parents_a.values())).shape[0]
    weights = torch.full((n,), 0.0 if weight is None else float(weight))  # (F,), one per child, for all its tensors
    if kind == "interpolate" and weight is None:
        weights = torch.rand(n, generator=generator, device=generator.device).cpu()
    for name, a in parents_a.items():
        a = a.to(torch.float32)
        shape = a.shape[1:]
        za, zb = codec.encode(a, shape), codec.encode(parents_b[name], shape)  # (F, *shape)
        if kind == "uniform":
            z = fuse_uniform(za, zb, generator)
        elif kind == "band":
            z = fuse_band(za, zb, band_frequency(shape, codec), band_cut)
        else:
            z = fuse_interpolate(za, zb, weights)
        children[name] = a + codec.decode(z - za, shape)
    return children
