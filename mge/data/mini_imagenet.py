"""mini-ImageNet in the split files of Ravi & Larochelle (2017), and a datamodule on its train classes.

mini-ImageNet (Vinyals et al., 2016) is 100 ImageNet classes of 600 images each, split by class
into 64 train, 16 val and 20 test classes (Ravi & Larochelle's ``{train,val,test}.csv``). It has
no download URL that torchvision knows, so the files must be placed by hand.

:class:`MiniImageNet` reads any of the three splits and exposes ``classes``, ``targets`` and
``samples`` as torchvision's folder datasets do, for a few-shot episode sampler over val/test.
:class:`MiniImageNetDataModule` is the ordinary 64-way classification task on the train classes.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Subset
from torchvision import transforms as T

from mge.data.base import ClassificationDataModule, HeldOutSplit, TransformedSubset

MINI_IMAGENET_SPLITS = ("train", "val", "test")
_HEADER = ["filename", "label"]
# The train classes have no test images of their own; we hold out this percentage of each class
# (rounded down, at least one image), chosen by a permutation with this constant seed, so every
# run (whatever its split_seed) reports test accuracy on the same images.
MINI_IMAGENET_TEST_PERCENT = 10
MINI_IMAGENET_TEST_SEED = 0

_HOW_TO_GET = (
    "mini-ImageNet cannot be downloaded automatically (data.download has no effect): place Ravi & Larochelle's "
    "train.csv, val.csv and test.csv (header 'filename,label') in {folder} and the images in "
    "{folder}/images/<label>/<filename> (or flat in {folder}/images/); see README 'Datasets'."
)


class MiniImageNet(Dataset):
    """One split of mini-ImageNet, read from ``<root>/mini_imagenet/<split>.csv``.

    Each CSV row ``filename,label`` names an image and its ImageNet wnid (e.g. ``n01532829``).
    The image is looked up at ``<root>/mini_imagenet/images/<label>/<filename>``, then at
    ``<root>/mini_imagenet/images/<filename>`` (the flat folder of the original release). Images
    are loaded as RGB and resized to ``image_size`` squared (bilinear) unless already that size.
    Class counts are not enforced, so small subsets work as well as the full 64/16/20 x 600.

    Args:
        root: Folder that contains ``mini_imagenet/``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        transform: Applied to the PIL image; ``None`` returns the PIL image.
        image_size: Side of the square images returned; 84 as in Vinyals et al. (2016).

    Attributes:
        classes: Sorted wnids of this split; a label is a position in this list.
        class_to_idx: wnid to label.
        samples: ``(image path, label)`` per CSV row, in file order.
        targets: The labels of ``samples``.

    Raises:
        ValueError: ``split`` or ``image_size`` is invalid.
        FileNotFoundError: The CSV file or an image it references is missing.
        RuntimeError: The CSV file has a wrong header, a malformed row or no rows.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Callable[[Image.Image], Any] | None = None,
        image_size: int = 84,
    ) -> None:
        if split not in MINI_IMAGENET_SPLITS:
            raise ValueError(
                f"Unknown value {split!r} for argument split. Valid values are {list(MINI_IMAGENET_SPLITS)}."
            )
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}. Pass e.g. image_size=84.")
        self.folder = Path(root).expanduser() / "mini_imagenet"
        self.split = split
        self.transform = transform
        self.image_size = image_size
        rows = self._read_csv(self.folder / f"{split}.csv")
        self.classes: list[str] = sorted({label for _, label, _ in rows})
        self.class_to_idx: dict[str, int] = {wnid: i for i, wnid in enumerate(self.classes)}
        self.samples: list[tuple[str, int]] = [
            (str(self._find_image(filename, label, csv_line)), self.class_to_idx[label])
            for filename, label, csv_line in rows
        ]
        self.targets: list[int] = [label for _, label in self.samples]

    def _read_csv(self, path: Path) -> list[tuple[str, str, int]]:
        """Return ``(filename, label, line number)`` per data row of a split file."""
        if not path.is_file():
            raise FileNotFoundError(
                f"mini-ImageNet split file {path} not found. " + _HOW_TO_GET.format(folder=self.folder)
            )
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
        header = [cell.strip() for cell in lines[0]] if lines else []
        if header != _HEADER:
            raise RuntimeError(
                f"mini-ImageNet split file {path} has header {header}; expected {_HEADER} "
                "(Ravi & Larochelle's format). Fix the first line or get the original split files."
            )
        rows = []
        for line_number, cells in enumerate(lines[1:], start=2):
            if not cells:  # tolerate blank lines, e.g. a trailing one
                continue
            if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
                raise RuntimeError(
                    f"mini-ImageNet split file {path}, line {line_number}: expected 'filename,label', got {cells}. "
                    "The file is corrupt or truncated; get the original split files."
                )
            rows.append((cells[0].strip(), cells[1].strip(), line_number))
        if not rows:
            raise RuntimeError(f"mini-ImageNet split file {path} lists no images. Get the original split files.")
        return rows

    def _find_image(self, filename: str, label: str, csv_line: int) -> Path:
        by_class = self.folder / "images" / label / filename
        if by_class.is_file():
            return by_class
        flat = self.folder / "images" / filename
        if flat.is_file():
            return flat
        raise FileNotFoundError(
            f"mini-ImageNet image {filename!r} (class {label}, {self.split}.csv line {csv_line}) not found at "
            f"{by_class} nor at {flat}. " + _HOW_TO_GET.format(folder=self.folder)
        )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, target = self.samples[index]
        try:
            with Image.open(path) as raw:
                image = raw.convert("RGB")
        except OSError as err:  # PIL.UnidentifiedImageError, "image file is truncated", vanished file
            raise RuntimeError(
                f"Cannot read mini-ImageNet image {path} ({err}). The file is truncated or not an image; "
                "copy it again from the original release."
            ) from err
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        if self.transform is not None:
            image = self.transform(image)
        return image, target


class MiniImageNetDataModule(ClassificationDataModule):
    """64-way classification on the mini-ImageNet train classes, 84x84 RGB.

    Only ``train.csv`` is used: its classes are disjoint from val/test by design, so their images
    cannot serve as a test split here. Instead a fixed 10% of each train class
    (``MINI_IMAGENET_TEST_PERCENT``, rounded down, at least one image; a permutation per class from
    ``MINI_IMAGENET_TEST_SEED``, independent of ``split_seed``) is the test split, and the
    discriminator split is carved from the remaining 90% as for every dataset. No augmentation.
    ``download`` is ignored; see :class:`MiniImageNet` for the layout.
    """

    name = "mini_imagenet"
    total_classes: ClassVar[int] = 64
    in_channels: ClassVar[int] = 3
    image_size: ClassVar[int] = 84
    # ImageNet's per-channel statistics; mini-ImageNet is a subset of it.
    mean: ClassVar[tuple[float, ...]] = (0.485, 0.456, 0.406)
    std: ClassVar[tuple[float, ...]] = (0.229, 0.224, 0.225)

    _sources: tuple[Subset, Subset] | None = None

    def _load(self) -> tuple[Subset, Subset]:
        """Read ``train.csv`` once and split each class into train and test positions."""
        if self._sources is None:
            full = MiniImageNet(self.root, split="train", image_size=self.image_size)
            if len(full.classes) > self.total_classes:
                raise RuntimeError(
                    f"{full.folder / 'train.csv'} lists {len(full.classes)} classes; the mini-ImageNet train split "
                    f"has {self.total_classes}. Use Ravi & Larochelle's train.csv."
                )
            targets = torch.as_tensor(full.targets)
            generator = torch.Generator().manual_seed(MINI_IMAGENET_TEST_SEED)
            test_idx: list[int] = []
            for label in range(len(full.classes)):
                members = torch.nonzero(targets == label).flatten()
                # Integer maths, so that 600 images give exactly 60 (float 0.1 would round some sizes down).
                n_test = max(1, len(members) * MINI_IMAGENET_TEST_PERCENT // 100)
                shuffled = members[torch.randperm(len(members), generator=generator)]
                test_idx.extend(shuffled[:n_test].tolist())
            test_set = set(test_idx)
            train_idx = [i for i in range(len(full)) if i not in test_set]
            self._sources = (Subset(full, train_idx), Subset(full, sorted(test_idx)))
        return self._sources

    def _train_source(self) -> Dataset:
        return self._load()[0]

    def _test_source(self) -> Dataset:
        return self._load()[1]

    def _eval_transform(self) -> Callable[[Any], Tensor]:
        return T.Compose([T.ToTensor(), T.Normalize(self.mean, self.std)])

    def held_out_tensors(self, split: HeldOutSplit = "test") -> tuple[Tensor, Tensor]:
        """The held-out classes' images: without ``classes``, those of ``test.csv`` (Ravi & Larochelle's 20).

        mini-ImageNet holds its novel classes out by design, in other files: with ``classes=None``
        the seed trains on all 64 classes of ``train.csv`` and the held-out classes are the 20 of
        ``test.csv``, labelled by their position in its sorted wnids (:class:`MiniImageNet`'s labels).
        With ``classes`` set, the held-out classes are the other train classes, as for every dataset.

        Args:
            split: ``"test"``; ``"train"`` only with ``classes`` set (``test.csv``'s classes have no
                training images).

        Raises:
            ValueError: ``split`` is invalid.
            FileNotFoundError: ``test.csv`` or one of its images is missing.
        """
        if self.classes is not None:
            return super().held_out_tensors(split)
        if split != "test":
            raise ValueError(
                f"Unknown split {split!r} for mini-ImageNet's held-out classes (those of test.csv, which has no "
                "training images). Valid values are ['test']; set data.classes to hold out train classes instead."
            )
        key = "held_out_test"
        if key not in self._tensor_cache:
            novel = MiniImageNet(self.root, split="test", image_size=self.image_size)
            subset = TransformedSubset(novel, range(len(novel)), self._eval_transform())
            self._tensor_cache[key] = self._materialise(subset, len(subset))
        return self._tensor_cache[key]
