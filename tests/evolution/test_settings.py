"""Settings refuse bad values with a message naming the field, the value and the fix."""

import math

import pytest

from mge.evolution import EvolutionSettings


def test_defaults_are_valid():
    EvolutionSettings()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"population_size": 0}, r"evolution.population_size must be an integer >= 1, got 0"),
        ({"children": 2.0}, r"evolution.children must be an integer"),
        ({"generations": True}, r"evolution.generations must be an integer"),
        ({"max_forward_passes": 0}, r"evolution.max_forward_passes"),
        ({"fusion_probability": math.nan}, r"evolution.fusion_probability must be a finite number in \[0.0, 1.0\]"),
        ({"mutation_after_fusion": 1.5}, r"evolution.mutation_after_fusion.*got 1.5.*Set evolution"),
        ({"band_cut": -0.1}, r"evolution.band_cut"),
        ({"interpolation_weight": 2.0}, r"evolution.interpolation_weight"),
        ({"diversity_weight": math.inf}, r"evolution.diversity_weight must be a finite number in \[0.0, inf\)"),
        ({"threshold_step": -1.0}, r"evolution.threshold_step"),
        ({"alpha": "1"}, r"evolution.alpha.*got '1'"),
        ({"min_threshold": 0.0}, r"evolution.min_threshold must be a finite number in \(0.0, 1.0\]"),
        ({"max_threshold": 1.0}, r"evolution.max_threshold must be below 1"),
        ({"min_threshold": 0.95, "initial_threshold": 0.9}, r"evolution.initial_threshold.*\[0.95, 0.9999\]"),
        ({"fusion": "crossover"}, r"Unknown evolution.fusion 'crossover'. Valid values are \['uniform', 'band'"),
        ({"fitness": "entropy"}, r"Unknown evolution.fitness 'entropy'"),
        ({"selection": "roulette"}, r"Unknown evolution.selection 'roulette'"),
        ({"tournament_size": 0}, r"evolution.tournament_size"),
    ],
)
def test_bad_settings_name_the_field_the_value_and_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EvolutionSettings(**kwargs)
