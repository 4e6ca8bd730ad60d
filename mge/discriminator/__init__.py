"""MGE's discriminator: parameter-distribution (weights and latent spectrum) and performance tests on candidates."""

from mge.discriminator.binomial import wilson_lower_bound
from mge.discriminator.discriminator import (
    ACCURACY_BOUNDS,
    Discriminator,
    DiscriminatorScores,
    DiscriminatorSettings,
    min_correct,
    wasserstein_1,
)
from mge.discriminator.spectral import SpectralDistance, band_spectrum, frequency_bands

__all__ = [
    "ACCURACY_BOUNDS",
    "Discriminator",
    "DiscriminatorScores",
    "DiscriminatorSettings",
    "SpectralDistance",
    "band_spectrum",
    "frequency_bands",
    "min_correct",
    "wasserstein_1",
    "wilson_lower_bound",
]
