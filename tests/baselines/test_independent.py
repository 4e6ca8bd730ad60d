"""Independently trained seeds stack into one pool only when they are comparable and distinct."""

import shutil
from pathlib import Path

import pytest
import torch

from mge.baselines import stack_seeds
from mge.models import build_model
from mge.pool import SEED_FILENAME, SeedModel, save_seed

DATA = {"name": "digits", "root": "/data", "split_seed": 0, "discriminator_size": 300, "batch_size": 64}


def write_seed(folder: Path, init: int, arch: str = "digits_cnn", data: dict | None = None, **kwargs) -> Path:
    """An mge-train-like run folder holding a seed of ``arch`` initialised with torch seed ``init``."""
    torch.manual_seed(init)
    model = build_model(arch, num_classes=10, in_channels=1, image_size=8, **kwargs)
    seed = SeedModel(
        arch=arch,
        arch_kwargs=kwargs,
        num_classes=10,
        in_channels=1,
        image_size=8,
        state_dict=model.state_dict(),
        meta={"seed": init, "test_accuracy": 0.5, "data": data or DATA},
    )
    save_seed(seed, folder / SEED_FILENAME)
    return folder


def test_seeds_stack_into_full_state_tensors_in_member_order(tmp_path):
    folders = [write_seed(tmp_path / f"run{i}", init=i) for i in range(3)]
    stack = stack_seeds(folders)
    torch.manual_seed(1)
    second = build_model("digits_cnn", num_classes=10, in_channels=1, image_size=8).state_dict()
    assert stack.tensors.keys() == second.keys()
    for k, v in second.items():
        assert stack.tensors[k].shape == (3, *v.shape) and torch.equal(stack.tensors[k][1], v), k
    assert [m["seed"] for m in stack.metas] == [0, 1, 2] and stack.seed.arch == "digits_cnn"
    assert stack.sources == [str(f) for f in folders]


@pytest.mark.parametrize(
    "other, message",
    [
        ({"arch": "mlp"}, "differ in arch: .* 'digits_cnn', .* 'mlp'"),
        ({"hidden_dim": 32}, "differ in arch_kwargs"),
        ({"data": {**DATA, "split_seed": 1}}, "differ in data.split_seed: .* 0, .* 1"),
        ({"data": {**DATA, "name": "mnist"}}, "differ in data.name"),
        ({"data": {"name": "digits"}}, "does not record its dataset split"),
    ],
)
def test_seeds_of_another_architecture_or_split_are_refused_by_name(tmp_path, other, message):
    write_seed(tmp_path / "a", init=0)
    write_seed(tmp_path / "b", init=1, **other)
    with pytest.raises(ValueError, match=message):
        stack_seeds([tmp_path / "a", tmp_path / "b"])


def test_duplicate_weights_are_refused_naming_both_folders(tmp_path):
    write_seed(tmp_path / "a", init=0)
    write_seed(tmp_path / "b", init=1)
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    with pytest.raises(ValueError, match=r"a and .*copy have identical weights"):
        stack_seeds([tmp_path / "a", tmp_path / "b", tmp_path / "copy"])
    with pytest.raises(ValueError, match="identical weights"):
        stack_seeds([tmp_path / "b", tmp_path / "b"])
    with pytest.raises(ValueError, match="at least one"):
        stack_seeds([])
