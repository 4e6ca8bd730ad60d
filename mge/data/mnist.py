"""MNIST and Fashion-MNIST, held in memory as normalised tensors.

Both datasets are read by torchvision from their raw IDX files
(``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``, likewise under
``<root>/FashionMNIST/raw``). Their 70,000 28x28 images take 220 MB as float32, so we convert
them once instead of building a PIL image per item per epoch as torchvision's ``__getitem__``
does; training and discriminator scoring then index tensors directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torchvision
from torch.utils.data import Dataset, TensorDataset

from mge.data.base import ClassificationDataModule

_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(ClassificationDataModule):
    """MNIST (LeCun et al., 1998): 60,000 train and 10,000 test grayscale 28x28 digits.

    Expects ``<root>/MNIST/raw/`` with the four uncompressed IDX files (torchvision's layout);
    :meth:`prepare_data` downloads them when ``download=True``.
    """

    name = "mnist"
    total_classes: ClassVar[int] = 10
    in_channels: ClassVar[int] = 1
    image_size: ClassVar[int] = 28
    # Mean and std of the 60,000 training images scaled to [0, 1] (the usual 0.1307 / 0.3081).
    mean: ClassVar[tuple[float, ...]] = (0.1307,)
    std: ClassVar[tuple[float, ...]] = (0.3081,)
    _torchvision_class: ClassVar[type[torchvision.datasets.MNIST]] = torchvision.datasets.MNIST
    _title: ClassVar[str] = "MNIST"

    @property
    def raw_folder(self) -> Path:
        """Where torchvision reads (and downloads) the IDX files."""
        return self.root / self._torchvision_class.__name__ / "raw"

    def prepare_data(self) -> None:
        """Download the IDX files with torchvision if ``download=True`` and they are missing.

        Raises:
            RuntimeError: The download failed; the message names the target folder.
        """
        if not self.download or not self._missing_files():
            return
        try:
            for train in (True, False):
                self._torchvision_class(str(self.root), train=train, download=True)
        except (RuntimeError, OSError) as err:  # torchvision's failed mirrors, or URLError (an OSError)
            raise RuntimeError(
                f"Downloading {self._title} into {self.raw_folder} failed: {err}. "
                f"Without internet, copy the raw IDX files ({', '.join(_RAW_FILES)}) there; see README 'Datasets'."
            ) from err

    def _missing_files(self) -> list[str]:
        return [name for name in _RAW_FILES if not (self.raw_folder / name).is_file()]

    def _load(self, train: bool) -> TensorDataset:
        """Read one split with torchvision and convert it to normalised tensors.

        Raises:
            FileNotFoundError: Some raw file is missing.
            RuntimeError: A raw file is truncated or not an IDX file of the expected shape.
        """
        missing = self._missing_files()
        if missing:
            raise FileNotFoundError(
                f"{self._title} not found under {self.raw_folder} (missing: {', '.join(missing)}). "
                + self._missing_hint("copy the raw (uncompressed) IDX files there")
            )
        try:
            dataset = self._torchvision_class(str(self.root), train=train, download=False)
        except (AssertionError, RuntimeError, ValueError, TypeError, KeyError) as err:
            # torchvision's IDX reader asserts on a bad header and fails in .view() on a short file.
            raise RuntimeError(
                f"{self._title} raw files under {self.raw_folder} are corrupt or truncated ({err!r}). "
                "Delete them and download again (data.download=true) or copy intact IDX files there."
            ) from err
        images, labels = dataset.data, dataset.targets  # uint8 (N, 28, 28), int64 (N,)
        size = self.image_size
        if images.shape[1:] != (size, size) or len(images) != len(labels) or len(labels) == 0:
            raise RuntimeError(
                f"{self._title} raw files under {self.raw_folder} hold images of shape {tuple(images.shape)} and "
                f"{len(labels)} labels; expected (N, {size}, {size}) images with one label each. "
                "Replace them with the official IDX files."
            )
        if labels.min() < 0 or labels.max() >= self.total_classes:
            raise RuntimeError(
                f"{self._title} labels under {self.raw_folder} range over [{int(labels.min())}, "
                f"{int(labels.max())}]; expected [0, {self.total_classes - 1}]. "
                "Replace the label files with the official ones."
            )
        x = images.unsqueeze(1).to(torch.float32).div_(255.0)  # (N, 1, 28, 28)
        x = x.sub_(self.mean[0]).div_(self.std[0])
        return TensorDataset(x, labels.to(torch.int64))

    def _train_source(self) -> Dataset:
        return self._load(train=True)

    def _test_source(self) -> Dataset:
        return self._load(train=False)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Xiao et al., 2017): MNIST's format with 10 classes of clothing.

    Expects ``<root>/FashionMNIST/raw/`` with the four uncompressed IDX files (torchvision's layout).
    """

    name = "fashion_mnist"
    # Mean and std of the 60,000 training images scaled to [0, 1].
    mean: ClassVar[tuple[float, ...]] = (0.2860,)
    std: ClassVar[tuple[float, ...]] = (0.3530,)
    _torchvision_class: ClassVar[type[torchvision.datasets.MNIST]] = torchvision.datasets.FashionMNIST
    _title: ClassVar[str] = "FashionMNIST"
