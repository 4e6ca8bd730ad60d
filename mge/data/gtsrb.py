"""GTSRB read by torchvision from the official image folders, resized to 32x32.

torchvision derives the training labels from the sorted class-folder names, so a missing or
extra folder would silently shift every label after it; we check for exactly the 43 official
folders before trusting that mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torchvision
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms as T

from mge.data.base import ClassificationDataModule

_NUM_CLASSES = 43


class _GTSRB(torchvision.datasets.GTSRB):
    """torchvision's GTSRB whose unreadable images raise an error naming the file, with ``targets``."""

    @property
    def targets(self) -> list[int]:
        """The label of every image, without opening it (splitting by class reads these)."""
        return [label for _, label in self._samples]

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        try:
            return super().__getitem__(index)
        except OSError as err:  # missing file, PIL.UnidentifiedImageError, "image file is truncated"
            path = self._samples[index][0]
            raise RuntimeError(
                f"Cannot read GTSRB image {path} ({err}). The file is missing, truncated or not an image; "
                "extract the official GTSRB archives again (or delete the gtsrb folder and use data.download=true)."
            ) from err


class GTSRBDataModule(ClassificationDataModule):
    """GTSRB (Stallkamp et al., 2012): 39,209 train and 12,630 test traffic-sign photos of 43 classes.

    Expects torchvision's layout under ``<root>/gtsrb/``:

    * ``GTSRB/Training/00000`` .. ``GTSRB/Training/00042``: ``*.ppm`` images, one folder per class
      (``GTSRB-Training_fixed.zip`` extracted into ``<root>/gtsrb``);
    * ``GTSRB/Final_Test/Images/*.ppm`` (``GTSRB_Final_Test_Images.zip``) and ``GT-final_test.csv``
      (``GTSRB_Final_Test_GT.zip``), a ``;``-separated table whose ``Filename`` and ``ClassId``
      columns give each test image's label.

    :meth:`prepare_data` downloads the three archives when ``download=True``. Images of varying
    size (15x15 to 250x250) are resized to 32x32 without keeping the aspect ratio, as is usual.
    Training adds a small random affine jitter; no flips, since mirrored signs change meaning
    (e.g. "turn left" vs "turn right").
    """

    name = "gtsrb"
    total_classes: ClassVar[int] = _NUM_CLASSES
    in_channels: ClassVar[int] = 3
    image_size: ClassVar[int] = 32
    # Per-channel mean and std of the training images resized to 32x32 and scaled to [0, 1].
    mean: ClassVar[tuple[float, ...]] = (0.3403, 0.3121, 0.3214)
    std: ClassVar[tuple[float, ...]] = (0.2724, 0.2608, 0.2669)

    @property
    def base_folder(self) -> Path:
        """torchvision's GTSRB folder, ``<root>/gtsrb``."""
        return self.root / "gtsrb"

    def prepare_data(self) -> None:
        """Download and extract the archives with torchvision if ``download=True`` and they are missing.

        Raises:
            RuntimeError: The download failed; the message names the target folder.
        """
        if not self.download:
            return
        try:
            for split in ("train", "test"):
                _GTSRB(str(self.root), split=split, download=True)
        except (RuntimeError, OSError) as err:
            raise RuntimeError(
                f"Downloading GTSRB into {self.base_folder} failed: {err}. Without internet, extract "
                f"GTSRB-Training_fixed.zip, GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip into "
                f"{self.base_folder}; see README 'Datasets'."
            ) from err

    def _not_found(self, path: Path, archive: str) -> FileNotFoundError:
        return FileNotFoundError(
            f"GTSRB not found: {path} does not exist. "
            + self._missing_hint(f"extract the official {archive} into {self.base_folder}")
        )

    def _train_source(self) -> Dataset:
        """Read the training folders with torchvision after checking that all 43 are there.

        Raises:
            FileNotFoundError: The training folder is missing.
            RuntimeError: Class folders are missing, unexpected or empty.
        """
        folder = self.base_folder / "GTSRB" / "Training"
        if not folder.is_dir():
            raise self._not_found(folder, "GTSRB-Training_fixed.zip")
        expected = {f"{i:05d}" for i in range(_NUM_CLASSES)}
        found = {p.name for p in folder.iterdir() if p.is_dir()}
        if found != expected:
            raise RuntimeError(
                f"GTSRB training folder {folder} must hold exactly the class folders 00000..00042, because labels "
                f"come from their sorted names; missing: {sorted(expected - found)}, unexpected: "
                f"{sorted(found - expected)}. Extract GTSRB-Training_fixed.zip again."
            )
        try:
            return _GTSRB(str(self.root), split="train", download=False)
        except FileNotFoundError as err:  # torchvision: a class folder has no .ppm file
            raise RuntimeError(
                f"GTSRB training folder {folder} is incomplete: {err}. Extract GTSRB-Training_fixed.zip again."
            ) from err

    def _test_source(self) -> Dataset:
        """Read the test images and their labels from ``GT-final_test.csv`` with torchvision.

        Raises:
            FileNotFoundError: The image folder or the label file is missing.
            RuntimeError: The label file lacks the ``Filename``/``ClassId`` columns or holds bad labels.
        """
        images = self.base_folder / "GTSRB" / "Final_Test" / "Images"
        labels_csv = self.base_folder / "GT-final_test.csv"
        if not images.is_dir():
            raise self._not_found(images, "GTSRB_Final_Test_Images.zip")
        if not labels_csv.is_file():
            raise self._not_found(labels_csv, "GTSRB_Final_Test_GT.zip")
        try:
            dataset = _GTSRB(str(self.root), split="test", download=False)
        except (KeyError, ValueError, TypeError) as err:
            raise RuntimeError(
                f"GTSRB label file {labels_csv} is corrupt ({err!r}); expected ';'-separated rows with "
                "'Filename' and 'ClassId' columns. Extract GTSRB_Final_Test_GT.zip again."
            ) from err
        labels = [label for _, label in dataset._samples]
        if not labels or min(labels) < 0 or max(labels) >= _NUM_CLASSES:
            raise RuntimeError(
                f"GTSRB label file {labels_csv} has {len(labels)} rows with ClassId in "
                f"[{min(labels, default=None)}, {max(labels, default=None)}]; expected at least one row and ClassId in "
                f"[0, {_NUM_CLASSES - 1}]. Extract GTSRB_Final_Test_GT.zip again."
            )
        return dataset

    def _eval_transform(self) -> Callable[[Any], Tensor]:
        return T.Compose([T.Resize((self.image_size, self.image_size)), T.ToTensor(), T.Normalize(self.mean, self.std)])

    def _train_transform(self) -> Callable[[Any], Tensor]:
        return T.Compose(
            [
                T.Resize((self.image_size, self.image_size)),
                # Small jitter: signs are photographed roughly centred and upright.
                T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )
