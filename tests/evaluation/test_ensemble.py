"""Ensemble metrics and calibration match hand-computed values, whether fed at once or chunk by chunk."""

import math

import pytest
import torch

from mge.evaluation.calibration import expected_calibration_error
from mge.evaluation.ensemble import EnsembleAccumulator, ensemble_metrics, majority_vote_of_logits, pool_size_grid

# 3 members x 3 examples x 3 classes, given as probabilities (logits = their logs).
PROBS = torch.tensor(
    [
        # example 0 (label 0): one confident member for 0, two lukewarm for 1
        [[0.98, 0.01, 0.01], [0.40, 0.50, 0.10], [0.40, 0.50, 0.10]],
        # example 1 (label 2): one vote each; class 2 has the largest summed probability
        [[0.50, 0.20, 0.30], [0.10, 0.50, 0.40], [0.10, 0.35, 0.55]],
        # example 2 (label 0): everyone says 1
        [[0.35, 0.55, 0.10], [0.35, 0.55, 0.10], [0.35, 0.55, 0.10]],
    ],
    dtype=torch.float64,
).transpose(0, 1)  # (B, N, C)
LABELS = torch.tensor([0, 2, 0])


def test_soft_and_majority_vote_on_a_hand_example():
    metrics, _ = ensemble_metrics(PROBS.log(), LABELS, orderings=0)
    # soft vote: example 0 -> class 0 (1.78 > 1.01), example 1 -> class 2 (1.25), example 2 -> class 1
    assert metrics.soft_vote_accuracy == pytest.approx(2 / 3)
    # majority: example 0 -> class 1 (2 votes), example 1 -> a 3-way tie won by class 2's summed
    # probability (not class 0, the lowest index), example 2 -> class 1
    assert metrics.majority_vote_accuracy == pytest.approx(1 / 3)
    assert metrics.members == 3


def test_nll_and_ece_of_the_soft_vote_on_a_hand_example():
    metrics, _ = ensemble_metrics(PROBS.log(), LABELS, orderings=0)
    p_true = [(0.98 + 0.40 + 0.40) / 3, (0.30 + 0.40 + 0.55) / 3, 0.35]
    assert metrics.soft_vote_nll == pytest.approx(-sum(math.log(p) for p in p_true) / 3)
    # confidences: 1.78/3 = 0.593 (right) and 0.55 (wrong) share the bin (8/15, 9/15];
    # 1.25/3 = 0.417 (right) is alone in (6/15, 7/15]
    bin_8 = abs((1 + 0) - (1.78 / 3 + 0.55))
    bin_6 = abs(1 - 1.25 / 3)
    assert metrics.soft_vote_ece == pytest.approx((bin_8 + bin_6) / 3)


def test_ece_is_zero_when_confidence_matches_accuracy_and_one_when_confidently_wrong():
    probs = torch.tensor([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probs, torch.tensor([0, 0, 0, 1])) == pytest.approx(0.0)
    assert expected_calibration_error(torch.tensor([[1.0, 0.0]] * 3), torch.tensor([1, 1, 1])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="num_bins"):
        expected_calibration_error(probs, torch.tensor([0, 0, 0, 1]), num_bins=0)


def test_majority_vote_ties_go_to_the_higher_summed_probability_then_the_lower_class():
    # two members, one vote each for 0 and 1
    unequal = torch.tensor([[[0.6, 0.4]], [[0.2, 0.8]]]).log()  # class 1 sums to 1.2 > 0.8
    equal = torch.tensor([[[0.7, 0.3]], [[0.3, 0.7]]]).log()  # both sum to 1.0
    assert ensemble_metrics(unequal, torch.tensor([1]), orderings=0)[0].majority_vote_accuracy == 1.0
    assert ensemble_metrics(equal, torch.tensor([0]), orderings=0)[0].majority_vote_accuracy == 1.0


def test_nll_stays_finite_where_the_true_class_probability_underflows():
    logits = torch.tensor([[[0.0, -1000.0]], [[0.0, -1000.0]]])
    metrics, _ = ensemble_metrics(logits, torch.tensor([1]), orderings=0)
    assert metrics.soft_vote_nll == pytest.approx(1000.0)


def random_pool(b: int = 9, n: int = 40, c: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, c, generator=g) * 2, torch.randint(0, c, (n,), generator=g)


def test_chunks_of_members_give_the_same_result_as_the_whole_pool():
    logits, labels = random_pool()
    whole, whole_curve = ensemble_metrics(logits, labels, orderings=3, seed=1)
    acc = EnsembleAccumulator(labels, 9, orderings=3, seed=1)
    for chunk in logits.split([4, 1, 4]):
        acc.update(chunk)
    assert acc.metrics().to_dict() == pytest.approx(whole.to_dict())
    assert whole_curve is not None
    assert torch.equal(acc.curve().soft_vote_accuracy, whole_curve.soft_vote_accuracy)
    assert torch.equal(acc.curve().majority_vote_accuracy, whole_curve.majority_vote_accuracy)


def test_curve_at_each_size_is_the_ensemble_of_the_first_members_and_at_size_b_the_full_ensemble():
    logits, labels = random_pool()
    full, curve = ensemble_metrics(logits, labels, sizes=[1, 2, 5, 9], orderings=3, seed=2)
    assert curve is not None
    assert curve.sizes == [1, 2, 5, 9] and curve.soft_vote_accuracy.shape == (3, 4)
    assert len({tuple(o.tolist()) for o in curve.order}) == 3  # distinct orderings
    for r in range(3):
        for k, size in enumerate(curve.sizes):
            subset, _ = ensemble_metrics(logits[curve.order[r, :size]], labels, orderings=0)
            assert curve.soft_vote_accuracy[r, k].item() == pytest.approx(subset.soft_vote_accuracy)
            assert curve.majority_vote_accuracy[r, k].item() == pytest.approx(subset.majority_vote_accuracy)
        assert curve.soft_vote_accuracy[r, -1].item() == pytest.approx(full.soft_vote_accuracy)
        assert curve.majority_vote_accuracy[r, -1].item() == pytest.approx(full.majority_vote_accuracy)
    summary = curve.to_dict()
    assert summary["soft_vote_accuracy"]["mean"][-1] == pytest.approx(full.soft_vote_accuracy)  # type: ignore[index]
    assert summary["soft_vote_accuracy"]["std"][-1] == pytest.approx(0.0)  # type: ignore[index]


def test_accumulator_refuses_too_many_members_and_reading_before_the_pool_is_complete():
    logits, labels = random_pool(b=3)
    acc = EnsembleAccumulator(labels, 2)
    with pytest.raises(ValueError, match="num_members=2"):
        acc.update(logits)
    acc.update(logits[:1])
    with pytest.raises(ValueError, match="seen 1 of num_members=2"):
        acc.metrics()
    with pytest.raises(ValueError, match="within \\[1, 2\\]"):
        EnsembleAccumulator(labels, 2, sizes=[1, 3])


def test_default_size_grid_spans_one_to_the_pool_size():
    assert pool_size_grid(5) == [1, 2, 3, 4, 5]
    grid = pool_size_grid(1000)
    assert grid[0] == 1 and grid[-1] == 1000 and grid == sorted(set(grid)) and len(grid) <= 16


def test_majority_vote_of_logits_is_the_accumulators_vote():
    # mge's one majority-vote rule: the accuracy of majority_vote_of_logits is the accumulator's figure
    votes = majority_vote_of_logits(PROBS.log())
    assert votes.tolist() == [1, 2, 1]  # most votes; the 3-way tie of example 1 goes to the largest summed probability
    metrics, _ = ensemble_metrics(PROBS.log(), LABELS, orderings=0)
    assert (votes == LABELS).double().mean().item() == metrics.majority_vote_accuracy
