"""The discriminator accepts the seed and rejects NaN, shifted and broken candidates."""

import pytest
import torch

from mge.discriminator import Discriminator, DiscriminatorSettings, wasserstein_1
from mge.generator import select_targets
from mge.pool import load_seed


@pytest.fixture(scope="module")
def setup(digits_seed_dir):
    from mge.cli.generate import seed_datamodule

    seed = load_seed(digits_seed_dir)
    dm = seed_datamodule(seed, None)
    dm.setup("fit")
    x, y = dm.split_tensors("discriminator")
    model = seed.build()
    targets = select_targets(model)
    seed_params = {k: seed.state_dict[k] for k in targets}
    disc = Discriminator(
        model, seed_params, x, y, DiscriminatorSettings(max_distribution_distance=0.1, accuracy_tolerance=0.02)
    )
    return disc, seed_params


def stack(*candidates):
    return {k: torch.stack([c[k] for c in candidates]) for k in candidates[0]}


def test_seed_itself_is_accepted_with_zero_distance(setup):
    disc, seed = setup
    scores = disc.score(stack(seed))
    assert scores.accepted.tolist() == [True]
    assert scores.distribution_distance.item() == pytest.approx(0.0, abs=1e-7)
    assert scores.accuracy.item() == pytest.approx(disc.seed_accuracy)
    assert disc.seed_accuracy > 0.8  # the fixture seed is a working model


def test_non_finite_candidate_is_rejected_and_not_evaluated(setup):
    disc, seed = setup
    broken = {k: v.clone() for k, v in seed.items()}
    name = next(iter(broken))
    broken[name].view(-1)[0] = float("nan")
    scores = disc.score(stack(seed, broken))
    assert scores.finite.tolist() == [True, False]
    assert scores.accepted.tolist() == [True, False]
    assert torch.isnan(scores.accuracy[1])


def test_distribution_shifted_candidate_is_rejected(setup):
    disc, seed = setup
    shifted = {k: v * 3.0 for k, v in seed.items()}  # same predictions for a ReLU net, different weights
    scores = disc.score(stack(shifted))
    assert scores.finite.item()
    assert scores.distribution_distance.item() > disc.settings.max_distribution_distance
    assert not scores.accepted.item()


def test_low_accuracy_candidate_with_the_seed_distribution_is_rejected(setup):
    disc, seed = setup
    g = torch.Generator().manual_seed(0)
    # permuting each tensor keeps its weight distribution exactly, but destroys the function
    permuted = {k: v.flatten()[torch.randperm(v.numel(), generator=g)].reshape(v.shape) for k, v in seed.items()}
    scores = disc.score(stack(permuted))
    assert scores.distribution_distance.item() == pytest.approx(0.0, abs=1e-6)
    assert scores.accuracy.item() < disc.accuracy_bound
    assert not scores.accepted.item()


def test_wasserstein_of_equal_samples_is_the_mean_gap_of_order_statistics():
    ref = torch.tensor([0.0, 1.0, 2.0, 3.0])
    cands = torch.tensor([[3.0, 2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    assert wasserstein_1(cands, ref).tolist() == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_distribution_distance": 0}, "max_distribution_distance"),
        ({"accuracy_tolerance": 2}, "fraction"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
    ],
)
def test_bad_settings_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiscriminatorSettings(**kwargs)
