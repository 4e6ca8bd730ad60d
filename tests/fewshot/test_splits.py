"""The few-shot class table: one valid entry per dataset, leaving enough novel classes for 5-way episodes."""

from __future__ import annotations

import pytest

from mge.data import DATAMODULES, list_datasets
from mge.data.base import check_classes
from mge.fewshot import FEW_SHOT_CLASSES, few_shot_classes


def test_every_dataset_has_an_entry() -> None:
    assert sorted(FEW_SHOT_CLASSES) == list_datasets()


@pytest.mark.parametrize("name", list_datasets())
def test_entries_are_valid_data_classes_and_hold_out_at_least_five(name) -> None:
    classes = few_shot_classes(name)
    total = DATAMODULES[name].total_classes
    if classes is None:  # mini-ImageNet: held out in test.csv
        assert name == "mini_imagenet"
        return
    assert check_classes(list(classes), total, name) == classes
    assert total - len(classes) >= 5


def test_mnist_like_datasets_split_five_and_five() -> None:
    for name in ("mnist", "fashion_mnist", "digits", "cifar10"):
        assert few_shot_classes(name) == (0, 1, 2, 3, 4)


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match=r"Unknown dataset 'imagenet' for few-shot transfer. Valid values are \["):
        few_shot_classes("imagenet")
