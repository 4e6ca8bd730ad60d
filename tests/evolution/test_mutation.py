"""Mutation keeps each member's high-energy coefficients; thresholds are inherited geometrically."""

import math

import pytest
import torch

from mge.evolution import inherit_threshold, mutate
from mge.latent import LatentCodec, keep_mask


def members() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"conv.weight": torch.randn(3, 8, 3, 5, 5, generator=g), "fc.weight": torch.randn(3, 10, 32, generator=g)}


@pytest.mark.parametrize("granularity", ["kernel", "tensor", "flat"])
def test_mutation_keeps_the_high_energy_coefficients_of_each_member_at_its_own_threshold(granularity):
    codec = LatentCodec(granularity)
    params = members()
    thresholds = torch.tensor([0.8, 0.95, 0.99], dtype=torch.float64)
    mutants = mutate(params, thresholds, codec, alpha=1.0, zero_mean=False, generator=torch.Generator().manual_seed(1))
    for name, w in params.items():
        shape = w.shape[1:]
        for i, t in enumerate(thresholds.tolist()):
            z_parent, z_child = codec.encode(w[i], shape), codec.encode(mutants[name][i], shape)
            kept = keep_mask(z_parent.square(), t)
            torch.testing.assert_close(z_child[kept], z_parent[kept], atol=1e-5, rtol=0)
            assert (z_child[~kept] - z_parent[~kept]).abs().max() > 1e-3  # the rest was redrawn
            assert kept.float().mean() < 1.0
    # a lower threshold resamples more of the member
    moved = [(mutants[n][i] - params[n][i]).norm() / params[n][i].norm() for n in params for i in range(3)]
    assert moved[0] > moved[2] and moved[3] > moved[5]


def test_mutation_is_seeded_and_handles_no_member():
    codec = LatentCodec("kernel")
    t = torch.full((3,), 0.9, dtype=torch.float64)
    one = mutate(members(), t, codec, alpha=1.0, zero_mean=False, generator=torch.Generator().manual_seed(2))
    two = mutate(members(), t, codec, alpha=1.0, zero_mean=False, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(one[k], two[k]) for k in one)
    empty = mutate(
        {k: v[:0] for k, v in members().items()}, t[:0], codec, alpha=1.0, zero_mean=False, generator=torch.Generator()
    )
    assert empty["fc.weight"].shape == (0, 10, 32)


def test_child_threshold_is_the_geometric_mean_of_the_parents_resampled_energy():
    parents = torch.tensor([[0.99, 0.99], [0.9, 0.999], [0.95, 0.95]], dtype=torch.float64)
    t = inherit_threshold(parents, torch.zeros(3), step=0.5, min_threshold=0.5, max_threshold=0.9999)
    assert t.tolist() == pytest.approx([0.99, 1 - math.sqrt(0.1 * 0.001), 0.95])
    up = inherit_threshold(parents[:1], torch.ones(1), step=0.5, min_threshold=0.5, max_threshold=0.9999)
    assert 1 - up.item() == pytest.approx(0.01 * math.exp(0.5))


def test_child_threshold_is_clipped_to_the_bounds():
    parents = torch.tensor([[0.9, 0.9], [0.9, 0.9]], dtype=torch.float64)
    t = inherit_threshold(parents, torch.tensor([-50.0, 50.0]), step=1.0, min_threshold=0.8, max_threshold=0.999)
    assert t.tolist() == pytest.approx([0.999, 0.8])


def test_resampled_coefficients_follow_each_members_replaced_coefficients():
    codec = LatentCodec("flat")
    g = torch.Generator().manual_seed(3)
    scale = torch.tensor([1.0, 10.0]).view(2, 1)
    params = {"w": torch.randn(2, 4000, generator=g) * scale}  # two members, their spectra 10x apart
    thresholds = torch.tensor([0.5, 0.5], dtype=torch.float64)
    mutants = mutate(params, thresholds, codec, alpha=1.0, zero_mean=False, generator=g)
    for i in range(2):
        z_parent, z_child = codec.encode(params["w"][i], (4000,)), codec.encode(mutants["w"][i], (4000,))
        redrawn = ~keep_mask(z_parent.square(), 0.5)
        want, got = z_parent[redrawn], z_child[redrawn]
        assert got.std() == pytest.approx(want.std(unbiased=False).item(), rel=0.1)
        assert abs(got.mean() - want.mean()) < 0.1 * want.std()
