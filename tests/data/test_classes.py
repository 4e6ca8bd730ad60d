"""Class-split datamodules (``data.classes``): kept classes relabelled in every split, the others held out."""

from __future__ import annotations

import re

import pytest
import torch

from mge.data import GTSRBDataModule, MiniImageNetDataModule, MNISTDataModule, build_datamodule
from tests.data.fake_data import write_fake_gtsrb, write_fake_mini_imagenet, write_fake_mnist
from tests.data.test_base import N_TRAIN, ToyDataModule


def toy(classes, **kwargs) -> ToyDataModule:
    kwargs.setdefault("discriminator_size", 6)
    return ToyDataModule("unused", classes=classes, **kwargs)


def original_labels(x: torch.Tensor) -> list[int]:
    """The toy label of each image: its position (first pixel, 100 + position in test) modulo 3."""
    return [int(v) % 100 % 3 for v in x[:, 0, 0, 0]]


def test_every_split_holds_only_the_kept_classes_relabelled_in_their_order() -> None:
    dm = toy([2, 0])
    assert dm.num_classes == 2 and ToyDataModule.total_classes == 3
    for split in ("discriminator", "test"):
        x, y = dm.split_tensors(split)
        originals = original_labels(x)
        assert set(originals) == {0, 2}
        assert y.tolist() == [{2: 0, 0: 1}[c] for c in originals]  # classes[i] -> i
    xb, yb = zip(*dm.train_dataloader(), strict=True)
    assert set(original_labels(torch.cat(xb))) == {0, 2}
    assert set(torch.cat(yb).tolist()) == {0, 1}
    # every training example of the kept classes is in the train or discriminator split
    assert len(dm.train_set) + len(dm.discriminator_set) == sum(i % 3 != 1 for i in range(N_TRAIN))


def test_without_classes_the_splits_are_unchanged() -> None:
    a, b = toy(None), toy([0, 1, 2])
    a.setup()
    b.setup()
    permutation = torch.randperm(N_TRAIN, generator=torch.Generator().manual_seed(0)).tolist()
    assert a.discriminator_set.indices == b.discriminator_set.indices == permutation[:6]
    assert a.num_classes == b.num_classes == 3
    torch.testing.assert_close(a.split_tensors("test"), b.split_tensors("test"))


@pytest.mark.parametrize("split", ["train", "test"])
def test_held_out_tensors_are_the_other_classes_with_their_own_labels(split) -> None:
    dm = toy([0, 1])
    x, y = dm.held_out_tensors(split)
    assert original_labels(x) == y.tolist() and set(y.tolist()) == {2}
    assert len(y) == (N_TRAIN if split == "train" else 10) // 3  # 50 train, 10 test images; every third is class 2
    if split == "train":  # never in the train or discriminator split
        seen = set(dm.train_set.indices) | set(dm.discriminator_set.indices)
        assert not seen & {int(v) for v in x[:, 0, 0, 0]}


def test_held_out_needs_held_out_classes() -> None:
    for classes in (None, [0, 1, 2]):
        with pytest.raises(ValueError, match="holds out no class.*Set data.classes"):
            toy(classes).held_out_tensors()
    with pytest.raises(ValueError, match=r"Unknown split 'discriminator'. Valid values are \['train', 'test'\]"):
        toy([0, 1]).held_out_tensors("discriminator")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ([0], "names 1 class; a classifier needs 2"),
        ([0, 0, 1], r"repeats \[0\]"),
        ([0, 3], r"holds \[3\], which are not class indices of toy \(integers in \[0, 2\]\)"),
        ([-1, 0], r"holds \[-1\]"),
        ([0, 1.0], r"holds \[1.0\]"),
        ([True, 0], r"holds \[True\]"),
        (2, "data.classes must be a list of class indices of toy, got 2"),
        ("01", "data.classes must be a list of class indices of toy, got '01'"),
    ],
)
def test_invalid_classes_name_the_key_the_value_and_the_fix(classes, message) -> None:
    with pytest.raises(ValueError, match=message) as err:
        toy(classes)
    assert "Set data.classes to null (all 3 classes) or to a list of at least 2 distinct" in str(err.value)


def test_discriminator_size_is_checked_against_the_kept_classes() -> None:
    expected = "smaller than the toy training set of classes [0, 1] (34 examples)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        toy([0, 1], discriminator_size=34).setup()


def test_registry_and_hparams_carry_classes(tmp_path) -> None:
    dm = build_datamodule("mnist", root=tmp_path, classes=[0, 1, 2, 3, 4])
    assert dm.num_classes == 5 and MNISTDataModule.total_classes == 10
    assert dm.hparams["classes"] == [0, 1, 2, 3, 4]
    # what mge-generate does: rebuild from the saved kwargs
    rebuilt = build_datamodule("mnist", **{k: v for k, v in dm.hparams.items() if k != "dataset"})
    assert rebuilt.classes == dm.classes and rebuilt.num_classes == 5


def _positions_of(x: torch.Tensor, mean: float, std: float) -> list[int]:
    """Undo the normalisation and read the index that fake_data writes into the first two pixels."""
    pixels = (x[:, 0, 0, :2] * std + mean).mul(255).round().long()
    return (pixels[:, 0] * 256 + pixels[:, 1]).tolist()


def test_class_split_train_loader_never_yields_a_held_out_class(tmp_path) -> None:
    written = write_fake_mnist(tmp_path, n_train=200)
    dm = MNISTDataModule(tmp_path, download=False, discriminator_size=10, batch_size=16, classes=[0, 1, 2, 3, 4])
    seen = []
    for x, y in dm.train_dataloader():
        positions = _positions_of(x, dm.mean[0], dm.std[0])
        assert written["train_labels"][positions].tolist() == y.tolist()  # kept labels are 0..4 unchanged
        seen += positions
    assert set(written["train_labels"][seen].tolist()) == {0, 1, 2, 3, 4}
    assert len(seen) == 100 - 10  # all of the kept classes' 100 images but the discriminator split's
    x_out, y_out = dm.held_out_tensors("train")
    assert set(y_out.tolist()) == {5, 6, 7, 8, 9}
    assert set(_positions_of(x_out, dm.mean[0], dm.std[0])).isdisjoint(seen)


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_mnist_class_split_never_trains_on_a_held_out_image(shared_data) -> None:
    dm = MNISTDataModule(shared_data, download=False, discriminator_size=1000, batch_size=4096, classes=[0, 1, 2, 3, 4])
    x_out, y_out = dm.held_out_tensors("train")
    assert set(y_out.tolist()) == {5, 6, 7, 8, 9}

    def keys(x: torch.Tensor) -> set[bytes]:
        return {row.tobytes() for row in x.flatten(1).numpy()}

    held_out = keys(x_out)
    n_seen = 0
    for x, y in dm.train_dataloader():
        assert int(y.max()) <= 4
        assert held_out.isdisjoint(keys(x))
        n_seen += len(y)
    assert n_seen + 1000 + len(y_out) == 60000
    _, y_test = dm.split_tensors("test")
    _, y_test_out = dm.held_out_tensors("test")
    assert len(y_test) + len(y_test_out) == 10000 and set(y_test_out.tolist()) == {5, 6, 7, 8, 9}


def test_mini_imagenet_holds_out_test_csv_without_classes_and_train_classes_with(tmp_path) -> None:
    written = write_fake_mini_imagenet(tmp_path, classes={"train": 3, "test": 2}, per_class=10)
    dm = MiniImageNetDataModule(tmp_path, discriminator_size=3)
    x, y = dm.held_out_tensors()
    assert x.shape == (20, 3, 84, 84) and sorted(y.tolist()) == [0] * 10 + [1] * 10
    assert len(written["test"]) == 20
    with pytest.raises(ValueError, match=r"Valid values are \['test'\]"):
        dm.held_out_tensors("train")
    split = MiniImageNetDataModule(tmp_path, discriminator_size=3, classes=[0, 2])
    _, y_train = split.held_out_tensors("train")
    _, y_test = split.held_out_tensors("test")
    assert y_train.tolist() == [1] * 9 and y_test.tolist() == [1]  # 10% of each class is the test split
    assert set(split.split_tensors("test")[1].tolist()) == {0, 1}


def test_gtsrb_splits_by_class_from_its_labels(tmp_path) -> None:
    written = write_fake_gtsrb(tmp_path, per_class=2, n_test=12)
    dm = GTSRBDataModule(tmp_path, download=False, discriminator_size=4, classes=list(range(22)))
    _, y = dm.held_out_tensors("test")
    assert y.tolist() == [c for c in written["test"] if c >= 22]
    assert len(dm.train_set) + len(dm.discriminator_set) == 2 * 22
    assert set(dm.split_tensors("test")[1].tolist()) <= set(range(22))
