"""Gaussian weight-noise pools sit exactly at their target distances, are reproducible, and can be gated."""

import pytest
import torch

from mge.baselines import NoiseTargets, draw_noise, gated_noise, matched_noise, noise_curve
from mge.discriminator import Discriminator, DiscriminatorSettings
from mge.evaluation import relative_l2, relative_l2_per_tensor
from mge.models import build_model


def digits_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("digits_cnn", num_classes=10, in_channels=1, image_size=8).eval()


def seed_targets() -> dict[str, torch.Tensor]:
    """The real target tensors of a digits_cnn: conv, linear and norm weights and biases."""
    return {k: v.detach().clone() for k, v in digits_cnn().named_parameters()}


def reference_pool(seed: dict[str, torch.Tensor], b: int = 4) -> dict[str, torch.Tensor]:
    """A stand-in for an MGE pool: each member and tensor moved by a different amount and shape of noise."""
    g = torch.Generator().manual_seed(7)
    out = {}
    for k, v in seed.items():
        scale = torch.rand(b, *[1] * v.dim(), generator=g) * 0.3
        out[k] = v + scale * v.std() * torch.rand(b, *v.shape, generator=g)  # uniform, not Gaussian
    return out


def test_matched_noise_has_the_reference_distance_for_every_member_and_tensor():
    seed = seed_targets()
    reference = reference_pool(seed)
    noise = matched_noise(seed, reference, seed=3)
    want, got = relative_l2_per_tensor(reference, seed), relative_l2_per_tensor(noise, seed)
    for k in seed:
        assert noise[k].shape == reference[k].shape and noise[k].dtype == seed[k].dtype
        assert torch.allclose(got[k], want[k], rtol=1e-2, atol=0), k
        assert (got[k] / want[k] - 1).abs().max() < 1e-5, k  # exact up to float32 rounding, not in expectation
        assert not torch.allclose(noise[k], reference[k])  # same distance, other direction
    assert torch.allclose(relative_l2(noise, seed), relative_l2(reference, seed), rtol=1e-5)


def test_noise_curve_pools_are_at_the_requested_distances_and_independent():
    seed = seed_targets()
    pools = list(noise_curve(seed, [0.01, 0.1, 0.5], members=3, seed=0))
    assert [d for d, _ in pools] == [0.01, 0.1, 0.5]
    for d, params in pools:
        for k, dist in relative_l2_per_tensor(params, seed).items():
            assert dist.shape == (3,)
            assert torch.allclose(dist, torch.full_like(dist, d), rtol=1e-4, atol=0), k
        assert torch.allclose(relative_l2(params, seed), torch.full((3,), d, dtype=torch.float64), rtol=1e-4)
    # the directions of pool 0 and pool 1 differ (independent slots), not just their scale
    k = max(seed, key=lambda n: seed[n].numel())
    u0 = (pools[0][1][k] - seed[k]).flatten(1)
    u1 = (pools[1][1][k] - seed[k]).flatten(1)
    cos = torch.nn.functional.cosine_similarity(u0, u1, dim=1)
    assert cos.abs().max() < 0.5


def test_the_same_seed_gives_the_same_noise_another_seed_other_noise_and_chunks_do_not_matter():
    seed = seed_targets()
    reference = reference_pool(seed)
    a, b, c = (matched_noise(seed, reference, seed=s) for s in (5, 5, 6))
    assert all(torch.equal(a[k], b[k]) for k in seed)
    assert not any(torch.equal(a[k], c[k]) for k in seed)
    halves = [
        draw_noise(
            seed, NoiseTargets.matching(seed, {k: v[lo:hi] for k, v in reference.items()}, first_slot=lo), seed=5
        )
        for lo, hi in ((0, 1), (1, 4))
    ]
    assert all(torch.equal(torch.cat([h[k] for h in halves]), a[k]) for k in seed)


def test_gated_noise_redraws_rejected_slots_and_the_first_attempt_is_the_ungated_draw():
    seed = seed_targets()
    name = next(iter(seed))
    targets = NoiseTargets.at_distances(seed, [0.05] * 6)

    def gate(candidates):  # passes about half of all draws, independently of the slot
        return (candidates[name] - seed[name]).flatten(1)[:, 0] > 0

    result = gated_noise(seed, targets, gate, seed=1, max_rounds=20)
    assert result.unfilled == [] and [m.slot for m in result.members] == list(range(6))
    assert gate(result.params).all()
    ungated = draw_noise(seed, targets, seed=1)
    first_try = gate(ungated)
    for m in result.members:
        assert m.achieved_distance == pytest.approx(m.target_distance, rel=1e-4)
        assert (m.rounds == 1) == bool(first_try[m.slot]) and m.attempt == m.rounds - 1
        if m.rounds == 1:  # the ungated pool is the gated pool's first attempt
            assert all(torch.equal(result.params[k][m.slot], ungated[k][m.slot]) for k in seed)
    assert not first_try.all()  # some slot needed a redraw, so the test saw one
    assert result.candidates == sum(m.candidates for m in result.members)
    summary = result.to_dict()
    assert summary["accepted"] == 6 and summary["acceptance_rate"] == pytest.approx(6 / result.candidates)


def test_gated_noise_with_the_discriminator_leaves_far_slots_unfilled_within_the_budget():
    model = digits_cnn()
    seed = seed_targets()
    x = torch.randn(50, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    settings = DiscriminatorSettings(max_distribution_distance=0.1, accuracy_tolerance=1.0)  # distribution test only
    disc = Discriminator(model, seed, x, torch.zeros(50, dtype=torch.long), settings)
    targets = NoiseTargets.at_distances(seed, [0.01, 3.0, 0.01, 3.0])
    result = gated_noise(seed, targets, lambda c: disc.score(c).accepted, seed=0, max_rounds=3, draws_per_slot=2)
    assert [m.slot for m in result.members] == [0, 2] and result.unfilled == [1, 3]
    assert disc.score(result.params).accepted.all()
    assert result.rounds == 3 and result.candidates == 2 * 4 + 2 * 2 * 2  # round 1: every slot; then the far two


def test_wrong_shapes_and_gate_outputs_are_refused_with_the_fix():
    seed = seed_targets()
    name = next(iter(seed))
    with pytest.raises(ValueError, match="pool size in front"):
        matched_noise(seed, {k: v.clone() for k, v in seed.items()})  # not stacked
    with pytest.raises(ValueError, match="one per candidate"):
        gated_noise(seed, NoiseTargets.at_distances(seed, [0.1, 0.1]), lambda c: torch.ones(1))
    with pytest.raises(ValueError, match="finite and >= 0"):
        NoiseTargets.at_distances(seed, [-0.1])
    with pytest.raises(ValueError, match="same tensors"):
        draw_noise({name: seed[name]}, NoiseTargets.at_distances(seed, [0.1]))
