"""A small digits CNN trained in about a second, its test set in pixels, and members around it.

Package-scoped: every test file of this folder shares one training run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mge.adversarial import to_pixels
from mge.data import DigitsDataModule, build_datamodule
from mge.models import build_model

MEAN, STD = DigitsDataModule.mean, DigitsDataModule.std


@dataclass(frozen=True)
class Trained:
    model: nn.Module  # carries the seed's weights
    seed: dict[str, Tensor]  # the seed's parameters {name: (*shape)}
    x: Tensor  # (N, 1, 8, 8) test pixels in [0, 1]
    y: Tensor  # (N,)


@pytest.fixture(scope="package", autouse=True)
def _one_thread():
    """These tensors are tiny: on 2 shared cores, intra-op threads cost far more than they save
    (measured: training 0.8 s with one thread, 27 s with two under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_digits_cnn(seed: int, epochs: int = 12) -> tuple[nn.Module, Tensor, Tensor]:
    """A digits_cnn trained with Adam on the digits training split; returns it and the test pixels."""
    torch.manual_seed(seed)
    dm = build_datamodule("digits", root="data", discriminator_size=300)
    dm.setup()
    train = [dm.train_set[i] for i in range(len(dm.train_set))]
    xs, ys = torch.stack([x for x, _ in train]), torch.tensor([y for _, y in train])  # (1137, 1, 8, 8), (1137,)
    model = build_model("digits_cnn", num_classes=10, in_channels=1, image_size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(ys)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(xs[idx]), ys[idx]).backward()
            optimizer.step()
    model.eval()
    x, y = dm.split_tensors("test")
    return model, to_pixels(x, MEAN, STD), y


@pytest.fixture(scope="package")
def trained() -> Trained:
    model, x, y = train_digits_cnn(seed=0)
    for p in model.parameters():
        p.requires_grad_(False)
    return Trained(model, {k: v.detach().clone() for k, v in model.named_parameters()}, x, y)


def stack(*param_sets: dict[str, Tensor]) -> dict[str, Tensor]:
    """``{name: (B, *shape)}`` from B parameter dicts."""
    return {k: torch.stack([p[k] for p in param_sets]) for k in param_sets[0]}


def noisy_members(seed: dict[str, Tensor], n: int, scale: float = 0.1, rng_seed: int = 1) -> dict[str, Tensor]:
    """``n`` members around the seed: relative Gaussian noise on every tensor, like a generated pool."""
    g = torch.Generator().manual_seed(rng_seed)
    return {k: v + scale * v.std() * torch.randn(n, *v.shape, generator=g) for k, v in seed.items()}
