"""Pool metrics match hand-computed values."""

import itertools

import pytest
import torch

from mge.evaluation import (
    disagreement_with_rest,
    mistake_iou,
    novelty,
    pairwise_disagreement,
    relative_l2,
    summary,
)


def test_mistake_iou_and_novelty_on_a_hand_example():
    labels = torch.tensor([0, 1, 2, 3])
    seed = torch.tensor([1, 1, 0, 3])  # wrong on {0, 2}
    preds = torch.tensor([[1, 1, 0, 3], [1, 0, 2, 3], [0, 1, 2, 3]])  # {0,2}, {0,1}, {}
    assert mistake_iou(preds, seed, labels).tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    other_seed = torch.tensor([1, 0, 2, 3])  # wrong on {0, 1}
    assert novelty(preds, torch.stack([seed, other_seed]), labels).tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_perfect_models_count_as_identical_mistake_sets():
    labels = torch.tensor([0, 1])
    assert mistake_iou(labels[None], labels, labels).item() == 1.0


def test_pairwise_disagreement_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    preds = torch.randint(0, 4, (6, 50), generator=g)
    brute = sum((a != b).float().mean().item() for a, b in itertools.combinations(preds, 2)) / 15
    assert pairwise_disagreement(preds, 4) == pytest.approx(brute)
    assert pairwise_disagreement(preds[:1], 4) == 0.0


def test_disagreement_with_the_rest_on_a_hand_example_and_its_mean_is_the_pairwise_disagreement():
    preds = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 2], [0, 1, 2, 2]])
    # member 0 disagrees with member 1 on 1/4 and with member 2 on 3/4 of the examples: 1/2 on average
    # member 1: 1/4 and 2/4; member 2: 3/4 and 2/4
    assert disagreement_with_rest(preds, 3).tolist() == pytest.approx([0.5, 0.375, 0.625])
    g = torch.Generator().manual_seed(2)
    preds = torch.randint(0, 5, (7, 40), generator=g)
    assert disagreement_with_rest(preds, 5).mean().item() == pytest.approx(pairwise_disagreement(preds, 5))
    assert disagreement_with_rest(preds[:1], 5).tolist() == [0.0]


def test_relative_l2_and_summary():
    seed = {"w": torch.tensor([3.0, 4.0])}
    params = {"w": torch.tensor([[3.0, 4.0], [3.0, 9.0]])}
    assert relative_l2(params, seed).tolist() == pytest.approx([0.0, 1.0])
    s = summary(torch.tensor([1.0, 2.0, 3.0, 10.0]))
    assert s["mean"] == 4.0 and s["median"] == 2.0 and s["min"] == 1.0 and s["max"] == 10.0
