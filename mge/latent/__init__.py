"""Latent codec: model parameters <-> orthonormal DCT-II coefficients."""

from mge.latent.codec import GRANULARITIES, Granularity, LatentCodec, dct_nd, idct_nd, keep_mask, keep_masks

__all__ = ["GRANULARITIES", "Granularity", "LatentCodec", "dct_nd", "idct_nd", "keep_mask", "keep_masks"]
