"""MNIST and Fashion-MNIST: fake IDX files in torchvision's layout, and the real files where present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mge.data import FashionMNISTDataModule, MNISTDataModule
from tests.data.fake_data import write_fake_mnist

MODULES = [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")]


@pytest.mark.parametrize(("cls", "folder"), MODULES)
def test_split_contract_on_fake_idx_files(cls, folder, tmp_path, check_splits) -> None:
    write_fake_mnist(tmp_path, folder, n_train=60, n_test=20)
    dm = cls(tmp_path, download=False, discriminator_size=15)
    check_splits(dm, 60, 20)


@pytest.mark.parametrize(("cls", "folder"), MODULES)
def test_tensors_are_the_normalised_files(cls, folder, tmp_path) -> None:
    written = write_fake_mnist(tmp_path, folder, n_train=60, n_test=20)
    dm = cls(tmp_path, download=False, discriminator_size=15)
    x, y = dm.split_tensors("test")
    expected = (torch.from_numpy(written["test_images"]).float() / 255 - dm.mean[0]) / dm.std[0]
    torch.testing.assert_close(x[:, 0], expected)
    assert y.tolist() == written["test_labels"].tolist()
    _x_disc, y_disc = dm.split_tensors("discriminator")
    positions = dm.discriminator_set.indices
    assert y_disc.tolist() == written["train_labels"][positions].tolist()


def test_discriminator_split_never_overlaps_test_by_content(tmp_path) -> None:
    write_fake_mnist(tmp_path, n_train=300, n_test=50)  # every image distinct
    dm = MNISTDataModule(tmp_path, download=False, discriminator_size=100)
    dm.setup()
    rows = lambda x: {r.numpy().tobytes() for r in x.reshape(len(x), -1)}  # noqa: E731
    disc, test = rows(dm.split_tensors("discriminator")[0]), rows(dm.split_tensors("test")[0])
    train = rows(dm.train_set.dataset.tensors[0][dm.train_set.indices])
    assert len(disc) == 100 and len(test) == 50 and len(train) == 200
    assert disc.isdisjoint(test) and disc.isdisjoint(train) and train.isdisjoint(test)


@pytest.mark.parametrize(("cls", "folder"), MODULES)
@pytest.mark.parametrize("download", [False, True])
def test_missing_files_name_the_path(cls, folder, download, tmp_path) -> None:
    dm = cls(tmp_path, download=download, discriminator_size=10)
    with pytest.raises(FileNotFoundError, match=f"{folder} not found under {tmp_path / folder / 'raw'}") as info:
        dm.setup()
    assert "t10k-labels-idx1-ubyte" in str(info.value)
    assert ("prepare_data()" in str(info.value)) == download


def test_one_missing_file_is_named(tmp_path) -> None:
    write_fake_mnist(tmp_path, n_train=30, n_test=10)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"\(missing: train-labels-idx1-ubyte\)"):
        MNISTDataModule(tmp_path, download=False, discriminator_size=5).setup()


def test_truncated_file_is_reported_as_corrupt(tmp_path) -> None:
    write_fake_mnist(tmp_path, n_train=30, n_test=10)
    images = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(RuntimeError, match=f"raw files under {tmp_path / 'MNIST' / 'raw'} are corrupt or truncated"):
        MNISTDataModule(tmp_path, download=False, discriminator_size=5).setup()


def test_garbage_header_is_reported_as_corrupt(tmp_path) -> None:
    write_fake_mnist(tmp_path, n_train=30, n_test=10)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"not an idx file at all")
    with pytest.raises(RuntimeError, match="corrupt or truncated"):
        MNISTDataModule(tmp_path, download=False, discriminator_size=5).setup()


def test_label_count_mismatch_is_reported(tmp_path) -> None:
    write_fake_mnist(tmp_path, n_train=30, n_test=10)
    from tests.data.fake_data import write_idx

    write_idx(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.zeros(29, dtype=np.uint8))
    with pytest.raises(RuntimeError, match=r"hold images of shape \(30, 28, 28\) and 29 labels"):
        MNISTDataModule(tmp_path, download=False, discriminator_size=5).setup()


def test_prepare_data_without_download_does_nothing(tmp_path) -> None:
    MNISTDataModule(tmp_path, download=False).prepare_data()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.shared_data
@pytest.mark.parametrize(("cls", "folder"), MODULES)
def test_real_data(cls, folder, shared_data) -> None:
    # download=True: prepare_data must see the files and not try the (unreachable) mirrors.
    dm = cls(shared_data, download=True, discriminator_size=5000)
    dm.prepare_data()
    dm.setup()
    assert (len(dm.train_set), len(dm.discriminator_set), len(dm.test_set)) == (55_000, 5000, 10_000)
    x, y = dm.split_tensors("discriminator", limit=2000)
    assert x.shape == (2000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    # The constants are the training set's statistics, so a random sample is close to standardised.
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    assert set(y.tolist()) == set(range(10))
    x_test, y_test = dm.split_tensors("test", limit=100)
    assert x_test.shape == (100, 1, 28, 28) and y_test.shape == (100,)
