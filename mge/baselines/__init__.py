"""The cheap ways of making a pool that every table compares MGE against (spec section 5)."""

from mge.baselines.noise import (
    GatedNoise,
    NoiseMember,
    NoiseTargets,
    draw_noise,
    gated_noise,
    matched_noise,
    noise_curve,
)

__all__ = [
    "GatedNoise",
    "NoiseMember",
    "NoiseTargets",
    "draw_noise",
    "gated_noise",
    "matched_noise",
    "noise_curve",
]
