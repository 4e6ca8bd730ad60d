"""mini-ImageNet: Ravi & Larochelle split CSVs with class-folder or flat JPEGs, and the datamodule."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mge.data import MiniImageNet, MiniImageNetDataModule
from mge.data.mini_imagenet import MINI_IMAGENET_SPLITS
from tests.data.fake_data import write_fake_mini_imagenet

PER_CLASS = 10


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize("split", MINI_IMAGENET_SPLITS)
def test_dataset_reads_every_split(tmp_path, split, flat) -> None:
    written = write_fake_mini_imagenet(tmp_path, per_class=PER_CLASS, flat=flat)[split]
    dataset = MiniImageNet(tmp_path, split=split)
    assert len(dataset) == len(written)
    wnids = sorted({wnid for _, wnid in written})
    assert dataset.classes == wnids
    assert dataset.class_to_idx == {w: i for i, w in enumerate(wnids)}
    assert dataset.targets == [wnids.index(wnid) for _, wnid in written]
    assert [p.rsplit("/", 1)[1] for p, _ in dataset.samples] == [f for f, _ in written]
    assert [t for _, t in dataset.samples] == dataset.targets
    image, target = dataset[0]
    assert isinstance(image, Image.Image) and image.size == (84, 84) and image.mode == "RGB"
    assert target == dataset.targets[0]


def test_dataset_applies_transform_and_size(tmp_path) -> None:
    write_fake_mini_imagenet(tmp_path, per_class=2)
    dataset = MiniImageNet(tmp_path, split="val", transform=lambda im: im.size, image_size=32)
    assert dataset[0][0] == (32, 32)


def test_splits_have_disjoint_classes(tmp_path) -> None:
    write_fake_mini_imagenet(tmp_path, per_class=2)
    classes = [set(MiniImageNet(tmp_path, split=s).classes) for s in MINI_IMAGENET_SPLITS]
    assert all(a.isdisjoint(b) for i, a in enumerate(classes) for b in classes[i + 1 :])


def test_unknown_split(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"Unknown value 'valid' for argument split. Valid values are \['train'"):
        MiniImageNet(tmp_path, split="valid")


def test_missing_csv_names_the_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=f"split file {tmp_path / 'mini_imagenet' / 'test.csv'} not found"):
        MiniImageNet(tmp_path, split="test")


def test_wrong_header(tmp_path) -> None:
    write_fake_mini_imagenet(tmp_path, per_class=2)
    csv = tmp_path / "mini_imagenet" / "val.csv"
    csv.write_text("image,class\n" + csv.read_text().split("\n", 1)[1])
    with pytest.raises(RuntimeError, match=r"has header \['image', 'class'\]; expected \['filename', 'label'\]"):
        MiniImageNet(tmp_path, split="val")


def test_malformed_row(tmp_path) -> None:
    write_fake_mini_imagenet(tmp_path, per_class=2)
    csv = tmp_path / "mini_imagenet" / "val.csv"
    csv.write_text(csv.read_text() + "just_a_filename.jpg\n")
    with pytest.raises(RuntimeError, match=r"val.csv, line 6: expected 'filename,label'"):
        MiniImageNet(tmp_path, split="val")


def test_missing_image_names_both_candidates(tmp_path) -> None:
    written = write_fake_mini_imagenet(tmp_path, per_class=2)
    filename, wnid = written["test"][1]
    (tmp_path / "mini_imagenet" / "images" / wnid / filename).unlink()
    with pytest.raises(FileNotFoundError, match=rf"{filename}.*test.csv line 3.*images/{wnid}/{filename} nor at"):
        MiniImageNet(tmp_path, split="test")


def test_corrupt_image_is_reported_with_its_path(tmp_path) -> None:
    written = write_fake_mini_imagenet(tmp_path, per_class=2)
    filename, wnid = written["val"][0]
    path = tmp_path / "mini_imagenet" / "images" / wnid / filename
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    dataset = MiniImageNet(tmp_path, split="val")
    with pytest.raises(RuntimeError, match=f"Cannot read mini-ImageNet image {path}"):
        dataset[0]


def make(root, **kwargs) -> MiniImageNetDataModule:
    kwargs.setdefault("discriminator_size", 6)
    return MiniImageNetDataModule(root, **kwargs)


def test_datamodule_split_contract(tmp_path, check_splits) -> None:
    write_fake_mini_imagenet(tmp_path, classes={"train": 3}, per_class=PER_CLASS)
    # 10% of each of 3 classes of 10 images is the test split.
    check_splits(make(tmp_path, batch_size=8), 3 * (PER_CLASS - 1), 3)


def test_datamodule_test_split_is_ten_percent_per_class_and_fixed(tmp_path) -> None:
    write_fake_mini_imagenet(tmp_path, classes={"train": 4}, per_class=20)
    a, b = make(tmp_path, split_seed=0), make(tmp_path, split_seed=1)
    for dm in (a, b):
        dm.setup()
    assert a.test_set.dataset.indices == b.test_set.dataset.indices  # independent of split_seed
    assert a.discriminator_set.indices != b.discriminator_set.indices
    full = a.test_set.dataset.dataset
    test_positions = a.test_set.dataset.indices
    assert sorted(full.targets[i] for i in test_positions) == [0, 0, 1, 1, 2, 2, 3, 3]
    # In positions of the full train.csv: test, discriminator and train are disjoint and cover it.
    train_source = a.train_set.dataset.indices
    disc = {train_source[i] for i in a.discriminator_set.indices}
    train = {train_source[i] for i in a.train_set.indices}
    assert disc.isdisjoint(test_positions) and train.isdisjoint(test_positions) and disc.isdisjoint(train)
    assert len(disc | train | set(test_positions)) == len(full) == 80
    _, y = a.split_tensors("test")
    assert y.tolist() == [full.targets[i] for i in test_positions]


def test_datamodule_missing_data_names_the_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'mini_imagenet' / 'train.csv'} not found"):
        make(tmp_path).setup()


def test_datamodule_rejects_more_than_64_train_classes(tmp_path) -> None:
    write_fake_mini_imagenet(tmp_path, classes={"train": 65}, per_class=1)
    with pytest.raises(RuntimeError, match="lists 65 classes; the mini-ImageNet train split has 64"):
        make(tmp_path).setup()


def test_datamodule_tensors_are_normalised_84x84(tmp_path) -> None:
    write_fake_mini_imagenet(tmp_path, classes={"train": 2}, per_class=PER_CLASS)
    x, y = make(tmp_path).split_tensors("discriminator", limit=4)
    assert x.shape == (4, 3, 84, 84) and x.dtype == torch.float32 and y.dtype == torch.int64
    # Uniform random pixels have mean 0.5: normalised with ImageNet statistics that is about 0.15..0.2.
    assert 0.0 < float(x.mean()) < 0.4
