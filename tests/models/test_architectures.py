"""Every registered architecture: one forward, vmap over parameter sets, registry errors.

Parametrised over ``list_models()`` like torchvision's and timm's ``test_models.py``,
so a new architecture is tested as soon as it registers (and fails until it gets a
row in ``NATURAL_INPUTS``).
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.func import functional_call, vmap

from mge.models import build_model, list_models, register_model

NUM_CLASSES = 5
BATCH = 2

# name -> list of (in_channels, image_size, arch kwargs): each model's natural inputs,
# with narrow widths where the default network would make the suite slow on CPU.
NATURAL_INPUTS: dict[str, list[tuple[int, int, dict[str, object]]]] = {
    "mlp": [(1, 8, {})],
    "digits_cnn": [(1, 8, {})],
    "lenet5": [(1, 28, {}), (3, 32, {})],
    "resnet18": [(3, 32, {"base_channels": 16})],
    "conv4": [(3, 84, {})],
    "resnet12": [(3, 84, {"channels": [8, 16, 32, 64]})],
}

CASES = [
    pytest.param(name, c, s, kw, id=f"{name}-{c}x{s}x{s}")
    for name in list_models()
    for c, s, kw in NATURAL_INPUTS.get(name, [(0, 0, {})])  # (0, 0) fails test_every_model_has_an_input
]


def _build(name: str, in_channels: int, image_size: int, kwargs: dict[str, object]) -> nn.Module:
    if name not in NATURAL_INPUTS:
        pytest.fail(f"Model '{name}' is registered but has no entry in NATURAL_INPUTS; add its natural input.")
    torch.manual_seed(0)
    return build_model(name, num_classes=NUM_CLASSES, in_channels=in_channels, image_size=image_size, **kwargs)


def test_every_model_has_an_input() -> None:
    assert sorted(NATURAL_INPUTS) == list_models()


@pytest.mark.parametrize("name, in_channels, image_size, kwargs", CASES)
def test_forward(name: str, in_channels: int, image_size: int, kwargs: dict[str, object]) -> None:
    model = _build(name, in_channels, image_size, kwargs).eval()
    x = torch.randn(BATCH, in_channels, image_size, image_size)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
    assert logits.shape == (BATCH, NUM_CLASSES)
    assert not torch.isnan(logits).any()
    assert isinstance(model.feature_dim, int)
    assert features.shape == (BATCH, model.feature_dim)
    assert isinstance(model.head, nn.Linear)
    assert (model.head.in_features, model.head.out_features) == (model.feature_dim, NUM_CLASSES)
    torch.testing.assert_close(model.head(features), logits)


@pytest.mark.parametrize("name, in_channels, image_size, kwargs", CASES)
def test_vmap_over_parameter_sets(name: str, in_channels: int, image_size: int, kwargs: dict[str, object]) -> None:
    """The discriminator/evolution code evaluates a population of weights with vmap(functional_call)."""
    model = _build(name, in_channels, image_size, kwargs).eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    n_copies = 3
    stacked = {k: torch.stack([v + 0.01 * torch.randn_like(v) for _ in range(n_copies)]) for k, v in params.items()}
    x = torch.randn(BATCH, in_channels, image_size, image_size)

    def logits_of(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (p, buffers), (x,))

    with torch.no_grad():
        batched = vmap(logits_of, in_dims=(0, None))(stacked, x)  # (n_copies, BATCH, NUM_CLASSES)
        looped = torch.stack([logits_of({k: v[i] for k, v in stacked.items()}, x) for i in range(n_copies)])
    assert batched.shape == (n_copies, BATCH, NUM_CLASSES)
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name, in_channels, image_size, kwargs", CASES)
def test_deterministic_init_and_json_kwargs(
    name: str, in_channels: int, image_size: int, kwargs: dict[str, object]
) -> None:
    """Checkpoint metadata stores kwargs as JSON; rebuilding must give the same parameters."""
    first = _build(name, in_channels, image_size, kwargs).state_dict()
    second = _build(name, in_channels, image_size, json.loads(json.dumps(kwargs))).state_dict()
    assert list(first) == list(second)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)


@pytest.mark.parametrize(
    "name, in_channels, image_size, expected",
    [
        ("lenet5", 1, 28, 61_706),  # the classic count: 16x5x5 maps before C5
        ("lenet5", 3, 32, 62_006),
        ("resnet18", 3, 32, 11_173_962),  # 11.2M, as for torchvision's resnet18 minus the 7x7 stem
        ("resnet12", 3, 84, 12_430_730),  # 12.4M, as reported by Lee et al. (2019)
    ],
)
def test_default_parameter_counts(name: str, in_channels: int, image_size: int, expected: int) -> None:
    model = build_model(name, num_classes=10, in_channels=in_channels, image_size=image_size)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_duplicate_registration_raises() -> None:
    with pytest.raises(ValueError, match="already registered under the name 'mlp'"):
        register_model("mlp")(lambda *, num_classes, in_channels, image_size: nn.Linear(1, 1))
    assert list_models().count("mlp") == 1


def test_builder_without_common_args_is_rejected() -> None:
    with pytest.raises(TypeError, match="keyword-only arguments"):
        register_model("not_a_model")(lambda num_classes, in_channels, image_size: nn.Linear(1, 1))
    assert "not_a_model" not in list_models()


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="Unknown model 'vgg16'") as err:
        build_model("vgg16", num_classes=10, in_channels=3, image_size=32)
    for name in list_models():
        assert f"'{name}'" in str(err.value)
    assert "model=<name>" in str(err.value)


def test_unknown_kwarg_is_named() -> None:
    with pytest.raises(ValueError, match=r"Unknown argument\(s\) \['depth'\] for model 'resnet12'"):
        build_model("resnet12", num_classes=5, in_channels=3, image_size=84, depth=12)


@pytest.mark.parametrize(
    "name, image_size, kwargs",
    [("lenet5", 8, {}), ("conv4", 8, {}), ("resnet12", 15, {}), ("digits_cnn", 2, {})],
)
def test_too_small_image_is_named(name: str, image_size: int, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=rf"Invalid value {image_size} for argument image_size of model '{name}'"):
        build_model(name, num_classes=10, in_channels=1, image_size=image_size, **kwargs)


@pytest.mark.parametrize(
    "name, kwargs, arg",
    [
        ("mlp", {"num_classes": 0}, "num_classes"),
        ("resnet12", {"channels": [64, 160, 320]}, "channels"),
        ("digits_cnn", {"hidden_dim": 1.5}, "hidden_dim"),
        ("lenet5", {"conv1_padding": -1}, "conv1_padding"),
    ],
)
def test_bad_argument_is_named(name: str, kwargs: dict[str, object], arg: str) -> None:
    common: dict[str, object] = {"num_classes": 10, "in_channels": 3, "image_size": 84}
    common.update({k: v for k, v in kwargs.items() if k in common})
    extra = {k: v for k, v in kwargs.items() if k not in common}
    with pytest.raises(ValueError, match=rf"for argument {arg} of model '{name}'"):
        build_model(name, **common, **extra)  # type: ignore[arg-type]
