"""The datamodule contract shared by every mge dataset.

Every dataset exposes three splits:

* ``train``: what seed models are trained on (shuffled, with the dataset's augmentation);
* ``discriminator``: a held-out part of the *official training set* that the discriminator
  scores generated models on and Lightning uses for validation (monitoring only);
* ``test``: the official test split, touched only to report final numbers.

The discriminator split is carved from the training set, never from the test set, so that
selecting or evolving models on it cannot leak test information (unlike a merge-and-resplit
of train and test, as in the Lightning-Hydra template's MNIST datamodule).

A datamodule may be restricted to some of its dataset's classes (``classes``, config key
``data.classes``): all three splits then hold only those classes, relabelled ``0..k-1``, and the
other classes are held out for few-shot transfer (:meth:`~ClassificationDataModule.held_out_tensors`).

Subclasses only say where their data comes from (:meth:`_train_source`, :meth:`_test_source`)
and how it is transformed (:meth:`_train_transform`, :meth:`_eval_transform`); splitting,
loaders and tensor caching live here, once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence, Sized
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

Split = Literal["discriminator", "test"]
SPLITS: tuple[str, ...] = ("discriminator", "test")
# The official sets whose held-out classes can be read (held_out_tensors).
HeldOutSplit = Literal["train", "test"]
HELD_OUT_SPLITS: tuple[str, ...] = ("train", "test")


class TransformedSubset(Subset):
    """A :class:`~torch.utils.data.Subset` that applies its own transform to each image.

    The train and discriminator splits index the *same* loaded training set but need different
    transforms (augmentation vs none). Attaching the transform to the subset instead of the
    dataset lets both share one copy of the data in memory.

    Args:
        dataset: The source dataset, yielding ``(image, label)`` pairs without a transform.
        indices: Positions in ``dataset`` that make up this split, in order.
        transform: Applied to each image; ``None`` when the source already yields normalised tensors.
        label_map: ``(dataset classes,)`` int64 table from a source label to this split's label, for
            a datamodule restricted to some classes; ``None`` keeps the source labels.
    """

    def __init__(
        self,
        dataset: Dataset,
        indices: Sequence[int],
        transform: Callable[[Any], Tensor] | None = None,
        label_map: Tensor | None = None,
    ) -> None:
        super().__init__(dataset, indices)
        self.transform = transform
        self.label_map = label_map

    def __getitem__(self, idx: int) -> tuple[Tensor, int]:
        image, label = self.dataset[self.indices[idx]]
        if self.transform is not None:
            image = self.transform(image)
        if self.label_map is not None:
            label = int(self.label_map[label])
        return image, label

    def __getitems__(self, indices: list[int]) -> list[tuple[Tensor, int]]:
        # Subset's own __getitems__ would skip our transform (see torch's Subset docstring).
        return [self[i] for i in indices]


def _check_int(name: str, value: Any, minimum: int, key: str | None = None) -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise a ValueError naming ``name``.

    Hydra hides the cause of a failed ``instantiate``, so the message must carry the config key,
    the bad value and the fix on its own. ``bool`` is rejected although it subclasses ``int``,
    because ``batch_size=True`` is always a config mistake.

    Args:
        name: The argument's name.
        value: Its value.
        minimum: The smallest valid value.
        key: What the user should change; defaults to the config key ``data.<name>``.
    """
    key = key or f"data.{name}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__}). "
            f"Set {key} to a whole number."
        )
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}. Set {key} to a value >= {minimum}.")
    return value


def check_classes(classes: Any, total: int, dataset: str) -> tuple[int, ...] | None:
    """Return ``classes`` as a tuple of class indices, or ``None`` for all classes; raise if invalid.

    Args:
        classes: ``None`` or a sequence of distinct class indices of the dataset, at least 2.
        total: Number of classes of the dataset.
        dataset: The dataset's name, for the message.

    Raises:
        ValueError: ``classes`` is not a sequence of at least 2 distinct integers in ``[0, total)``.
    """
    if classes is None:
        return None
    fix = (
        f"Set data.classes to null (all {total} classes) or to a list of at least 2 distinct class indices "
        f"in [0, {total - 1}], e.g. data.classes=[0,1,2,3,4]."
    )
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise ValueError(f"data.classes must be a list of class indices of {dataset}, got {classes!r}. {fix}")
    bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < total]
    if bad:
        raise ValueError(
            f"data.classes={list(classes)!r} holds {bad!r}, which are not class indices of {dataset} "
            f"(integers in [0, {total - 1}]). {fix}"
        )
    duplicates = sorted({c for c in classes if list(classes).count(c) > 1})
    if duplicates:
        raise ValueError(f"data.classes={list(classes)!r} repeats {duplicates}. {fix}")
    if len(classes) < 2:
        raise ValueError(f"data.classes={list(classes)!r} names {len(classes)} class; a classifier needs 2. {fix}")
    return tuple(classes)


def dataset_labels(dataset: Dataset) -> Tensor:
    """The int64 label of every item of ``dataset``, read without loading its images.

    Splitting by class must not decode every image of a folder dataset just to see its label, so
    the labels are taken from where datasets keep them: a ``TensorDataset``'s second tensor, a
    ``targets`` attribute (torchvision's datasets, :class:`~mge.data.MiniImageNet`), or a ``Subset``
    of either.

    Args:
        dataset: The dataset.

    Raises:
        TypeError: ``dataset`` keeps its labels nowhere known; give it a ``targets`` attribute.
    """
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[torch.as_tensor(list(dataset.indices), dtype=torch.long)]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].to(torch.int64)
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise TypeError(
            f"Cannot read the labels of {type(dataset).__name__} without loading its images: it is neither a "
            "TensorDataset nor a Subset and has no 'targets' attribute. Give it a 'targets' list of labels."
        )
    return torch.as_tensor(targets, dtype=torch.int64)


class ClassificationDataModule(L.LightningDataModule, ABC):
    """Base class of every mge image-classification datamodule.

    Call :meth:`prepare_data` (downloads, where the dataset allows it) and then :meth:`setup`;
    ``Trainer.fit`` does both. :meth:`split_tensors` gives whole splits as tensors for the
    training-free parts of mge (discriminator scoring, evaluation of generated models).

    Args:
        root: Folder holding the dataset in the layout its subclass documents.
        download: Let :meth:`prepare_data` download missing files with torchvision (needs internet).
            Ignored by datasets that cannot be downloaded (digits, mini-ImageNet).
        batch_size: Batch size of the shuffled training loader.
        eval_batch_size: Batch size of the discriminator and test loaders and of :meth:`split_tensors`;
            larger than ``batch_size`` since evaluation keeps no activations for backprop.
        num_workers: DataLoader worker processes; 0 loads in the main process.
        discriminator_size: Number of training examples held out as the discriminator split.
            Must be smaller than the training set.
        split_seed: Seed of the permutation that picks the discriminator split, so that runs
            with the same seed score models on the same examples.
        classes: Train, score and test on these classes of the dataset only (``None``: all). The
            label of ``classes[i]`` becomes ``i`` in every split, so ``num_classes`` is
            ``len(classes)``; the other classes are held out (:meth:`held_out_tensors`).

    Raises:
        ValueError: An argument has the wrong type or is out of range.
    """

    name: str  # the registry key; also Lightning's datamodule ``name``
    total_classes: ClassVar[int]  # classes in the whole dataset
    num_classes: int  # classes this instance trains on: len(classes), or total_classes
    in_channels: ClassVar[int]
    image_size: ClassVar[int]
    mean: ClassVar[tuple[float, ...]]
    std: ClassVar[tuple[float, ...]]

    train_set: TransformedSubset
    discriminator_set: TransformedSubset
    test_set: TransformedSubset

    def __init__(
        self,
        root: str | Path,
        *,
        download: bool = True,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        num_workers: int = 0,
        discriminator_size: int = 5000,
        split_seed: int = 0,
        classes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(root, (str, Path)) or str(root) == "":
            raise ValueError(
                f"root must be a non-empty path (str or pathlib.Path), got {root!r}. "
                "Set data.root to the folder that holds the datasets."
            )
        if not isinstance(download, bool):
            raise ValueError(f"download must be true or false, got {download!r}. Set data.download=true or false.")
        self.root = Path(root).expanduser()
        self.download = download
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.eval_batch_size = _check_int("eval_batch_size", eval_batch_size, 1)
        self.num_workers = _check_int("num_workers", num_workers, 0)
        self.discriminator_size = _check_int("discriminator_size", discriminator_size, 1)
        self.split_seed = _check_int("split_seed", split_seed, 0)
        self.classes = check_classes(classes, self.total_classes, self.name)
        self.num_classes = self.total_classes if self.classes is None else len(self.classes)
        # Plain values only: a Path would not round-trip through the checkpoint's hparams.yaml.
        self.save_hyperparameters(
            {
                "dataset": self.name,
                "root": str(self.root),
                "download": download,
                "batch_size": batch_size,
                "eval_batch_size": eval_batch_size,
                "num_workers": num_workers,
                "discriminator_size": discriminator_size,
                "split_seed": split_seed,
                "classes": None if self.classes is None else list(self.classes),
            }
        )
        self._is_setup = False
        self._tensor_cache: dict[str, tuple[Tensor, Tensor]] = {}

    # ----------------------------------------------------------------- subclass hooks

    @abstractmethod
    def _train_source(self) -> Dataset:
        """Return the official training set, yielding ``(image, label)`` without a transform.

        Raises:
            FileNotFoundError: The files are missing; the message names the expected path.
            RuntimeError: The files are corrupt; the message names the path.
        """

    @abstractmethod
    def _test_source(self) -> Dataset:
        """Return the official test set, yielding ``(image, label)`` without a transform."""

    def _eval_transform(self) -> Callable[[Any], Tensor] | None:
        """Return the deterministic transform for the discriminator and test splits.

        ``None`` (the default) means the sources already yield normalised tensors.
        """
        return None

    def _train_transform(self) -> Callable[[Any], Tensor] | None:
        """Return the training transform; defaults to the eval transform (no augmentation)."""
        return self._eval_transform()

    def _missing_hint(self, by_hand: str) -> str:
        """Say how to get missing files, for the end of a FileNotFoundError message.

        With ``download=True`` the files are only missing because :meth:`prepare_data` did not run
        (``setup`` never downloads, so that distributed ranks do not download at once).

        Args:
            by_hand: How to place the files without a download, e.g. "copy the raw IDX files there".
        """
        if self.download:
            return "prepare_data() downloads them; call it before setup() (Trainer.fit does)."
        return f"Pass data.download=true (needs internet) or {by_hand}; see README 'Datasets'."

    # ----------------------------------------------------------------- Lightning hooks

    def setup(self, stage: str | None = None) -> None:
        """Load the data and build the three splits; later calls do nothing.

        The discriminator split is the first ``discriminator_size`` positions of a random
        permutation of the training set (of its examples of ``classes``, if given) drawn from
        ``torch.Generator().manual_seed(split_seed)``; the remaining positions, in permutation
        order, are the training split. All stages get all splits because loading is cheap next to
        the confusion of partial setups.

        Args:
            stage: Lightning's stage name; ignored.

        Raises:
            ValueError: ``discriminator_size`` is not smaller than the training set, or the test
                set holds no example of ``classes``.
        """
        if self._is_setup:
            return
        train_source = self._train_source()
        test_source = self._test_source()
        train_positions = self._positions(train_source)
        test_positions = self._positions(test_source)
        n_train = len(train_positions)
        of_classes = "" if self.classes is None else f" of classes {list(self.classes)}"
        if self.discriminator_size >= n_train:
            raise ValueError(
                f"discriminator_size={self.discriminator_size} must be smaller than the {self.name} training set"
                f"{of_classes} ({n_train} examples), since the discriminator split is carved out of it and the rest "
                f"is trained on. Set data.discriminator_size to a value in [1, {n_train - 1}]."
            )
        if not test_positions:
            raise ValueError(
                f"The {self.name} test set holds no example{of_classes}. Set data.classes to classes it has."
            )
        generator = torch.Generator().manual_seed(self.split_seed)
        permutation = [train_positions[i] for i in torch.randperm(n_train, generator=generator).tolist()]
        discriminator_indices = permutation[: self.discriminator_size]
        train_indices = permutation[self.discriminator_size :]
        eval_transform = self._eval_transform()
        label_map = self._label_map()
        self.train_set = TransformedSubset(train_source, train_indices, self._train_transform(), label_map)
        self.discriminator_set = TransformedSubset(train_source, discriminator_indices, eval_transform, label_map)
        self.test_set = TransformedSubset(test_source, test_positions, eval_transform, label_map)
        self._is_setup = True

    def _positions(self, source: Dataset, held_out: bool = False) -> list[int]:
        """Positions in ``source`` of the examples of ``classes`` (all), or with ``held_out`` of the other classes."""
        if self.classes is None:
            return [] if held_out else list(range(len(cast(Sized, source))))
        kept = torch.isin(dataset_labels(source), torch.tensor(self.classes))
        return torch.nonzero(kept != held_out).flatten().tolist()

    def _label_map(self) -> Tensor | None:
        """``(total_classes,)`` table: ``classes[i]`` -> ``i``, -1 for held-out classes; ``None`` for all classes."""
        if self.classes is None:
            return None
        table = torch.full((self.total_classes,), -1, dtype=torch.int64)
        table[torch.tensor(self.classes)] = torch.arange(len(self.classes))
        return table

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training split with the training transform, ``batch_size`` per batch."""
        self.setup()
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """The discriminator split, for monitoring only: selecting checkpoints on it is allowed, on test is not."""
        self.setup()
        return self._loader(self.discriminator_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The official test split with eval transforms."""
        self.setup()
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)

    # ----------------------------------------------------------------- tensors

    def split_tensors(self, split: Split, limit: int | None = None) -> tuple[Tensor, Tensor]:
        """Return a split (or its first ``limit`` examples) as CPU tensors, eval-transformed.

        Generated models are scored many times on the same examples, so the tensors are built
        once per split and cached; a later call with a smaller (or equal) ``limit`` slices the
        cache. The returned tensors share memory with the cache: do not modify them in place.
        "First" follows the split's order, which for the discriminator split is the seeded
        permutation, so a limited discriminator split is still a random sample of the training set.

        Args:
            split: ``"discriminator"`` or ``"test"``.
            limit: Number of leading examples to return; ``None`` for the whole split.

        Returns:
            ``x`` float32 of shape (N, C, H, W), normalised, and ``y`` int64 of shape (N,).

        Raises:
            ValueError: ``split`` or ``limit`` is invalid.
        """
        if split not in SPLITS:
            raise ValueError(
                f"Unknown split {split!r}. Valid values are {list(SPLITS)}. Pass split='discriminator' or 'test'."
            )
        if limit is not None:
            limit = _check_int("limit", limit, 1, key="limit (or None for the whole split)")
        self.setup()
        subset = self.discriminator_set if split == "discriminator" else self.test_set
        n = len(subset) if limit is None else min(limit, len(subset))
        cached = self._tensor_cache.get(split)
        if cached is None or len(cached[1]) < n:
            cached = self._materialise(subset, n)
            self._tensor_cache[split] = cached
        x, y = cached
        return x[:n], y[:n]

    def held_out_tensors(self, split: HeldOutSplit = "test") -> tuple[Tensor, Tensor]:
        """Return the held-out classes' examples of an official set, eval-transformed, with their dataset labels.

        These are the classes a seed trained with ``classes`` never saw, on which few-shot transfer
        is measured; their labels are not remapped (MNIST with ``classes=[0..4]`` returns labels
        5..9). Cached like :meth:`split_tensors`; do not modify the tensors in place.

        Args:
            split: ``"test"`` (the official test set) or ``"train"`` (the official training set, none
                of whose held-out examples is in the train or discriminator split).

        Returns:
            ``x`` float32 of shape (N, C, H, W), normalised, and ``y`` int64 of shape (N,).

        Raises:
            ValueError: ``split`` is invalid, or no class is held out.
        """
        if split not in HELD_OUT_SPLITS:
            raise ValueError(f"Unknown split {split!r}. Valid values are {list(HELD_OUT_SPLITS)}.")
        self.setup()
        key = f"held_out_{split}"
        if key not in self._tensor_cache:
            source = (self.train_set if split == "train" else self.test_set).dataset
            positions = self._positions(source, held_out=True)
            if not positions:
                raise ValueError(
                    f"{self.name} with data.classes={None if self.classes is None else list(self.classes)} holds out "
                    f"no class with examples in its {split} set. Set data.classes to the classes to train on, e.g. "
                    "those of mge.fewshot.FEW_SHOT_CLASSES."
                )
            subset = TransformedSubset(source, positions, self._eval_transform())
            self._tensor_cache[key] = self._materialise(subset, len(subset))
        return self._tensor_cache[key]

    def _materialise(self, subset: TransformedSubset, n: int) -> tuple[Tensor, Tensor]:
        """Stack the first ``n`` examples of ``subset`` into ``(x, y)`` tensors."""
        source = subset.dataset
        if subset.transform is None and isinstance(source, TensorDataset):
            # In-memory datasets (digits, MNIST): one gather instead of n __getitem__ calls.
            index = torch.as_tensor(subset.indices[:n], dtype=torch.long)
            x, y = source.tensors[0][index], source.tensors[1][index]
            if subset.label_map is not None:
                y = subset.label_map[y]
        else:
            loader = DataLoader(
                Subset(subset, range(n)),
                batch_size=self.eval_batch_size,
                shuffle=False,
                num_workers=self.num_workers,
            )
            xs, ys = zip(*loader, strict=True)
            x, y = torch.cat(xs), torch.cat(ys)
        return x.to(torch.float32).contiguous(), y.to(torch.int64).contiguous()
