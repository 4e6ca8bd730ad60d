"""Image-classification datamodules, looked up by name.

Every datamodule is imported here, so a name is valid as soon as ``mge.data`` is imported (a
name that only registers when its module happens to be imported gives the confusing
"unknown model" errors timm's issue tracker is full of).

Example:
    >>> from mge.data import build_datamodule
    >>> dm = build_datamodule("digits", root="data", discriminator_size=300)
    >>> dm.setup()
    >>> x, y = dm.split_tensors("test", limit=4)
    >>> tuple(x.shape), y.dtype
    ((4, 1, 8, 8), torch.int64)
"""

from __future__ import annotations

import inspect
from typing import Any

from mge.data.base import ClassificationDataModule, TransformedSubset
from mge.data.cifar10 import CIFAR10DataModule
from mge.data.digits import DigitsDataModule
from mge.data.gtsrb import GTSRBDataModule
from mge.data.mini_imagenet import MiniImageNet, MiniImageNetDataModule
from mge.data.mnist import FashionMNISTDataModule, MNISTDataModule

__all__ = [
    "DATAMODULES",
    "CIFAR10DataModule",
    "ClassificationDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "GTSRBDataModule",
    "MNISTDataModule",
    "MiniImageNet",
    "MiniImageNetDataModule",
    "TransformedSubset",
    "build_datamodule",
    "list_datasets",
]


def _registry(*classes: type[ClassificationDataModule]) -> dict[str, type[ClassificationDataModule]]:
    """Key each class by its ``name``; two classes claiming one name is a bug, so it raises."""
    registry: dict[str, type[ClassificationDataModule]] = {}
    for cls in classes:
        if cls.name in registry:
            raise ValueError(
                f"Dataset name {cls.name!r} is used by both {registry[cls.name].__name__} and {cls.__name__}."
            )
        registry[cls.name] = cls
    return registry


DATAMODULES: dict[str, type[ClassificationDataModule]] = _registry(
    DigitsDataModule,
    MNISTDataModule,
    FashionMNISTDataModule,
    CIFAR10DataModule,
    GTSRBDataModule,
    MiniImageNetDataModule,
)


def list_datasets() -> list[str]:
    """Return the valid dataset names, sorted."""
    return sorted(DATAMODULES)


def build_datamodule(name: str, **kwargs: Any) -> ClassificationDataModule:
    """Build the datamodule registered under ``name``.

    Args:
        name: One of :func:`list_datasets`.
        **kwargs: Constructor arguments of :class:`ClassificationDataModule` (``root``, ``batch_size``, ...).

    Raises:
        ValueError: ``name`` is not registered, or a constructor argument is invalid.
    """
    if name not in DATAMODULES:
        raise ValueError(f"Unknown dataset {name!r}. Valid values are {list_datasets()}. Pick one with dataset=<name>.")
    cls = DATAMODULES[name]
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(f"Unknown argument(s) {unknown} for dataset {name!r}. Valid arguments are {valid}.")
    return cls(**kwargs)
