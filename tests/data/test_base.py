"""The shared split, loader and tensor logic of ClassificationDataModule, on a tiny in-memory dataset."""

from __future__ import annotations

from typing import ClassVar

import lightning as L
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from mge.data import ClassificationDataModule

N_TRAIN, N_TEST = 50, 10


class ToyDataModule(ClassificationDataModule):
    """50 train and 10 test 1x4x4 images whose first pixel is their position (train) or 100 + position (test)."""

    name: ClassVar[str] = "toy"
    total_classes: ClassVar[int] = 3
    in_channels: ClassVar[int] = 1
    image_size: ClassVar[int] = 4
    mean: ClassVar[tuple[float, ...]] = (0.0,)
    std: ClassVar[tuple[float, ...]] = (1.0,)

    def _make(self, n: int, offset: int) -> TensorDataset:
        x = torch.zeros(n, 1, 4, 4)
        x[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32) + offset
        return TensorDataset(x, torch.arange(n) % self.total_classes)

    def _train_source(self) -> Dataset:
        return self._make(N_TRAIN, 0)

    def _test_source(self) -> Dataset:
        return self._make(N_TEST, 100)


def make(**kwargs) -> ToyDataModule:
    kwargs.setdefault("discriminator_size", 20)
    return ToyDataModule("unused", **kwargs)


def test_split_contract(check_splits) -> None:
    check_splits(make(), N_TRAIN, N_TEST)


def test_discriminator_split_is_the_seeded_permutation_prefix() -> None:
    dm = make(split_seed=5)
    dm.setup()
    permutation = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(5)).tolist()
    assert dm.discriminator_set.indices == permutation[:20]
    assert dm.train_set.indices == permutation[20:]


def test_discriminator_split_never_touches_test() -> None:
    dm = make()
    x, _ = dm.split_tensors("discriminator")
    assert (x[:, 0, 0, 0] < N_TRAIN).all()  # training positions only
    x_test, _ = dm.split_tensors("test")
    assert (x_test[:, 0, 0, 0] >= 100).all()


def test_same_seed_same_split_other_seed_other_split() -> None:
    a, b, c = make(split_seed=1), make(split_seed=1), make(split_seed=2)
    for dm in (a, b, c):
        dm.setup()
    assert a.discriminator_set.indices == b.discriminator_set.indices
    assert a.train_set.indices == b.train_set.indices
    assert set(a.discriminator_set.indices) != set(c.discriminator_set.indices)
    torch.testing.assert_close(a.split_tensors("discriminator"), b.split_tensors("discriminator"))


def test_setup_is_idempotent() -> None:
    dm = make()
    dm.setup("fit")
    sets = (dm.train_set, dm.discriminator_set, dm.test_set)
    dm.setup("test")
    dm.setup()
    assert (dm.train_set, dm.discriminator_set, dm.test_set) == sets


@pytest.mark.parametrize("size", [N_TRAIN, N_TRAIN + 1, 5000])
def test_discriminator_size_must_leave_training_examples(size: int) -> None:
    dm = make(discriminator_size=size)
    with pytest.raises(ValueError, match=rf"discriminator_size={size}.*\({N_TRAIN} examples\)"):
        dm.setup()


def test_largest_valid_discriminator_size() -> None:
    dm = make(discriminator_size=N_TRAIN - 1)
    dm.setup()
    assert len(dm.train_set) == 1


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("batch_size", 0),
        ("batch_size", -3),
        ("batch_size", 1.5),
        ("batch_size", "128"),
        ("batch_size", True),
        ("eval_batch_size", 0),
        ("num_workers", -1),
        ("num_workers", 2.0),
        ("discriminator_size", 0),
        ("discriminator_size", None),
        ("split_seed", -1),
        ("split_seed", "0"),
    ],
)
def test_bad_integer_arguments_name_the_argument_and_value(argument: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"{argument}.*{repr(value) if isinstance(value, str) else value}") as info:
        make(**{argument: value})
    assert f"data.{argument}" in str(info.value)


@pytest.mark.parametrize("root", [None, "", 3])
def test_bad_root(root: object) -> None:
    with pytest.raises(ValueError, match="root must be a non-empty path"):
        ToyDataModule(root)


def test_bad_download() -> None:
    with pytest.raises(ValueError, match="download must be true or false, got 'yes'"):
        make(download="yes")


def test_split_tensors_limit_and_cache() -> None:
    dm = make(eval_batch_size=7)
    x_all, _y_all = dm.split_tensors("discriminator")
    assert x_all.shape == (20, 1, 4, 4)
    x5, y5 = dm.split_tensors("discriminator", limit=5)
    assert x5.shape == (5, 1, 4, 4) and y5.shape == (5,)
    assert x5.data_ptr() == x_all.data_ptr()  # sliced from the cache, not rebuilt
    torch.testing.assert_close(x5, x_all[:5])
    x_big, _ = dm.split_tensors("discriminator", limit=10_000)  # clamps to the split
    assert len(x_big) == 20


def test_split_tensors_grows_the_cache_after_a_small_limit() -> None:
    dm = make()
    x3, _ = dm.split_tensors("test", limit=3)
    x_all, y_all = dm.split_tensors("test")
    assert len(x_all) == N_TEST
    torch.testing.assert_close(x_all[:3], x3)
    assert y_all.tolist() == [i % 3 for i in range(N_TEST)]


def test_split_tensors_rejects_bad_split_and_limit() -> None:
    dm = make()
    with pytest.raises(ValueError, match=r"Unknown split 'train'. Valid values are \['discriminator', 'test'\]"):
        dm.split_tensors("train")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be >= 1, got 0"):
        dm.split_tensors("test", limit=0)


def test_loaders_use_their_batch_sizes() -> None:
    dm = make(batch_size=8, eval_batch_size=6)
    dm.setup()
    assert [len(y) for _, y in dm.train_dataloader()] == [8, 8, 8, 6]
    assert [len(y) for _, y in dm.val_dataloader()] == [6, 6, 6, 2]
    assert [len(y) for _, y in dm.test_dataloader()] == [6, 4]
    val_positions = torch.cat([x[:, 0, 0, 0] for x, _ in dm.val_dataloader()]).long().tolist()
    assert val_positions == dm.discriminator_set.indices  # validation is the discriminator split, in order


def test_train_loader_shuffles() -> None:
    dm = make(batch_size=30)
    torch.manual_seed(0)
    first = next(iter(dm.train_dataloader()))[0][:, 0, 0, 0].tolist()
    assert first != [float(i) for i in dm.train_set.indices]


class _Linear(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(16, 3)

    def _loss(self, batch) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x.flatten(1)), y)

    def training_step(self, batch, batch_idx):
        return self._loss(batch)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_runs_under_a_lightning_trainer() -> None:
    dm = make(batch_size=8, eval_batch_size=8)
    trainer = L.Trainer(
        accelerator="cpu", fast_dev_run=True, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(_Linear(), datamodule=dm)
    trainer.test(_Linear(), datamodule=dm, verbose=False)
    assert dm.hparams["discriminator_size"] == 20
