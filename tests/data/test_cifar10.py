"""CIFAR-10: fake python batches in the official layout, md5 check, augmentation, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from mge.data import CIFAR10DataModule
from tests.data.fake_data import write_fake_cifar10

N_PER_BATCH, N_TEST = 12, 10
N_TRAIN = 5 * N_PER_BATCH


def make(root, **kwargs) -> CIFAR10DataModule:
    kwargs.setdefault("discriminator_size", 20)
    kwargs.setdefault("download", False)
    return CIFAR10DataModule(root, **kwargs)


def test_split_contract(tmp_path, no_cifar_md5, check_splits) -> None:
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    check_splits(make(tmp_path, batch_size=16), N_TRAIN, N_TEST)


def test_labels_and_pixels_match_the_batches(tmp_path, no_cifar_md5) -> None:
    labels = write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    dm = make(tmp_path)
    x, y = dm.split_tensors("test")
    assert y.tolist() == labels["test"]
    # Eval transform only: undoing the normalisation gives back the stored pixels exactly.
    source = dm.test_set.dataset.data  # (N, 32, 32, 3) uint8, as torchvision reshapes the rows
    mean, std = torch.tensor(dm.mean).view(3, 1, 1), torch.tensor(dm.std).view(3, 1, 1)
    pixels = (x * std + mean) * 255
    torch.testing.assert_close(pixels, torch.from_numpy(source).permute(0, 3, 1, 2).float(), atol=1e-3, rtol=0)
    _, y_disc = dm.split_tensors("discriminator")
    assert y_disc.tolist() == [labels["train"][i] for i in dm.discriminator_set.indices]


def test_no_split_shares_an_image(tmp_path, no_cifar_md5) -> None:
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)  # every image distinct
    dm = make(tmp_path)
    dm.setup()
    data = dm.train_set.dataset.data
    rows = lambda a: {r.tobytes() for r in a}  # noqa: E731
    train, disc = rows(data[dm.train_set.indices]), rows(data[dm.discriminator_set.indices])
    test = rows(dm.test_set.dataset.data)
    assert (len(train), len(disc), len(test)) == (N_TRAIN - 20, 20, N_TEST)
    assert train.isdisjoint(disc) and train.isdisjoint(test) and disc.isdisjoint(test)


def test_augmentation_on_train_only(tmp_path, no_cifar_md5) -> None:
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    dm = make(tmp_path)
    dm.setup()
    torch.manual_seed(0)
    first, second = dm.train_set[0][0], dm.train_set[0][0]
    assert first.shape == (3, 32, 32)
    assert not torch.equal(first, second)  # random crop/flip
    assert torch.equal(dm.discriminator_set[0][0], dm.discriminator_set[0][0])
    assert torch.equal(dm.test_set[0][0], dm.test_set[0][0])


def test_seed_changes_the_split(tmp_path, no_cifar_md5) -> None:
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    a, b, c = make(tmp_path, split_seed=0), make(tmp_path, split_seed=0), make(tmp_path, split_seed=1)
    for dm in (a, b, c):
        dm.setup()
    assert a.discriminator_set.indices == b.discriminator_set.indices
    assert a.discriminator_set.indices != c.discriminator_set.indices


@pytest.mark.parametrize("download", [False, True])
def test_missing_dataset_names_the_path(tmp_path, download) -> None:
    dm = make(tmp_path, download=download)
    with pytest.raises(FileNotFoundError, match=f"CIFAR-10 not found under {tmp_path / 'cifar-10-batches-py'}"):
        dm.setup()


def test_missing_batch_is_named(tmp_path, no_cifar_md5) -> None:
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"\(missing: data_batch_3\)"):
        make(tmp_path).setup()


def test_md5_check_is_kept(tmp_path) -> None:
    # Without the test patch, torchvision's md5 check rejects files that are not the official batches.
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    with pytest.raises(RuntimeError, match=r"corrupt or not the official python batches \(torchvision: Dataset not"):
        make(tmp_path).setup()


def test_truncated_batch_is_reported(tmp_path, no_cifar_md5) -> None:
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(RuntimeError, match=f"CIFAR-10 files under {tmp_path / 'cifar-10-batches-py'} cannot be read"):
        make(tmp_path).setup()


def test_out_of_range_label_is_reported(tmp_path, no_cifar_md5) -> None:
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    entry = pickle.loads(path.read_bytes())
    entry["labels"][0] = 10
    path.write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(RuntimeError, match=r"10 labels in \[1, 10\]; expected one label in \[0, 9\]"):
        make(tmp_path).setup()


def test_stored_rows_are_channel_major(tmp_path, no_cifar_md5) -> None:
    # The official rows are 1024 red, then 1024 green, then 1024 blue values, each row-major 32x32.
    write_fake_cifar10(tmp_path, N_PER_BATCH, N_TEST)
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())["data"]
    dm = make(tmp_path)
    dm.setup()
    image = np.asarray(dm.train_set.dataset[0][0])  # PIL -> (32, 32, 3)
    assert np.array_equal(image[..., 1], raw[0, 1024:2048].reshape(32, 32))
