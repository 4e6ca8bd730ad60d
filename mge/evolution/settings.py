"""Everything that decides what an E-MGE run does (``conf/evolution``), checked when it is made."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mge.evolution.fitness import FITNESS_KINDS
from mge.evolution.fusion import FUSIONS
from mge.evolution.selection import SELECTIONS


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"evolution.{name} must be an integer >= {minimum}, got {value!r}. "
            f"Set evolution.{name}=<integer >= {minimum}>."
        )


def _check_float(name: str, value: object, low: float, high: float, *, open_low: bool = False) -> None:
    bracket = "(" if open_low else "["
    valid = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (low < value if open_low else low <= value)
        and value <= high
    )
    if not valid:
        interval = f"{bracket}{low}, {high}]" if math.isfinite(high) else f"{bracket}{low}, inf)"
        raise ValueError(
            f"evolution.{name} must be a finite number in {interval}, got {value!r}. "
            f"Set evolution.{name}=<number in {interval}>."
        )


def _check_choice(name: str, value: object, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(
            f"Unknown evolution.{name} {value!r}. Valid values are {list(valid)}; set evolution.{name}=<one of them>."
        )


@dataclass(frozen=True)
class EvolutionSettings:
    """Sizes, operators, fitness, selection and budget of an E-MGE run.

    A (mu + lambda) scheme: each generation draws ``children`` children from uniformly chosen
    parents, the discriminator gates them, and ``population_size`` survivors are selected among the
    parents and the accepted children.
    """

    population_size: int = 16  # mu: members kept after every generation (a larger initial pool is cut to it)
    children: int = 32  # lambda: children drawn per generation, all scored by the discriminator
    generations: int = 20  # the run stops after this generation (a resumed run continues up to it)
    max_forward_passes: int | None = None  # budget in member x example forward passes; checked between generations
    fusion_probability: float = 0.5  # a child is a fusion of two parents with this probability, else a mutant of one
    mutation_after_fusion: float = 0.5  # probability that a fused child is mutated as well
    fusion: str = "uniform"  # "uniform", "band" or "interpolate" (mge/evolution/fusion.py)
    band_cut: float = 0.5  # band fusion: the highest normalised frequency (0 = DC, 1 = top) from the first parent
    interpolation_weight: float | None = None  # interpolation fusion: w in [0, 1]; None draws w ~ U(0, 1) per child
    fitness: str = "disagreement"  # diversity term: "disagreement" or "sharing" (mge/evolution/fitness.py)
    diversity_weight: float = 1.0  # lambda in fitness = accuracy + lambda x diversity (same units for both kinds)
    selection: str = "elitist"  # "elitist" (best mu of parents + children) or "tournament"
    tournament_size: int = 3  # members per tournament
    initial_threshold: float = 0.99  # t of an initial member whose own t is not given
    min_threshold: float = 0.9  # children's t is clipped to [min_threshold, max_threshold]
    max_threshold: float = 0.9999  # below 1: t = 1 would make clones and stop the self-adaptation of 1 - t
    threshold_step: float = 0.5  # log-normal step on a child's resampled energy 1 - t (mge/evolution/mutation.py)
    alpha: float = 1.0  # scale on the std of resampled coefficients in a mutation
    zero_mean: bool = False  # mutations resample around 0 instead of the replaced coefficients' mean

    def __post_init__(self) -> None:
        _check_int("population_size", self.population_size, 1)
        _check_int("children", self.children, 1)
        _check_int("generations", self.generations, 1)
        _check_int("tournament_size", self.tournament_size, 1)
        if self.max_forward_passes is not None:
            _check_int("max_forward_passes", self.max_forward_passes, 1)
        for name in ("fusion_probability", "mutation_after_fusion", "band_cut"):
            _check_float(name, getattr(self, name), 0.0, 1.0)
        if self.interpolation_weight is not None:
            _check_float("interpolation_weight", self.interpolation_weight, 0.0, 1.0)
        for name in ("diversity_weight", "threshold_step", "alpha"):
            _check_float(name, getattr(self, name), 0.0, math.inf)
        _check_float("min_threshold", self.min_threshold, 0.0, 1.0, open_low=True)
        _check_float("max_threshold", self.max_threshold, self.min_threshold, 1.0)
        if self.max_threshold >= 1.0:
            raise ValueError(
                f"evolution.max_threshold must be below 1 (t = 1 clones the parent and freezes the "
                f"self-adapted 1 - t at 0), got {self.max_threshold}. Set evolution.max_threshold=0.9999."
            )
        _check_float("initial_threshold", self.initial_threshold, self.min_threshold, self.max_threshold)
        _check_choice("fusion", self.fusion, FUSIONS)
        _check_choice("fitness", self.fitness, FITNESS_KINDS)
        _check_choice("selection", self.selection, SELECTIONS)
        if not isinstance(self.zero_mean, bool):
            raise ValueError(f"evolution.zero_mean must be true or false, got {self.zero_mean!r}.")
