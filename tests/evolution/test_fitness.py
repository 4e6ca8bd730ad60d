"""Fitness on hand-made predictions whose disagreement and sharing values are known."""

import pytest
import torch

from mge.evolution import diversity, fitness, sharing_bonus

LABELS = torch.tensor([0, 1, 2, 3])
# member 0 is right everywhere; 1 is wrong on example 3; 2 is wrong on examples 2 and 3
PREDICTIONS = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 0], [0, 1, 0, 0]])


def test_disagreement_diversity_counts_disagreeing_examples_per_other_member():
    # 0 vs 1: 1/4, 0 vs 2: 2/4, 1 vs 2: 1/4
    got = diversity(PREDICTIONS, LABELS, kind="disagreement", num_classes=4)
    assert got.tolist() == pytest.approx([(0.25 + 0.5) / 2, (0.25 + 0.25) / 2, (0.5 + 0.25) / 2])


def test_sharing_bonus_rewards_examples_few_members_solve():
    # solvers per example: 3, 3, 2, 1; worth (3 / m - 1) / 2 = 0, 0, 0.25, 1
    got = sharing_bonus(PREDICTIONS, LABELS)
    assert got.tolist() == pytest.approx([(0.25 + 1.0) / 4, 0.25 / 4, 0.0])


def test_sharing_with_lambda_b_minus_1_is_the_shared_accuracy():
    accuracy = (PREDICTIONS == LABELS).double().mean(dim=1)
    got = fitness(accuracy, PREDICTIONS, LABELS, kind="sharing", weight=2.0, num_classes=4)
    # (B / N) sum_n c_in / m_n with B = 3, N = 4
    shared = [3 / 4 * (1 / 3 + 1 / 3 + 1 / 2 + 1), 3 / 4 * (1 / 3 + 1 / 3 + 1 / 2), 3 / 4 * (1 / 3 + 1 / 3)]
    assert got.tolist() == pytest.approx(shared)


def test_identical_members_have_no_diversity_and_fitness_is_accuracy():
    same = PREDICTIONS[:1].repeat(4, 1)
    accuracy = torch.tensor([0.9, 0.8, 0.7, 0.6])
    for kind in ("disagreement", "sharing"):
        got = fitness(accuracy, same, LABELS, kind=kind, weight=5.0, num_classes=4)  # type: ignore[arg-type]
        assert got.tolist() == pytest.approx(accuracy.tolist())
    assert sharing_bonus(PREDICTIONS[:1], LABELS).tolist() == [0.0]


def test_fitness_is_quality_plus_lambda_times_diversity():
    accuracy = torch.tensor([0.5, 0.6, 0.7])
    d = diversity(PREDICTIONS, LABELS, kind="disagreement", num_classes=4)
    got = fitness(accuracy, PREDICTIONS, LABELS, kind="disagreement", weight=0.3, num_classes=4)
    torch.testing.assert_close(got, accuracy.double() + 0.3 * d)
    with pytest.raises(ValueError, match="'entropy'.*disagreement.*sharing"):
        diversity(PREDICTIONS, LABELS, kind="entropy", num_classes=4)  # type: ignore[arg-type]
