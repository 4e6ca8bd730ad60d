"""CIFAR-10 read by torchvision from the official python batches.

torchvision checks the md5 of every batch file before unpickling it. We keep that check: it is
what makes unpickling the downloaded files safe, since a pickle can run arbitrary code.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torchvision
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms as T

from mge.data.base import ClassificationDataModule

_BATCH_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
_META_FILE = "batches.meta"


class CIFAR10DataModule(ClassificationDataModule):
    """CIFAR-10 (Krizhevsky, 2009): 50,000 train and 10,000 test RGB 32x32 images of 10 classes.

    Expects ``<root>/cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``, ``test_batch``
    and ``batches.meta`` (``cifar-10-python.tar.gz`` extracted into ``root``); :meth:`prepare_data`
    downloads and extracts it when ``download=True``.

    Training uses the standard augmentation of He et al. (2016, Sec. 4.2): 4-pixel zero padding,
    a random 32x32 crop and a random horizontal flip.
    """

    name = "cifar10"
    total_classes: ClassVar[int] = 10
    in_channels: ClassVar[int] = 3
    image_size: ClassVar[int] = 32
    # Per-channel mean and std of the 50,000 training images scaled to [0, 1].
    mean: ClassVar[tuple[float, ...]] = (0.4914, 0.4822, 0.4465)
    std: ClassVar[tuple[float, ...]] = (0.2470, 0.2435, 0.2616)

    @property
    def base_folder(self) -> Path:
        """The folder that holds the batch files."""
        return self.root / torchvision.datasets.CIFAR10.base_folder

    def prepare_data(self) -> None:
        """Download and extract the archive with torchvision if ``download=True`` and it is needed.

        Raises:
            RuntimeError: The download failed; the message names the target folder.
        """
        if not self.download:
            return
        try:
            torchvision.datasets.CIFAR10(str(self.root), train=True, download=True)
        except (RuntimeError, OSError) as err:
            raise RuntimeError(
                f"Downloading CIFAR-10 into {self.base_folder} failed: {err}. Without internet, extract the official "
                f"cifar-10-python.tar.gz into {self.root}; see README 'Datasets'."
            ) from err

    def _load(self, train: bool) -> torchvision.datasets.CIFAR10:
        """Read one split with torchvision.

        Raises:
            FileNotFoundError: Some batch file is missing.
            RuntimeError: A file fails the md5 check or cannot be unpickled.
        """
        missing = [name for name in (*_BATCH_FILES, _META_FILE) if not (self.base_folder / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"CIFAR-10 not found under {self.base_folder} (missing: {', '.join(missing)}). "
                + self._missing_hint(f"extract the official cifar-10-python.tar.gz into {self.root}")
            )
        fix = (
            f"Delete {self.base_folder} and download again (data.download=true), or extract the official "
            f"cifar-10-python.tar.gz into {self.root}."
        )
        try:
            dataset = torchvision.datasets.CIFAR10(str(self.root), train=train, download=False)
        except RuntimeError as err:  # torchvision's md5 check failed
            raise RuntimeError(
                f"CIFAR-10 files under {self.base_folder} are corrupt or not the official python batches "
                f"(torchvision: {err}). {fix}"
            ) from err
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError) as err:
            raise RuntimeError(f"CIFAR-10 files under {self.base_folder} cannot be read ({err!r}). {fix}") from err
        labels = dataset.targets
        if len(labels) != len(dataset.data) or not labels or min(labels) < 0 or max(labels) >= self.total_classes:
            raise RuntimeError(
                f"CIFAR-10 files under {self.base_folder} hold {len(dataset.data)} images and {len(labels)} labels "
                f"in [{min(labels, default=None)}, {max(labels, default=None)}]; expected one label in "
                f"[0, {self.total_classes - 1}] per image. {fix}"
            )
        return dataset

    def _train_source(self) -> Dataset:
        return self._load(train=True)

    def _test_source(self) -> Dataset:
        return self._load(train=False)

    def _eval_transform(self) -> Callable[[Any], Tensor]:
        return T.Compose([T.ToTensor(), T.Normalize(self.mean, self.std)])

    def _train_transform(self) -> Callable[[Any], Tensor]:
        return T.Compose(
            [
                T.RandomCrop(self.image_size, padding=4),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )
