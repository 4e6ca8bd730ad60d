"""Batched evaluation (many members as one wide network) equals running each member alone."""

import logging

import pytest
import torch
from torch import nn

from mge.evaluation import (
    batched_features,
    batched_logits,
    predict_batched,
    predict_one_by_one,
    wide_path_failure,
)
from mge.models import build_model, list_models

# Small instances of every registered architecture: (in_channels, image_size, kwargs).
ZOO = {
    "conv4": (3, 32, {"hidden_channels": 8}),
    "digits_cnn": (1, 8, {}),
    "lenet5": (1, 28, {}),
    "mlp": (1, 8, {}),
    "resnet12": (3, 32, {"channels": [8, 8, 16, 16]}),
    "resnet18": (3, 32, {"base_channels": 8}),
}


def test_the_zoo_covers_every_registered_architecture():
    assert sorted(ZOO) == list_models()


def members(arch: str, n: int = 4, seed: int = 1) -> tuple[nn.Module, dict[str, torch.Tensor], torch.Tensor]:
    """An architecture with non-trivial BatchNorm statistics, ``n`` distinct parameter sets and inputs."""
    in_channels, size, kwargs = ZOO[arch]
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=5, in_channels=in_channels, image_size=size, **kwargs).eval()
    for buffer in model.buffers():
        if buffer.is_floating_point():
            buffer.uniform_(0.5, 1.5)
    params = {k: v.unsqueeze(0) + 0.05 * torch.randn(n, *v.shape) for k, v in model.named_parameters()}
    return model, params, torch.randn(9, in_channels, size, size)


def one_by_one(model: nn.Module, params: dict[str, torch.Tensor], method: str, x: torch.Tensor) -> torch.Tensor:
    """``model.<method>(x)`` for each member in turn, stacked: the reference for the batched path."""
    rows = []
    original = {k: v.clone() for k, v in model.state_dict().items()}
    for i in range(next(iter(params.values())).shape[0]):
        model.load_state_dict({k: v[i] for k, v in params.items()}, strict=False)
        with torch.no_grad():
            rows.append(getattr(model, method)(x[i] if x.dim() == 5 else x))
    model.load_state_dict(original)
    return torch.stack(rows)


@pytest.mark.parametrize("arch", sorted(ZOO))
def test_every_architecture_runs_on_the_wide_path_not_the_vmap_fallback(arch):
    model, params, x = members(arch)
    assert wide_path_failure(model, params, x) is None


@pytest.mark.parametrize("arch", sorted(ZOO))
def test_predictions_logits_and_features_equal_the_loop_for_every_architecture(arch):
    model, params, x = members(arch)
    assert torch.equal(
        predict_batched(model, params, x, batch_size=4, models_per_chunk=3), predict_one_by_one(model, params, x)
    )
    with torch.no_grad():
        logits = batched_logits(model, params, x, batch_size=4, models_per_chunk=3)
        features = batched_features(model, params, x, batch_size=4, models_per_chunk=3)
    torch.testing.assert_close(logits, one_by_one(model, params, "forward", x), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(features, one_by_one(model, params, "forward_features", x), rtol=1e-4, atol=1e-4)
    assert features.shape == (4, 9, model.feature_dim)


def test_batched_predictions_equal_the_loop_across_tiles_and_chunks():
    model, params, _ = members("lenet5", n=5, seed=0)
    x = torch.randn(37, 1, 28, 28)
    batched = predict_batched(model, params, x, batch_size=16, models_per_chunk=2)
    assert batched.shape == (5, 37)
    assert torch.equal(batched, predict_one_by_one(model, params, x, batch_size=16))
    # the loop restored the model's own weights
    own = {k: v[None] for k, v in model.named_parameters()}
    assert torch.equal(predict_one_by_one(model, own, x)[0], model(x).argmax(-1))


@pytest.mark.parametrize("arch", ["lenet5", "resnet18", "mlp"])
def test_per_member_inputs_give_each_member_its_own_examples(arch):
    model, params, x = members(arch)
    own = torch.randn(4, *x.shape)  # (B, N, C, H, W): e.g. adversarial inputs made against each member
    with torch.no_grad():
        logits = batched_logits(model, params, own, batch_size=4, models_per_chunk=3, inputs_per_member=True)
    torch.testing.assert_close(logits, one_by_one(model, params, "forward", own), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["lenet5", "conv4"])
def test_input_gradients_of_every_member_equal_its_own_gradient(arch):
    model, params, x = members(arch)
    own = torch.randn(4, *x.shape, requires_grad=True)
    logits = batched_logits(model, params, own, batch_size=4, models_per_chunk=3, inputs_per_member=True)
    labels = torch.arange(x.shape[0]) % 5
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.repeat(4), reduction="sum")
    (grad,) = torch.autograd.grad(loss, own)
    for i in range(4):
        model.load_state_dict({k: v[i] for k, v in params.items()}, strict=False)
        xi = own[i].detach().clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(nn.functional.cross_entropy(model(xi), labels, reduction="sum"), xi)
        torch.testing.assert_close(grad[i], expected, rtol=1e-4, atol=1e-5)


def test_per_member_inputs_must_match_the_number_of_members():
    model, params, x = members("lenet5")
    with pytest.raises(ValueError, match="B = 4 members"):
        batched_logits(model, params, torch.randn(3, *x.shape), inputs_per_member=True)


class ReflectPadNet(nn.Module):
    """A layer the wide path has no form for (reflect padding), so it must fall back, and say so."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect")
        self.head = nn.Linear(4 * 8 * 8, 3)
        self.feature_dim = 4 * 8 * 8

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.conv(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def test_an_unsupported_layer_falls_back_to_vmap_with_a_logged_reason_and_the_same_results(caplog):
    torch.manual_seed(0)
    model = ReflectPadNet().eval()
    params = {k: v.unsqueeze(0) + 0.05 * torch.randn(3, *v.shape) for k, v in model.named_parameters()}
    x = torch.randn(5, 1, 8, 8)
    with caplog.at_level(logging.WARNING, logger="mge"):
        reason = wide_path_failure(model, params, x)
    assert reason is not None and "conv" in reason
    assert "falls back to vmap" in caplog.text
    assert torch.equal(predict_batched(model, params, x), predict_one_by_one(model, params, x))
    with torch.no_grad():
        torch.testing.assert_close(
            batched_features(model, params, x), one_by_one(model, params, "forward_features", x), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize("budget", [2**14, 2**17])  # 1 model per tile; 2-3 models side by side
def test_feature_maps_in_sub_tiles_and_vectors_in_whole_tiles_give_the_loops_predictions(monkeypatch, budget):
    import mge.evaluation.batched as batched

    # a tiny budget: LeNet-5's maps run 8-9 examples at a time, its fully connected layers on all 37
    monkeypatch.setattr(batched, "TILE_BUDGET", budget)
    batched._CACHE.clear()
    model, params, _ = members("lenet5", n=5, seed=2)
    x = torch.randn(37, 1, 28, 28)
    assert torch.equal(predict_batched(model, params, x, batch_size=100), predict_one_by_one(model, params, x))
    ((wide, _, _),) = batched._CACHE[model].values()
    assert wide is not None and len(wide.staged) == 1 and 8 <= wide.staged[0].sub < 37  # the maps were cut
    assert wide.align == 4  # 6 output channels of conv1: 4 models side by side make 24 columns
    with torch.no_grad():
        features = batched_features(model, params, x, batch_size=100)
    torch.testing.assert_close(features, one_by_one(model, params, "forward_features", x), rtol=1e-4, atol=1e-4)
    batched._CACHE.clear()


class VectorNet(nn.Module):
    """Linear layers around a BatchNorm1d, one of them left out of the stacked tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 12), nn.BatchNorm1d(12), nn.ReLU(),
            nn.Linear(12, 7), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(7, 4)
        self.feature_dim = 7

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def test_linear_layers_around_a_batchnorm_and_a_shared_linear_stay_on_the_wide_path():
    torch.manual_seed(0)
    model = VectorNet().eval()
    model.features[4].running_var.uniform_(0.5, 1.5)
    shared = "features.6."  # not generated: every member keeps the model's own tensors
    params = {
        k: v.unsqueeze(0) + 0.05 * torch.randn(4, *v.shape)
        for k, v in model.named_parameters()
        if not k.startswith(shared)
    }
    x = torch.randn(11, 1, 8, 8)
    assert wide_path_failure(model, params, x) is None
    assert torch.equal(predict_batched(model, params, x, batch_size=5), predict_one_by_one(model, params, x))
    with torch.no_grad():
        logits = batched_logits(model, params, x, batch_size=5, models_per_chunk=3)
    torch.testing.assert_close(logits, one_by_one(model, params, "forward", x), rtol=1e-4, atol=1e-4)
