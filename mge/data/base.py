"""The datamodule contract shared by every mge dataset.

Every dataset exposes three splits:

* ``train``: what seed models are trained on (shuffled, with the dataset's augmentation);
* ``discriminator``: a held-out part of the *official training set* that the discriminator
  scores generated models on and Lightning uses for validation (monitoring only);
* ``test``: the official test split, touched only to report final numbers.

The discriminator split is carved from the training set, never from the test set, so that
selecting or evolving models on it cannot leak test information (unlike a merge-and-resplit
of train and test, as in the Lightning-Hydra template's MNIST datamodule).

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


class TransformedSubset(Subset):
    """A :class:`~torch.utils.data.Subset` that applies its own transform to each image.

    The train and discriminator splits index the *same* loaded training set but need different
    transforms (augmentation vs none). Attaching the transform to the subset instead of the
    dataset lets both share one copy of the data in memory.

    Args:
        dataset: The source dataset, yielding ``(image, label)`` pairs without a transform.
        indices: Positions in ``dataset`` that make up this split, in order.
        transform: Applied to each image; ``None`` when the source already yields normalised tensors.
    """

    def __init__(
        self,
        dataset: Dataset,
        indices: Sequence[int],
        transform: Callable[[Any], Tensor] | None = None,
    ) -> None:
        super().__init__(dataset, indices)
        self.transform = transform

    def __getitem__(self, idx: int) -> tuple[Tensor, int]:
        image, label = self.dataset[self.indices[idx]]
        if self.transform is not None:
            image = self.transform(image)
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

    Raises:
        ValueError: An argument has the wrong type or is out of range.
    """

    name: str  # the registry key; also Lightning's datamodule ``name``
    num_classes: ClassVar[int]
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
        permutation of the training set drawn from ``torch.Generator().manual_seed(split_seed)``;
        the remaining positions, in permutation order, are the training split. All stages get
        all splits because loading is cheap next to the confusion of partial setups.

        Args:
            stage: Lightning's stage name; ignored.

        Raises:
            ValueError: ``discriminator_size`` is not smaller than the training set.
        """
        if self._is_setup:
            return
        train_source = self._train_source()
        test_source = self._test_source()
        n_train = len(cast(Sized, train_source))
        if self.discriminator_size >= n_train:
            raise ValueError(
                f"discriminator_size={self.discriminator_size} must be smaller than the {self.name} training set "
                f"({n_train} examples), since the discriminator split is carved out of it and the rest is trained on. "
                f"Set data.discriminator_size to a value in [1, {n_train - 1}]."
            )
        generator = torch.Generator().manual_seed(self.split_seed)
        permutation = torch.randperm(n_train, generator=generator).tolist()
        discriminator_indices = permutation[: self.discriminator_size]
        train_indices = permutation[self.discriminator_size :]
        eval_transform = self._eval_transform()
        self.train_set = TransformedSubset(train_source, train_indices, self._train_transform())
        self.discriminator_set = TransformedSubset(train_source, discriminator_indices, eval_transform)
        self.test_set = TransformedSubset(test_source, list(range(len(cast(Sized, test_source)))), eval_transform)
        self._is_setup = True

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

    def _materialise(self, subset: TransformedSubset, n: int) -> tuple[Tensor, Tensor]:
        """Stack the first ``n`` examples of ``subset`` into ``(x, y)`` tensors."""
        source = subset.dataset
        if subset.transform is None and isinstance(source, TensorDataset):
            # In-memory datasets (digits, MNIST): one gather instead of n __getitem__ calls.
            index = torch.as_tensor(subset.indices[:n], dtype=torch.long)
            x, y = source.tensors[0][index], source.tensors[1][index]
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
