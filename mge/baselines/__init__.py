"""The cheap ways of making a pool that every table compares MGE against (spec section 5).

- :mod:`~mge.baselines.noise`: Gaussian weight noise around the seed, matched to a reference pool or
  at given distances (the noise curve), optionally gated;
- :mod:`~mge.baselines.snapshots`: snapshots of one training run;
- :mod:`~mge.baselines.independent`: K independently trained seeds stacked into one pool.
"""

from mge.baselines.independent import SeedStack, stack_seeds
from mge.baselines.noise import (
    GatedNoise,
    NoiseMember,
    NoiseTargets,
    draw_noise,
    gated_noise,
    matched_noise,
    noise_curve,
)
from mge.baselines.snapshots import SNAPSHOT_INDEX, SnapshotCallback, load_snapshots, snapshot_filename

__all__ = [
    "SNAPSHOT_INDEX",
    "GatedNoise",
    "NoiseMember",
    "NoiseTargets",
    "SeedStack",
    "SnapshotCallback",
    "draw_noise",
    "gated_noise",
    "load_snapshots",
    "matched_noise",
    "noise_curve",
    "snapshot_filename",
    "stack_seeds",
]
