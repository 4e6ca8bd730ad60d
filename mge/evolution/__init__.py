"""E-MGE: evolution of a population of generated models in the DCT latent space (spec section 3)."""

from mge.evolution.fusion import FUSIONS, Fusion, band_frequency, fuse, fuse_band, fuse_interpolate, fuse_uniform
from mge.evolution.mutation import inherit_threshold, mutate

__all__ = [
    "FUSIONS",
    "Fusion",
    "band_frequency",
    "fuse",
    "fuse_band",
    "fuse_interpolate",
    "fuse_uniform",
    "inherit_threshold",
    "mutate",
]
