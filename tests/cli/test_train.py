"""mge-train: a fast dev run for every dataset with its default model, resume, clear errors."""

import pickle
from pathlib import Path

import pytest
import torch

from mge.cli.train import train
from mge.errors import CheckpointError
from mge.pool import load_seed
from tests.data.fake_data import (
    write_fake_cifar10,
    write_fake_gtsrb,
    write_fake_mini_imagenet,
    write_fake_mnist,
)
from tests.helpers import QUIET_TRAIN, compose_config

# dataset -> (writer of fake files in its real on-disk format, default architecture)
FAKE_DATA = {
    "digits": (None, "digits_cnn"),
    "mnist": (lambda root: write_fake_mnist(root, "MNIST"), "lenet5"),
    "fashion_mnist": (lambda root: write_fake_mnist(root, "FashionMNIST"), "lenet5"),
    "cifar10": (write_fake_cifar10, "resnet18"),
    "gtsrb": (write_fake_gtsrb, "resnet18"),
    "mini_imagenet": (write_fake_mini_imagenet, "conv4"),
}


@pytest.mark.parametrize("dataset", sorted(FAKE_DATA))
def test_fast_dev_run_on_every_dataset_with_its_default_model(dataset, tmp_path, no_cifar_md5):
    writer, arch = FAKE_DATA[dataset]
    if writer is not None:
        writer(tmp_path / "data")
    cfg = compose_config(
        "train",
        [
            *QUIET_TRAIN,
            f"dataset={dataset}",
            f"data.root={tmp_path / 'data'}",
            "data.download=false",
            "data.num_workers=0",
            "data.batch_size=4",
            "data.discriminator_size=6",
            "+trainer.fast_dev_run=true",
        ],
        tmp_path / "run",
    )
    assert cfg.model.arch == arch
    report = train(cfg)
    assert 0.0 <= report.test_accuracy <= 1.0
    seed = load_seed(tmp_path / "run")
    assert seed.arch == arch and seed.meta["dataset"] == dataset
    assert seed.meta["data"]["split_seed"] == 0


def test_digits_seed_records_its_metrics_and_resumes_from_a_checkpoint(tmp_path):
    first = compose_config("train", [*QUIET_TRAIN, "trainer.max_epochs=1"], tmp_path / "a")
    metrics = train(first).to_dict()
    assert set(metrics) >= {
        "test_accuracy",
        "train_seconds",
        "device",
        "dataset",
        "model",
        "param_count",
        "config_hash",
    }
    assert metrics["device"] == "cpu" and metrics["param_count"] > 0
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    resumed = compose_config("train", [*QUIET_TRAIN, "trainer.max_epochs=2", f"ckpt_path={last}"], tmp_path / "b")
    assert train(resumed).epochs == 2
    # one more epoch from the checkpoint, not two from scratch
    steps = [
        torch.load(p / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
        for p in (tmp_path / "a", tmp_path / "b")
    ]
    assert steps[1] == 2 * steps[0]  # fmt: skip


def test_same_seed_gives_the_same_weights(tmp_path):
    overrides = [*QUIET_TRAIN, "trainer.max_epochs=1", "callbacks=none"]
    train(compose_config("train", overrides, tmp_path / "a"))
    train(compose_config("train", overrides, tmp_path / "b"))
    a, b = load_seed(tmp_path / "a"), load_seed(tmp_path / "b")
    assert all((a.state_dict[k] == b.state_dict[k]).all() for k in a.state_dict)


def test_missing_dataset_names_the_path_and_how_to_get_it(tmp_path):
    cfg = compose_config(
        "train", [*QUIET_TRAIN, "dataset=mnist", f"data.root={tmp_path}", "data.download=false"], tmp_path / "run"
    )
    with pytest.raises((RuntimeError, FileNotFoundError), match=str(tmp_path)):
        train(cfg)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("data.batch_size=0", "batch_size"),
        ("data.discriminator_size=100000", "discriminator_size"),
        ("+data.colour=red", r"Unknown argument\(s\) \['colour'\]"),
        ("optim.optimizer=rmsprop", "Valid values are"),
        ("optim.lr=-1", "optim.lr"),
        ("model.arch=vgg", r"model\.arch: unknown architecture 'vgg'"),
        ("+model.kwargs.depth=3", "depth"),
    ],
)
def test_bad_config_values_say_what_is_wrong(tmp_path, override, match):
    cfg = compose_config("train", [*QUIET_TRAIN, "trainer.max_epochs=1", override], tmp_path / "run")
    with pytest.raises(ValueError, match=match):  # ConfigError is a ValueError; the CLI prints either
        train(cfg)


def test_a_truncated_or_foreign_ckpt_path_is_refused_before_training(tmp_path):
    truncated = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "epoch": 0}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:50])
    foreign = tmp_path / "foreign.ckpt"
    with open(foreign, "wb") as f:
        pickle.dump(Path("objects a weights-only load refuses"), f)
    for path, match in ((truncated, "cannot be resumed from"), (foreign, "cannot be resumed from")):
        cfg = compose_config("train", [*QUIET_TRAIN, f"ckpt_path={path}"], tmp_path / "run")
        with pytest.raises(CheckpointError, match=match):
            train(cfg)
    assert not (tmp_path / "run" / "seed.safetensors").exists()


def test_a_lightning_checkpoint_of_mge_train_works_as_a_seed_with_allow_pickle(tmp_path):
    train(compose_config("train", [*QUIET_TRAIN, "trainer.max_epochs=1"], tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match="Refusing to unpickle"):
        load_seed(ckpt)
    seed, saved = load_seed(ckpt, allow_pickle=True), load_seed(tmp_path / "run")
    assert seed.meta["data"]["name"] == "digits" and seed.meta["data"]["split_seed"] == 0
    assert all(torch.equal(seed.state_dict[k], v) for k, v in saved.state_dict.items())
