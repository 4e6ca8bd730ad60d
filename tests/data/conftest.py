"""Fixtures for the data tests: the shared real data, patched md5 checks and a split-contract check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision

from mge.data import ClassificationDataModule

REPO_ROOT = Path(__file__).resolve().parents[2]
# Real MNIST and FashionMNIST in torchvision's layout, next to the checkout on dev and CI machines only.
SHARED_DATA = REPO_ROOT / ".." / "shared" / "data"


@pytest.fixture
def shared_data_root() -> Path:
    """The shared real-data folder; skips the test where it is absent (e.g. a user's checkout)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real data not found at {SHARED_DATA.resolve()}")
    return SHARED_DATA.resolve()


@pytest.fixture
def no_cifar_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept fake CIFAR-10 batches, whose md5 sums cannot match the official ones.

    torchvision checks the batches through ``CIFAR10._check_integrity`` and the meta file through
    ``torchvision.datasets.cifar.check_integrity``; both are patched, nothing else.
    """
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)


def _check_splits(dm: ClassificationDataModule, n_train_source: int, n_test: int) -> None:
    """Assert the split contract that every datamodule shares.

    Args:
        dm: A datamodule, set up or not.
        n_train_source: Size of its training set before the discriminator split is carved out.
        n_test: Size of its test split.
    """
    dm.setup()
    train, disc, test = dm.train_set, dm.discriminator_set, dm.test_set
    assert len(disc) == dm.discriminator_size
    assert len(train) == n_train_source - dm.discriminator_size
    assert len(test) == n_test
    # Train and discriminator partition the same training source; the test split comes from elsewhere.
    assert train.dataset is disc.dataset
    assert test.dataset is not train.dataset
    assert set(train.indices).isdisjoint(disc.indices)
    assert sorted([*train.indices, *disc.indices]) == list(range(n_train_source))
    size = dm.image_size
    for split, n in (("discriminator", dm.discriminator_size), ("test", n_test)):
        x, y = dm.split_tensors(split)
        assert x.shape == (n, dm.in_channels, size, size)
        assert x.dtype == torch.float32
        assert y.shape == (n,)
        assert y.dtype == torch.int64
        assert torch.isfinite(x).all()
        assert 0 <= int(y.min()) and int(y.max()) < dm.num_classes
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape[1:] == (dm.in_channels, size, size)
    assert xb.dtype == torch.float32 and yb.dtype == torch.int64


@pytest.fixture
def check_splits() -> Callable[[ClassificationDataModule, int, int], None]:
    """The split-contract assertion, as a fixture so that every dataset's tests share it."""
    return _check_splits

