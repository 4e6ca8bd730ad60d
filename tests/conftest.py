"""Shared fixtures: composed Hydra configs shrunk for tests, and one small trained seed.

Like the lightning-hydra-template's conftest: a session-scoped fixture composes the real config
and shrinks the run (cpu, few epochs, no logger, no progress bars); function-scoped fixtures
point the output folder at ``tmp_path`` and clear Hydra's global state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from hydra.core.global_hydra import GlobalHydra

from tests.helpers import QUIET_TRAIN, SHARED_DATA, compose_config


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def _restore_rng_state():
    """Tests may seed torch; restore its RNG so test order never matters."""
    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)


@pytest.fixture(scope="session")
def digits_seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits_cnn seed trained for a few epochs by the real ``train`` function (about 10 s)."""
    from mge.cli.train import train

    out = tmp_path_factory.mktemp("digits_seed")
    cfg = compose_config(
        "train",
        [*QUIET_TRAIN, "trainer.max_epochs=8", "callbacks=none"],
        out,
    )
    train(cfg)
    GlobalHydra.instance().clear()
    return out


@pytest.fixture
def no_cifar_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept fake CIFAR-10 batches, whose md5 sums cannot match the official ones.

    torchvision checks the batches through ``CIFAR10._check_integrity`` and the meta file through
    ``torchvision.datasets.cifar.check_integrity``; both are patched, nothing else.
    """
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)


@pytest.fixture
def shared_data() -> Path:
    """The real MNIST/FashionMNIST folder beside the checkout; skips where it is absent."""
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present beside the dev/CI checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fewshot_pools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Class-split digits seeds (digits 0-4): seed 0, its MGE pool of 6, and seeds 1-2 as an independent pool."""
    from mge.runs import BaselineSettings, make_baseline
    from mge.runs.baselines import IndependentSettings
    from tests.helpers import class_split_seed, mge_pool_of

    root = tmp_path_factory.mktemp("fewshot")
    seeds = [class_split_seed(root / f"seed{s}", seed=s) for s in range(3)]
    return {
        "seed": seeds[0],
        "MGE": mge_pool_of(seeds[0], root / "mge"),
        "independent": make_baseline(
            BaselineSettings(
                IndependentSettings(runs=[str(s) for s in seeds[1:]]),
                seed_model=seeds[0],
                pool_dir=root / "independent",
                device="cpu",
            )
        ).pool.root,
    }
