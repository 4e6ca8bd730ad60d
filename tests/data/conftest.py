"""Fixtures for the data tests: the split-contract check (shared data and md5 patches: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mge.data import ClassificationDataModule


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
        assert int(y.min()) >= 0 and int(y.max()) < dm.num_classes
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape[1:] == (dm.in_channels, size, size)
    assert xb.dtype == torch.float32 and yb.dtype == torch.int64


@pytest.fixture
def check_splits() -> Callable[[ClassificationDataModule, int, int], None]:
    """The split-contract assertion, as a fixture so that every dataset's tests share it."""
    return _check_splits
