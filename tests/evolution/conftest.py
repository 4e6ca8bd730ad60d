"""A quick digits seed, its discriminator and a small MGE pool: the real tensors evolution runs on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from mge.data import build_datamodule
from mge.discriminator import Discriminator, DiscriminatorSettings
from mge.evolution import Probe
from mge.generator import LatentSampler, select_targets
from mge.latent import LatentCodec
from mge.models import build_model


@dataclass(frozen=True)
class DigitsSetup:
    model: nn.Module  # holds the seed's weights
    seed: dict[str, Tensor]  # the seed's target tensors
    codec: LatentCodec
    discriminator: Discriminator
    probe: Probe  # the discriminator split
    test: tuple[Tensor, Tensor]
    pool: dict[str, Tensor]  # {name: (8, *shape)} MGE members the discriminator accepted


@pytest.fixture(scope="package", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: on the 2 shared cores of the dev box, more threads ran 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def digits(_one_thread: None) -> DigitsSetup:
    """digits_cnn trained for 15 epochs on scikit-learn's digits (about 3 s) and an 8-member MGE pool."""
    dm = build_datamodule("digits", root="data", discriminator_size=300)
    dm.setup()
    xs, ys = zip(*dm.train_dataloader(), strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("digits_cnn", num_classes=10, in_channels=1, image_size=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(15):
        order = torch.randperm(len(y), generator=g)
        for idx in order.split(64):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    seed = {name: p.detach().clone() for name, p in model.named_parameters() if name in select_targets(model)}
    x_disc, y_disc = dm.split_tensors("discriminator")
    discriminator = Discriminator(
        model, seed, x_disc, y_disc, DiscriminatorSettings(max_distribution_distance=0.1, accuracy_tolerance=0.02)
    )
    codec = LatentCodec("kernel")
    candidates = LatentSampler(seed, codec).sample(32, threshold=0.99, alpha=1.0, generator=g)
    accepted = discriminator.score(candidates).accepted.nonzero().flatten()[:8]
    assert len(accepted) == 8, "the fixture needs 8 accepted MGE members"
    pool = {name: t[accepted] for name, t in candidates.items()}
    return DigitsSetup(
        model=model,
        seed=seed,
        codec=codec,
        discriminator=discriminator,
        probe=Probe(x_disc, y_disc, num_classes=10),
        test=dm.split_tensors("test"),
        pool=pool,
    )
