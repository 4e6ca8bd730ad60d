"""MGE's discriminator: parameter-distribution and performance tests on candidates."""

from mge.discriminator.discriminator import (
    Discriminator,
    DiscriminatorScores,
    DiscriminatorSettings,
    min_correct,
    wasserstein_1,
)

__all__ = ["Discriminator", "DiscriminatorScores", "DiscriminatorSettings", "min_correct", "wasserstein_1"]
