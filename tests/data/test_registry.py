"""The dataset registry: names, metadata and the error for an unknown name."""

from __future__ import annotations

import re

import pytest

from mge.data import DATAMODULES, ClassificationDataModule, build_datamodule, list_datasets

EXPECTED = {
    # name: (total_classes, in_channels, image_size)
    "digits": (10, 1, 8),
    "mnist": (10, 1, 28),
    "fashion_mnist": (10, 1, 28),
    "cifar10": (10, 3, 32),
    "gtsrb": (43, 3, 32),
    "mini_imagenet": (64, 3, 84),
}


def test_registry_holds_exactly_the_expected_names() -> None:
    assert set(DATAMODULES) == set(EXPECTED)
    assert list_datasets() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_class_metadata(name: str) -> None:
    cls = DATAMODULES[name]
    assert issubclass(cls, ClassificationDataModule)
    assert cls.name == name
    assert (cls.total_classes, cls.in_channels, cls.image_size) == EXPECTED[name]
    assert len(cls.mean) == len(cls.std) == cls.in_channels


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_build_datamodule_constructs_without_touching_disk(name: str, tmp_path) -> None:
    # Construction must be cheap and lazy: nothing is read before setup().
    dm = build_datamodule(name, root=tmp_path / "absent", batch_size=7, split_seed=3)
    assert isinstance(dm, DATAMODULES[name])
    assert dm.batch_size == 7 and dm.split_seed == 3
    assert dm.hparams["dataset"] == name
    assert not (tmp_path / "absent").exists()


def test_unknown_name_lists_valid_values() -> None:
    expected = f"Unknown dataset 'imagenet'. Valid values are {list_datasets()}. Pick one with dataset=<name>."
    with pytest.raises(ValueError, match=re.escape(expected)):
        build_datamodule("imagenet", root=".")
