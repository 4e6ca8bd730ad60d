"""scikit-learn digits: bundled data, fixed test split, normalisation."""

from __future__ import annotations

import pytest
import torch

from mge.data import DigitsDataModule
from mge.data.digits import DIGITS_TEST_SIZE

N_DIGITS = 1797


def test_split_contract(check_splits, tmp_path) -> None:
    # root and download are ignored: nothing is read from or written to disk.
    dm = DigitsDataModule(tmp_path / "nowhere", discriminator_size=300)
    check_splits(dm, N_DIGITS - DIGITS_TEST_SIZE, DIGITS_TEST_SIZE)
    assert not (tmp_path / "nowhere").exists()


def test_test_split_does_not_depend_on_split_seed() -> None:
    a = DigitsDataModule(".", discriminator_size=300, split_seed=0)
    b = DigitsDataModule(".", discriminator_size=300, split_seed=1)
    torch.testing.assert_close(a.split_tensors("test"), b.split_tensors("test"))
    assert not torch.equal(a.split_tensors("discriminator")[0], b.split_tensors("discriminator")[0])


def test_pixels_are_scaled_and_normalised() -> None:
    dm = DigitsDataModule(".", discriminator_size=300)
    dm.setup()
    x = dm.train_set.dataset.tensors[0]
    assert abs(float(x.mean())) < 0.05
    assert abs(float(x.std()) - 1.0) < 0.05
    # Raw 0 maps to -mean/std, raw 16 to (1 - mean)/std.
    assert float(x.min()) == pytest.approx(-dm.mean[0] / dm.std[0], abs=1e-5)
    assert float(x.max()) == pytest.approx((1 - dm.mean[0]) / dm.std[0], abs=1e-5)


def test_class_default_discriminator_size_is_too_large_for_digits() -> None:
    dm = DigitsDataModule(".")
    with pytest.raises(ValueError, match=r"discriminator_size=5000 .*digits training set \(1437 examples\)"):
        dm.setup()
