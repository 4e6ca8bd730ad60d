"""MGE's discriminator: parameter-distribution and performance tests on candidates."""

from mge.discriminator.discriminator import (
    Discriminator,
    DiscriminatorScores,
    DiscriminatorSettings,
    wasserstein_1,
)

__all__ = ["Discriminator", "DiscriminatorScores", "DiscriminatorSettings", "wasserstein_1"]
