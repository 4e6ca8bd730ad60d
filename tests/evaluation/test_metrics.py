"""Batched evaluation equals the one-by-one loop; metrics match hand-computed values."""

import itertools

import pytest
import torch

from mge.evaluation import (
    mistake_iou,
    novelty,
    pairwise_disagreement,
    predict_batched,
    predict_one_by_one,
    relative_l2,
    summary,
)
from mge.models import build_model


def test_batched_predictions_equal_the_one_by_one_loop():
    torch.manual_seed(0)
    model = build_model("lenet5", num_classes=10, in_channels=1, image_size=28).eval()
    params = {k: v.unsqueeze(0) + 0.05 * torch.randn(5, *v.shape) for k, v in model.named_parameters()}
    x = torch.randn(37, 1, 28, 28)
    batched = predict_batched(model, params, x, batch_size=16, models_per_chunk=2)
    looped = predict_one_by_one(model, params, x, batch_size=16)
    assert batched.shape == (5, 37)
    assert torch.equal(batched, looped)
    # the loop restored the model's own weights
    assert torch.equal(
        predict_one_by_one(model, {k: v[None] for k, v in model.named_parameters()}, x)[0], model(x).argmax(-1)
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


def test_relative_l2_and_summary():
    seed = {"w": torch.tensor([3.0, 4.0])}
    params = {"w": torch.tensor([[3.0, 4.0], [3.0, 9.0]])}
    assert relative_l2(params, seed).tolist() == pytest.approx([0.0, 1.0])
    s = summary(torch.tensor([1.0, 2.0, 3.0, 10.0]))
    assert s["mean"] == 4.0 and s["median"] == 2.0 and s["min"] == 1.0 and s["max"] == 10.0


@pytest.mark.parametrize(
    ("arch", "in_channels", "size", "kwargs"),
    [
        ("digits_cnn", 1, 8, {}),
        ("mlp", 1, 8, {}),
        ("conv4", 3, 32, {"hidden_channels": 8}),
        ("resnet18", 3, 32, {"base_channels": 8}),
        ("resnet12", 3, 32, {"channels": [8, 8, 16, 16]}),
    ],
)
def test_batched_predictions_equal_the_loop_for_every_architecture(arch, in_channels, size, kwargs):
    torch.manual_seed(1)
    model = build_model(arch, num_classes=5, in_channels=in_channels, image_size=size, **kwargs).eval()
    for _buffer_name, buffer in model.named_buffers():  # non-trivial BatchNorm statistics
        if buffer.is_floating_point():
            buffer.uniform_(0.5, 1.5)
    params = {k: v.unsqueeze(0) + 0.05 * torch.randn(4, *v.shape) for k, v in model.named_parameters()}
    x = torch.randn(9, in_channels, size, size)
    assert torch.equal(
        predict_batched(model, params, x, batch_size=4, models_per_chunk=3), predict_one_by_one(model, params, x)
    )
