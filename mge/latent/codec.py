"""The frequency-domain latent space of MGE (spec section 2, steps 2-3).

A parameter tensor is mapped to its orthonormal DCT-II coefficients. Because the transform is
orthonormal (``norm='ortho'``), coefficient energy equals weight energy (Parseval), so an energy
threshold on coefficients is an energy threshold on the weights themselves.

Three granularities decide *which axes* the transform runs over:

- ``"tensor"``: an N-D DCT over every axis of the tensor;
- ``"flat"``:   a 1-D DCT over the flattened tensor;
- ``"kernel"``: a 2-D DCT over the spatial axes of each conv kernel (tensors of rank >= 3);
  tensors without spatial axes (linear weights, biases, norm scales) fall back to ``"tensor"``.

Every function accepts leading batch axes: the transform only touches the trailing
``len(shape)`` axes, so B candidates are transformed as one tensor operation.
torch-dct refuses float16/bfloat16, so all work is done in float32.
"""

from __future__ import annotations

import functools
from typing import Literal, get_args

import torch
import torch_dct
from torch import Tensor

Granularity = Literal["tensor", "flat", "kernel"]
GRANULARITIES: tuple[str, ...] = get_args(Granularity)


def _check_granularity(granularity: str) -> None:
    if granularity not in GRANULARITIES:
        raise ValueError(f"Unknown granularity {granularity!r}. Valid values are {list(GRANULARITIES)}.")


# Axes up to this length are transformed by a matmul with the cached DCT matrix (itself made by
# torch-dct, so the transform is the same): for short axes (3x3 kernels, channel axes) a matmul is
# many times faster than torch-dct's FFT route. Longer axes (flattened tensors) use the FFT.
MATRIX_MAX_LENGTH = 1024


@functools.lru_cache(maxsize=128)
def _dct_matrix(n: int, device: torch.device) -> Tensor:
    """(n, n) orthonormal DCT-II matrix M with dct(x) = x @ M and, M being orthogonal, idct(z) = z @ M.T."""
    return torch_dct.dct(torch.eye(n, dtype=torch.float64), norm="ortho").to(device, torch.float32)


def _transform(x: Tensor, dims: tuple[int, ...], inverse: bool) -> Tensor:
    for dim in dims:
        n = x.shape[dim]
        if n <= MATRIX_MAX_LENGTH:
            m = _dct_matrix(n, x.device)
            x = (x.movedim(dim, -1) @ (m.T if inverse else m)).movedim(-1, dim)
        else:
            f = torch_dct.idct if inverse else torch_dct.dct
            x = f(x.transpose(dim, -1), norm="ortho").transpose(dim, -1)
    return x


def dct_nd(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Orthonormal DCT-II along each axis in ``dims`` (separable, so order does not matter)."""
    return _transform(x, dims, inverse=False)


def idct_nd(z: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Inverse of :func:`dct_nd` (orthonormal DCT-III along each axis in ``dims``)."""
    return _transform(z, dims, inverse=True)


def keep_mask(energy: Tensor, threshold: float) -> Tensor:
    """Smallest set of coefficients whose energy reaches ``threshold`` of the total.

    Args:
        energy: squared coefficients of one tensor, any shape.
        threshold: t in (0, 1]; t = 1 keeps every coefficient, so the seed is reproduced exactly.

    Returns:
        A bool mask of ``energy``'s shape; ties are broken by position so the mask is deterministic.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"Energy threshold t must lie in (0, 1], got {threshold}.")
    flat = energy.reshape(-1).double()
    if threshold >= 1.0:
        return torch.ones_like(energy, dtype=torch.bool)
    order = torch.sort(flat, descending=True, stable=True).indices
    cumulative = torch.cumsum(flat[order], dim=0)
    total = cumulative[-1]
    if total <= 0:  # an all-zero tensor: nothing carries energy, keep it as it is
        return torch.ones_like(energy, dtype=torch.bool)
    # number of coefficients needed = first position where the cumulative energy reaches t * total
    n_keep = int(torch.searchsorted(cumulative, threshold * total).item()) + 1
    n_keep = min(n_keep, flat.numel())
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=energy.device)
    mask[order[:n_keep]] = True
    return mask.reshape(energy.shape)


def keep_masks(energy: Tensor, thresholds: Tensor) -> Tensor:
    """:func:`keep_mask` of every row at its own threshold, as one batched operation.

    Args:
        energy: ``(B, K)`` squared coefficients, one flattened tensor per row.
        thresholds: ``(B,)`` thresholds t in (0, 1].

    Returns:
        A ``(B, K)`` bool mask; row b equals ``keep_mask(energy[b], thresholds[b])`` exactly.
    """
    t = thresholds.double().reshape(-1, 1).to(energy.device)  # (B, 1)
    if energy.dim() != 2 or t.shape[0] != energy.shape[0]:
        raise ValueError(
            f"keep_masks needs energy (B, K) and thresholds (B,), got {tuple(energy.shape)}, {tuple(thresholds.shape)}."
        )
    if not bool(((t > 0) & (t <= 1)).all()):
        raise ValueError(f"Energy thresholds t must lie in (0, 1], got {thresholds.tolist()}.")
    flat = energy.double()
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices  # (B, K)
    cumulative = torch.cumsum(flat.gather(1, order), dim=1)
    total = cumulative[:, -1:]  # (B, 1)
    n_keep = (torch.searchsorted(cumulative, t * total) + 1).clamp(max=flat.shape[1])  # (B, 1)
    n_keep = torch.where((t >= 1) | (total <= 0), flat.shape[1], n_keep)  # keep all: t = 1, or no energy at all
    ranked = torch.arange(flat.shape[1], device=flat.device) < n_keep  # (B, K) in energy order
    return torch.zeros_like(ranked).scatter(1, order, ranked)


class LatentCodec:
    """Maps parameter tensors of fixed shapes to DCT coefficients and back.

    The codec is stateless apart from the granularity; shapes are read from the tensors. Inputs may
    carry leading batch axes as long as ``shape`` names the per-model parameter shape.

    >>> codec = LatentCodec("kernel")
    >>> w = torch.randn(6, 1, 5, 5)
    >>> torch.allclose(codec.decode(codec.encode(w, w.shape), w.shape), w, atol=1e-6)
    True
    """

    def __init__(self, granularity: Granularity = "kernel") -> None:
        _check_granularity(granularity)
        self.granularity = granularity

    def transform_dims(self, shape: torch.Size | tuple[int, ...]) -> tuple[int, ...]:
        """Axes (negative, counted from the end) the DCT runs over for a parameter of ``shape``."""
        rank = len(shape)
        if rank == 0:
            return ()
        if self.granularity == "kernel" and rank >= 3:
            return (-2, -1)
        return tuple(range(-rank, 0))

    def encode(self, weights: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
        """Coefficients of ``weights`` (..., *shape) in float32, same shape as the input."""
        x = weights.to(torch.float32)
        if self.granularity == "flat":
            batch = x.shape[: x.dim() - len(shape)]
            return dct_nd(x.reshape(*batch, -1), (-1,)).reshape(x.shape)
        return dct_nd(x, self.transform_dims(shape))

    def decode(self, coefficients: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
        """Weights (..., *shape) in float32 from their coefficients."""
        z = coefficients.to(torch.float32)
        if self.granularity == "flat":
            batch = z.shape[: z.dim() - len(shape)]
            return idct_nd(z.reshape(*batch, -1), (-1,)).reshape(z.shape)
        return idct_nd(z, self.transform_dims(shape))

    def compaction(self, weights: Tensor, threshold: float) -> float:
        """Fraction of coefficients needed to hold ``threshold`` of the energy (lower = more compact)."""
        z = self.encode(weights, weights.shape)
        return keep_mask(z.square(), threshold).float().mean().item()
