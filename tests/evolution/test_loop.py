"""The evolution loop on a real digits seed: gated children, exact resume, counted forward passes."""

import pytest
import torch

from mge.evaluation import predict_batched
from mge.evolution import EvolutionSettings, EvolutionState, Population, Probe, evolve, initial_population
from mge.pool.files import tensor_hash

SMALL = {"population_size": 8, "children": 8, "initial_threshold": 0.99, "min_threshold": 0.95}


def start(digits, settings, rng_seed=0):
    return initial_population(
        digits.pool, discriminator=digits.discriminator, probe=digits.probe, settings=settings, rng_seed=rng_seed
    )


def run(digits, settings, population, state, on_generation=None):
    return evolve(
        population,
        state,
        settings=settings,
        codec=digits.codec,
        discriminator=digits.discriminator,
        probe=digits.probe,
        on_generation=on_generation,
    )


def population_hash(population: Population) -> str:
    return tensor_hash({**population.params, "accuracy": population.accuracy, "predictions": population.predictions})


def test_short_evolution_on_digits_runs_end_to_end_and_its_children_pass_the_discriminator(digits):
    settings = EvolutionSettings(generations=3, fusion="uniform", selection="elitist", fitness="disagreement", **SMALL)
    population, state = start(digits, settings)
    n_disc, n_probe = digits.discriminator.inputs.shape[0], digits.probe.inputs.shape[0]
    assert state.forward_passes == 8 * (n_disc + n_probe)
    calls = []
    final, final_state = run(digits, settings, population, state, lambda s, p, log: calls.append((s, p, log)))

    assert state.generation == 0  # the caller's state is left as it was
    assert final_state.generation == 3 and [log.generation for _, _, log in calls] == [1, 2, 3]
    assert final_state.history == [log for _, _, log in calls]
    assert calls[-1][1] is final and calls[-1][0] == final_state
    assert final_state.candidates == 24 and final_state.accepted == sum(log.accepted for _, _, log in calls)
    assert final_state.forward_passes == state.forward_passes + sum(log.forward_passes for _, _, log in calls)
    for log in final_state.history:
        most = log.candidates * n_disc + log.accepted * n_probe  # every child reached the data test
        assert log.accepted * (n_disc + n_probe) <= log.forward_passes <= most
        assert sum(log.candidates_by_operator.values()) == 8

    children = [i for i, m in enumerate(final_state.members) if m.generation > 0]
    assert children, "no child survived: the gating below would test nothing"
    index = torch.tensor(children)
    scores = digits.discriminator.score({k: v[index] for k, v in final.params.items()})
    assert scores.accepted.all()
    torch.testing.assert_close(scores.accuracy, final.accuracy[index])
    assert (final.accuracy >= digits.discriminator.accuracy_bound).all()
    # the stored probe predictions are the members' own
    assert torch.equal(final.predictions, predict_batched(digits.model, final.params, digits.probe.inputs))
    # lineage: parents are earlier members, thresholds inside the bounds
    known = {m.id for m in state.members} | {f"g{g}-{i}" for g in (1, 2, 3) for i in range(8)}
    for m in final_state.members:
        assert set(m.parents) <= known
        assert len(m.parents) == {"initial": 0, "mutation": 1}.get(m.operator, 2)
        assert settings.min_threshold <= m.threshold <= settings.max_threshold


@pytest.mark.parametrize(
    "variant",
    [
        {"fusion": "band", "selection": "tournament", "fitness": "sharing", "tournament_size": 2},
        {"fusion": "interpolate", "selection": "elitist", "fitness": "disagreement", "diversity_weight": 3.0},
    ],
)
def test_resume_from_a_saved_generation_reaches_the_same_final_population(digits, variant):
    settings = EvolutionSettings(generations=4, fusion_probability=0.7, **SMALL, **variant)
    population, state = start(digits, settings, rng_seed=3)
    saved = {}

    def save(s: EvolutionState, p: Population, log) -> None:
        # what a pool writer keeps: the state as JSON and copies of the tensors
        params = {k: v.clone() for k, v in p.params.items()}
        saved[s.generation] = (s.to_json(), Population(params, p.accuracy.clone(), p.predictions.clone()))

    straight, straight_state = run(digits, settings, population, state, save)
    text, at_2 = saved[2]
    resumed, resumed_state = run(digits, settings, at_2, EvolutionState.from_json(text))

    assert population_hash(resumed) == population_hash(straight)
    assert resumed_state.members == straight_state.members
    assert resumed_state.rng == straight_state.rng
    for key in ("generation", "forward_passes", "candidates", "accepted"):
        assert getattr(resumed_state, key) == getattr(straight_state, key)
    assert population_hash(straight) != population_hash(at_2)  # generations 3 and 4 changed the population


def test_another_rng_seed_gives_another_population(digits):
    settings = EvolutionSettings(generations=1, **SMALL)
    one = run(digits, settings, *start(digits, settings, rng_seed=0))[0]
    two = run(digits, settings, *start(digits, settings, rng_seed=1))[0]
    assert population_hash(one) != population_hash(two)


def test_forward_pass_budget_stops_the_run_between_generations(digits):
    settings = EvolutionSettings(generations=5, max_forward_passes=8 * 600 + 1, **SMALL)
    population, state = start(digits, settings)
    assert state.forward_passes == 8 * 600
    _, final_state = run(digits, settings, population, state)
    assert final_state.generation == 1  # the first generation ran, then the budget was spent
    assert final_state.forward_passes > settings.max_forward_passes


def test_a_population_that_does_not_match_its_state_is_refused(digits):
    settings = EvolutionSettings(generations=1, **SMALL)
    population, state = start(digits, settings)
    state.members = state.members[:-1]
    with pytest.raises(ValueError, match="8 members.*7 members"):
        run(digits, settings, population, state)


def test_with_the_discriminator_split_as_probe_children_are_not_run_twice(digits):
    settings = EvolutionSettings(generations=2, **SMALL)
    probe = Probe.discriminator_split(digits.discriminator, num_classes=10)
    n_disc = digits.discriminator.inputs.shape[0]
    population, state = initial_population(
        digits.pool, discriminator=digits.discriminator, probe=probe, settings=settings, rng_seed=0
    )
    assert state.forward_passes == 8 * n_disc  # one pass over the split serves quality and diversity
    final, final_state = evolve(
        population, state, settings=settings, codec=digits.codec, discriminator=digits.discriminator, probe=probe
    )
    for log in final_state.history:
        assert log.accepted * n_disc <= log.forward_passes <= log.candidates * n_disc
    assert any(m.generation > 0 for m in final_state.members), "no child survived: nothing below is tested"
    full = predict_batched(digits.model, final.params, digits.discriminator.inputs)
    assert torch.equal(final.predictions, full)  # complete predictions, from the discriminator's scoring
    assert torch.equal(final.accuracy, (full == digits.discriminator.labels).double().mean(dim=1))
