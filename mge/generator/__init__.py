"""MGE's generator: candidate sampling in the DCT latent space and its feedback loop."""

from mge.generator.feedback import KNOBS, AcceptanceController
from mge.generator.loop import GenerationResult, GeneratorSettings, generate, settings_dict
from mge.generator.sampler import LatentSampler
from mge.generator.targets import select_targets

__all__ = [
    "KNOBS",
    "AcceptanceController",
    "GenerationResult",
    "GeneratorSettings",
    "LatentSampler",
    "generate",
    "select_targets",
    "settings_dict",
]
