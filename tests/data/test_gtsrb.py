"""GTSRB: fake PPM folders and label CSV in torchvision's layout, resizing, errors."""

from __future__ import annotations

import shutil

import pytest
import torch

from mge.data import GTSRBDataModule
from tests.data.fake_data import GTSRB_NUM_CLASSES, write_fake_gtsrb

PER_CLASS, N_TEST = 2, 12
N_TRAIN = PER_CLASS * GTSRB_NUM_CLASSES


def make(root, **kwargs) -> GTSRBDataModule:
    kwargs.setdefault("discriminator_size", 20)
    kwargs.setdefault("download", False)
    return GTSRBDataModule(root, **kwargs)


def test_split_contract(tmp_path, check_splits) -> None:
    write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    check_splits(make(tmp_path, batch_size=16), N_TRAIN, N_TEST)


def test_labels_follow_folders_and_csv(tmp_path) -> None:
    labels = write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    dm = make(tmp_path)
    _, y = dm.split_tensors("test")
    assert y.tolist() == labels["test"]
    _, y_disc = dm.split_tensors("discriminator")
    assert y_disc.tolist() == [labels["train"][i] for i in dm.discriminator_set.indices]
    assert max(labels["train"]) == 42


def test_images_of_any_size_become_32x32(tmp_path) -> None:
    write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    dm = make(tmp_path)
    dm.setup()
    sizes = {dm.test_set.dataset[i][0].size for i in range(N_TEST)}
    assert len(sizes) > 1  # the fake PPMs vary in size ...
    assert {tuple(dm.test_set[i][0].shape) for i in range(N_TEST)} == {(3, 32, 32)}  # ... the tensors do not
    torch.manual_seed(0)
    assert dm.train_set[0][0].shape == (3, 32, 32)


@pytest.mark.parametrize("download", [False, True])
def test_missing_dataset_names_the_path(tmp_path, download) -> None:
    with pytest.raises(FileNotFoundError, match=f"GTSRB not found: {tmp_path / 'gtsrb' / 'GTSRB' / 'Training'}"):
        make(tmp_path, download=download).setup()


def test_missing_test_labels_name_the_file(tmp_path) -> None:
    write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    (tmp_path / "gtsrb" / "GT-final_test.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"GT-final_test.csv does not exist.*GTSRB_Final_Test_GT.zip"):
        make(tmp_path).setup()


def test_missing_class_folder_is_reported(tmp_path) -> None:
    write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    shutil.rmtree(tmp_path / "gtsrb" / "GTSRB" / "Training" / "00017")
    with pytest.raises(RuntimeError, match=r"missing: \['00017'\], unexpected: \[\]"):
        make(tmp_path).setup()


def test_empty_class_folder_is_reported(tmp_path) -> None:
    write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    for ppm in (tmp_path / "gtsrb" / "GTSRB" / "Training" / "00003").glob("*.ppm"):
        ppm.unlink()
    with pytest.raises(RuntimeError, match=r"is incomplete: Found no valid file for the classes 00003"):
        make(tmp_path).setup()


def test_corrupt_label_csv_is_reported(tmp_path) -> None:
    write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    (tmp_path / "gtsrb" / "GT-final_test.csv").write_text("Filename,ClassId\n00000.ppm,1\n")
    with pytest.raises(RuntimeError, match="GT-final_test.csv is corrupt"):
        make(tmp_path).setup()


def test_truncated_image_is_reported_with_its_path(tmp_path) -> None:
    write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    image = tmp_path / "gtsrb" / "GTSRB" / "Final_Test" / "Images" / "00004.ppm"
    image.write_bytes(image.read_bytes()[:40])
    dm = make(tmp_path)
    with pytest.raises(RuntimeError, match=f"Cannot read GTSRB image {image}"):
        dm.split_tensors("test")


def test_image_listed_in_csv_but_absent_is_reported(tmp_path) -> None:
    write_fake_gtsrb(tmp_path, PER_CLASS, N_TEST)
    image = tmp_path / "gtsrb" / "GTSRB" / "Final_Test" / "Images" / "00002.ppm"
    image.unlink()
    with pytest.raises(RuntimeError, match=f"Cannot read GTSRB image {image}"):
        make(tmp_path).split_tensors("test")
