"""The run state survives a JSON round trip exactly, RNG state included."""

import torch

from mge.evolution import EvolutionState, GenerationLog, Member


def test_state_json_round_trip_is_exact():
    generator = torch.Generator().manual_seed(7)
    torch.rand(3, generator=generator)
    state = EvolutionState(
        generation=2,
        rng="",
        members=[
            Member(id="g0-0", parents=(), operator="initial", generation=0, threshold=0.99),
            Member(id="g2-5", parents=("g0-0", "g1-3"), operator="band+mutation", generation=2, threshold=1 / 3),
        ],
        forward_passes=123456,
        candidates=64,
        accepted=17,
        seconds=0.1 + 0.2,
        history=[
            GenerationLog(
                generation=1,
                candidates=32,
                accepted=9,
                acceptance=9 / 32,
                candidates_by_operator={"mutation": 20, "uniform": 12},
                accepted_by_operator={"mutation": 6, "uniform": 3},
                survivors_born=4,
                best_fitness=0.98 + 1e-17,
                mean_fitness=2 / 3,
                mean_accuracy=0.97,
                diversity=0.0123,
                mean_threshold=0.985,
                forward_passes=1000,
                total_forward_passes=2000,
                seconds=1.5,
            )
        ],
    )
    state.save_generator(generator)
    text = state.to_json()
    back = EvolutionState.from_json(text)
    assert back == state
    assert back.to_json() == text
    assert isinstance(back.members[1].parents, tuple)
    assert torch.equal(back.generator().get_state(), generator.get_state())
    assert torch.equal(torch.rand(4, generator=back.generator()), torch.rand(4, generator=generator))
