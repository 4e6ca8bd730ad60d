"""scikit-learn's 8x8 handwritten digits: the smallest real dataset, for smoke tests and CPU runs.

The 1797 images ship inside scikit-learn (``sklearn.datasets.load_digits``, the UCI "Optical
Recognition of Handwritten Digits" test set), so this datamodule needs no files and no network.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.utils.data import Dataset, TensorDataset

from mge.data.base import ClassificationDataModule

# The data has no official test split; we carve one of this size with a constant seed so that
# every run, whatever its split_seed, reports test accuracy on the same 360 images (20%).
DIGITS_TEST_SIZE = 360
DIGITS_TEST_SEED = 0


class DigitsDataModule(ClassificationDataModule):
    """scikit-learn digits: 1797 grayscale 8x8 images of 10 classes, in memory.

    Pixel values 0..16 are scaled to [0, 1] and normalised with ``mean``/``std``. The test split
    is a fixed random 360 images (permutation seeded with ``DIGITS_TEST_SEED``, independent of
    ``split_seed``); the 1437 others form the training set that the discriminator split is carved
    from, so ``discriminator_size`` must be below 1437 (the class default of 5000 is too large and
    raises in :meth:`setup`; the dataset config sets a fitting value).

    ``root`` and ``download`` are accepted for a uniform interface and ignored.
    """

    name = "digits"
    total_classes: ClassVar[int] = 10
    in_channels: ClassVar[int] = 1
    image_size: ClassVar[int] = 8
    # Mean and std of all 1797 images after scaling to [0, 1].
    mean: ClassVar[tuple[float, ...]] = (0.3053,)
    std: ClassVar[tuple[float, ...]] = (0.3760,)

    _sources: tuple[TensorDataset, TensorDataset] | None = None

    def _load(self) -> tuple[TensorDataset, TensorDataset]:
        """Load, normalise and split the digits once; both hooks share the result."""
        if self._sources is None:
            # Imported here: scikit-learn is slow to import and only this dataset needs it.
            from sklearn.datasets import load_digits

            bunch = load_digits()
            images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
            images = (images - self.mean[0]) / self.std[0]
            labels = torch.as_tensor(bunch.target, dtype=torch.int64)
            permutation = torch.randperm(len(labels), generator=torch.Generator().manual_seed(DIGITS_TEST_SEED))
            test_idx, train_idx = permutation[:DIGITS_TEST_SIZE], permutation[DIGITS_TEST_SIZE:]
            self._sources = (
                TensorDataset(images[train_idx], labels[train_idx]),
                TensorDataset(images[test_idx], labels[test_idx]),
            )
        return self._sources

    def _train_source(self) -> Dataset:
        return self._load()[0]

    def _test_source(self) -> Dataset:
        return self._load()[1]
