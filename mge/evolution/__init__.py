"""E-MGE: evolution of a population of generated models in the DCT latent space (spec section 3)."""

from mge.evolution.fitness import FITNESS_KINDS, FitnessKind, diversity, fitness, sharing_bonus
from mge.evolution.fusion import FUSIONS, Fusion, band_frequency, fuse, fuse_band, fuse_interpolate, fuse_uniform
from mge.evolution.loop import Population, Probe, evolve, initial_population
from mge.evolution.mutation import inherit_threshold, mutate
from mge.evolution.selection import SELECTIONS, Selection, elitist, select, tournament
from mge.evolution.settings import EvolutionSettings
from mge.evolution.state import EvolutionState, GenerationLog, Member

__all__ = [
    "FITNESS_KINDS",
    "FUSIONS",
    "SELECTIONS",
    "EvolutionSettings",
    "EvolutionState",
    "FitnessKind",
    "Fusion",
    "GenerationLog",
    "Member",
    "Population",
    "Probe",
    "Selection",
    "band_frequency",
    "diversity",
    "elitist",
    "evolve",
    "fitness",
    "fuse",
    "fuse_band",
    "fuse_interpolate",
    "fuse_uniform",
    "inherit_threshold",
    "initial_population",
    "mutate",
    "select",
    "sharing_bonus",
    "tournament",
]
