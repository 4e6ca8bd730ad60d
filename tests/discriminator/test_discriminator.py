"""The discriminator accepts the seed and rejects NaN, shifted and broken candidates."""

from dataclasses import replace

import pytest
import torch

from mge.discriminator import Discriminator, DiscriminatorSettings, min_correct, wasserstein_1, wilson_lower_bound
from mge.evaluation import predict_batched
from mge.generator import select_targets
from mge.latent import LatentCodec
from mge.pool import load_seed


@pytest.fixture(scope="module")
def setup(digits_seed_dir):
    from mge.runs import seed_datamodule

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


def mixed(seed, n, max_scale, seed_value=0):
    """``n`` noisy candidates (0 to ``max_scale`` seed stds) and 4 permuted copies of the seed.

    Permuting a tensor keeps its weight distribution exactly but breaks the function, so the mix
    holds candidates that each test rejects and candidates that pass both.
    """
    g = torch.Generator().manual_seed(seed_value)
    scale = torch.linspace(0, max_scale, n)
    perms = [
        {k: v.flatten()[torch.randperm(v.numel(), generator=g)].view_as(v) for k, v in seed.items()} for _ in range(4)
    ]
    return {
        k: torch.cat([v + scale.view(-1, *[1] * v.dim()) * v.std() * torch.randn(n, *v.shape, generator=g),
                      torch.stack([p[k] for p in perms])])
        for k, v in seed.items()
    }  # fmt: skip


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
    assert not scores.accepted.item() and scores.rejected_accuracy.item()
    assert scores.examples_scored.item() < len(disc.labels)  # rejected before the end of the split


def test_wasserstein_of_equal_samples_is_the_mean_gap_of_order_statistics():
    ref = torch.tensor([0.0, 1.0, 2.0, 3.0])
    cands = torch.tensor([[3.0, 2.0, 1.0, 0.0], [1.0, 2.0, 3.0, 4.0]])
    assert wasserstein_1(cands, ref).tolist() == pytest.approx([0.0, 1.0])


def test_rows_sorted_by_numpy_hold_torchs_sorted_values():
    from mge.discriminator.discriminator import sort_rows

    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3001, generator=g).mul(0.05)
    x[:, :40] = 0.0
    x[:, 40:80] = -0.0
    x[:, 80:120] = x[:, 120:160]  # ties
    assert torch.equal(sort_rows(x), x.sort(dim=-1).values)
    assert torch.equal(sort_rows(x.double()), x.double().sort(dim=-1).values)  # torch's own sort


@pytest.mark.parametrize("bound", ["tolerance", "binomial"])
@pytest.mark.parametrize("chunk", [7, 64])
def test_early_stopping_gives_the_verdicts_of_scoring_every_example(setup, chunk, bound):
    disc, seed = setup
    candidates = mixed(seed, 24, 0.3)
    settings = replace(disc.settings, accuracy_bound=bound)
    full = Discriminator(disc.model, seed, disc.inputs, disc.labels, replace(settings, early_stop=False))
    early = Discriminator(
        disc.model, seed, disc.inputs, disc.labels, replace(settings, early_stop=True, decision_chunk=chunk)
    )
    want, got = full.score(candidates), early.score(candidates)
    assert 0 < int(want.accepted.sum()) < int(want.passed_distribution.sum())  # both verdicts occur
    assert torch.equal(got.accepted, want.accepted)
    n = len(disc.labels)
    assert bool((got.examples_scored[got.passed_distribution] <= n).all())
    assert int(got.examples_scored.sum()) < int(want.examples_scored.sum())  # it saved work
    fully = got.examples_scored == n
    torch.testing.assert_close(got.accuracy[fully], want.accuracy[fully])
    assert torch.isnan(got.accuracy[~fully]).all()


def test_binomial_bound_is_the_wilson_bound_of_the_seeds_own_count(setup):
    disc, seed = setup
    settings = replace(disc.settings, accuracy_bound="binomial", accuracy_confidence=0.9)
    binomial = Discriminator(disc.model, seed, disc.inputs, disc.labels, settings)
    n = len(disc.labels)
    assert binomial.seed_correct == round(disc.seed_accuracy * n)
    assert binomial.accuracy_bound == wilson_lower_bound(binomial.seed_correct, n, 0.9)
    assert binomial.accuracy_bound < disc.seed_accuracy
    assert binomial.min_correct == min_correct(n, binomial.accuracy_bound)


def test_without_the_performance_test_nothing_is_scored_on_data(setup):
    disc, seed = setup
    candidates = mixed(seed, 12, 3.0)
    off = Discriminator(disc.model, seed, disc.inputs, disc.labels, replace(disc.settings, accuracy_bound="none"))
    scores = off.score(candidates)
    assert off.accuracy_bound is None
    assert int(scores.examples_scored.sum()) == 0
    assert torch.equal(scores.accepted, scores.passed_distribution)
    assert 0 < int(scores.accepted.sum()) < 16


def test_every_test_can_be_switched_off(setup):
    disc, seed = setup
    settings = DiscriminatorSettings(max_distribution_distance=None, accuracy_bound="none")
    scores = Discriminator(disc.model, seed, disc.inputs, disc.labels, settings).score(mixed(seed, 4, 3.0))
    assert scores.accepted.all()
    assert torch.isnan(scores.distribution_distance).all() and torch.isnan(scores.spectral_distance).all()


def test_spectral_test_needs_the_generators_codec(setup):
    disc, seed = setup
    with pytest.raises(ValueError, match="codec"):
        Discriminator(disc.model, seed, disc.inputs, disc.labels, DiscriminatorSettings(max_spectral_distance=0.01))


def test_rejections_by_each_of_the_four_tests_add_up_to_the_rejected_candidates(setup):
    disc, seed = setup
    settings = replace(disc.settings, max_spectral_distance=0.01)
    spectral = Discriminator(disc.model, seed, disc.inputs, disc.labels, settings, codec=LatentCodec("kernel"))
    g = torch.Generator().manual_seed(0)
    broken = {k: v.clone() for k, v in seed.items()}
    next(iter(broken.values())).view(-1)[0] = float("inf")
    # white noise of 3% relative size: close in weight values, but it lifts the kernels' weak bands
    noisy = {k: v + 0.03 * v.norm() * (n := torch.randn(v.shape, generator=g)) / n.norm() for k, v in seed.items()}
    # swapping whole conv kernels keeps the weight values and every kernel's spectrum, breaks the function
    conv = next(k for k, v in seed.items() if v.dim() == 4)
    swapped = {**seed, conv: seed[conv].flip(0)}
    scores = spectral.score(stack(broken, {k: v * 3.0 for k, v in seed.items()}, noisy, swapped, seed))
    masks = [getattr(scores, f"rejected_{t}") for t in ("non_finite", "distribution", "spectral", "accuracy")]
    assert [m.nonzero().flatten().tolist() for m in masks] == [[0], [1], [2], [3]]
    assert scores.accepted.tolist() == [False, False, False, False, True]
    assert sum(int(m.sum()) for m in masks) == int((~scores.accepted).sum())


def test_exact_accepted_scores_accepted_candidates_on_the_whole_split_with_their_predictions(setup):
    disc, seed = setup
    candidates = mixed(seed, 24, 0.3)
    early = Discriminator(
        disc.model, seed, disc.inputs, disc.labels, replace(disc.settings, early_stop=True, decision_chunk=7)
    )
    plain, exact = early.score(candidates), early.score(candidates, exact_accepted=True)
    n = len(disc.labels)
    assert torch.equal(exact.accepted, plain.accepted)
    assert bool((plain.examples_scored[plain.accepted] < n).any())  # early stopping cut some accepted ones short
    assert bool((exact.examples_scored[exact.accepted] == n).all())
    rejected = exact.passed_distribution & ~exact.accepted
    assert bool((exact.examples_scored[rejected] < n).any())  # rejections still stop early
    full = predict_batched(disc.model, candidates, disc.inputs)
    accepted = exact.accepted
    assert torch.equal(exact.predictions[accepted], full[accepted])
    torch.testing.assert_close(exact.accuracy[accepted], (full[accepted] == disc.labels).double().mean(dim=1))
    for i in range(len(accepted)):  # every candidate's predictions up to where it stopped, -1 after
        k = int(plain.examples_scored[i])
        assert torch.equal(plain.predictions[i, :k], full[i, :k]) and bool((plain.predictions[i, k:] == -1).all())


def test_rejections_per_test_add_up_to_the_rejected_candidates(setup):
    disc, seed = setup
    candidates = mixed(seed, 30, 3.0, seed_value=3)
    name = next(iter(candidates))
    candidates[name][0].view(-1)[0] = float("inf")
    scores = disc.score(candidates)
    counts = [
        int(m.sum()) for m in (scores.rejected_non_finite, scores.rejected_distribution, scores.rejected_accuracy)
    ]
    assert all(c > 0 for c in counts)
    assert sum(counts) == int((~scores.accepted).sum())
    assert not bool((scores.rejected_non_finite & scores.rejected_distribution).any())


def test_min_correct_is_the_count_where_the_float32_accuracy_reaches_the_bound():
    # 1970 / 2000 = 0.985 exactly; one fewer correct falls short
    assert min_correct(2000, 0.985) == 1970
    assert min_correct(2000, 0.98500001) == 1970  # the bound rounds to float32 0.985, as the comparison sees it
    assert min_correct(2000, 0.9850001) == 1971
    assert min_correct(10, 0.0) == 0 and min_correct(10, 1.0) == 10 and min_correct(10, 1.01) == 11
    # a bound that is not representable: the count is the first whose float32 mean compares >= in torch
    bound = 2 / 3
    count = min_correct(3, bound)
    assert bool(torch.tensor([1.0] * count + [0.0] * (3 - count)).mean() >= bound)
    assert not bool(torch.tensor([1.0] * (count - 1) + [0.0] * (4 - count)).mean() >= bound)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_distribution_distance": 0}, "max_distribution_distance"),
        ({"accuracy_tolerance": 2}, "fraction"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
        ({"max_distribution_distance": float("nan")}, "finite"),
        ({"accuracy_tolerance": float("inf")}, "fraction"),
        ({"decision_chunk": 0}, "decision_chunk"),
        ({"accuracy_confidence": float("nan")}, "accuracy_confidence"),
        ({"accuracy_confidence": 1.0}, "accuracy_confidence"),
        ({"accuracy_confidence": 0.0}, "accuracy_confidence"),
        ({"accuracy_bound": "wilson"}, "accuracy_bound 'wilson' is unknown. Valid values"),
        ({"max_spectral_distance": float("nan")}, "max_spectral_distance"),
        ({"max_spectral_distance": 1.5}, "max_spectral_distance"),
        ({"max_spectral_distance": 0.0}, "max_spectral_distance"),
        ({"max_distribution_distance": "0.1"}, "max_distribution_distance"),
        ({"spectral_bands": 0}, "spectral_bands"),
    ],
)
def test_bad_settings_name_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiscriminatorSettings(**kwargs)
