"""MGE's generator: candidate sampling in the DCT latent space, one round, the run state and the loop."""

from mge.generator.feedback import KNOBS, AcceptanceController
from mge.generator.loop import RoundCallback, generate
from mge.generator.round import Proposal, propose
from mge.generator.sampler import LatentSampler
from mge.generator.settings import GeneratorSettings
from mge.generator.state import GenerationState, decode_rng, encode_rng
from mge.generator.targets import select_targets

__all__ = [
    "KNOBS",
    "AcceptanceController",
    "GenerationState",
    "GeneratorSettings",
    "LatentSampler",
    "Proposal",
    "RoundCallback",
    "decode_rng",
    "encode_rng",
    "generate",
    "propose",
    "select_targets",
]
