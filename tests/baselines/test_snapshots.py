"""The snapshot callback saves exactly the chosen epochs of a real (tiny) Lightning fit on digits."""

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from mge.baselines import SNAPSHOT_INDEX, SnapshotCallback, load_snapshots, snapshot_filename
from mge.data import build_datamodule
from mge.models.lightning_module import SeedClassifier
from mge.pool import load_seed, save_seed

BATCHES_PER_EPOCH = 3


class RecordWeights(L.Callback):
    """The model's full state at the end of every epoch, to compare the snapshots with."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.states[trainer.current_epoch] = {k: v.clone() for k, v in pl_module.model.state_dict().items()}


def fit(module: SeedClassifier, snapshots: SnapshotCallback, max_epochs: int) -> RecordWeights:
    L.seed_everything(0, verbose=False)
    recorder = RecordWeights()
    trainer = L.Trainer(
        max_epochs=max_epochs,
        limit_train_batches=BATCHES_PER_EPOCH,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[snapshots, recorder],
    )
    trainer.fit(module, datamodule=build_datamodule("digits", root="data", discriminator_size=300, batch_size=32))
    return recorder


def check_snapshots(folder: Path, recorder: RecordWeights, epochs: list[int]) -> list[dict]:
    """Exactly ``epochs`` were saved, each equal to the model's full state at the end of that epoch."""
    assert sorted(p.name for p in folder.iterdir()) == sorted([SNAPSHOT_INDEX, *map(snapshot_filename, epochs)])
    index = json.loads((folder / SNAPSHOT_INDEX).read_text())["snapshots"]
    assert [s["epoch"] for s in index] == epochs
    assert [s["step"] for s in index] == [(e + 1) * BATCHES_PER_EPOCH for e in epochs]
    for entry in index:
        seed = load_seed(folder / entry["file"])
        want = recorder.states[entry["epoch"]]
        assert seed.state_dict.keys() == want.keys()
        assert all(torch.equal(seed.state_dict[k], want[k]) for k in want), entry["file"]
        assert seed.meta["snapshot"]["epoch"] == entry["epoch"]
        assert seed.meta["data"]["name"] == "digits" and seed.meta["data"]["split_seed"] == 0
    assert not all(torch.equal(recorder.states[epochs[0]][k], recorder.states[epochs[-1]][k]) for k in want)
    return index


def test_cycle_end_snapshots_of_a_warm_restart_run_hold_the_weights_and_buffers_at_those_epochs(tmp_path):
    lr = 0.01
    module = SeedClassifier(
        arch="resnet18",  # has BatchNorm buffers, which must be saved too
        arch_kwargs={"base_channels": 4},
        num_classes=10,
        in_channels=1,
        image_size=8,
        lr=lr,
        scheduler="cosine_restarts",
        cycle_epochs=2,
    )
    recorder = fit(module, SnapshotCallback(tmp_path, cycle_ends=True), max_epochs=6)
    index = check_snapshots(tmp_path, recorder, [1, 3, 5])
    assert any("running_mean" in k for k in recorder.states[1])
    # the last step of a cycle of 2 x 3 steps runs at lr/2 (1 + cos(5 pi / 6)), just before the restart
    assert [s["lr"] for s in index] == pytest.approx([lr / 2 * (1 + math.cos(5 * math.pi / 6))] * 3)
    stack = load_snapshots(tmp_path)
    assert stack.tensors["conv1.weight"].shape == (3, 4, 1, 3, 3)
    assert torch.equal(stack.tensors["bn1.running_var"][2], recorder.states[5]["bn1.running_var"])
    # a snapshot changed after the run no longer matches the index
    changed = load_seed(tmp_path / snapshot_filename(5))
    changed.state_dict["conv1.weight"][0, 0, 0, 0] += 1
    save_seed(changed, tmp_path / snapshot_filename(5))
    with pytest.raises(ValueError, match="does not match the hash"):
        load_snapshots(tmp_path)


def test_last_k_snapshots_and_a_rerun_replaces_the_previous_ones(tmp_path):
    def module() -> SeedClassifier:
        return SeedClassifier(arch="digits_cnn", num_classes=10, in_channels=1, image_size=8)

    fit(module(), SnapshotCallback(tmp_path, last=2), max_epochs=3)
    recorder = fit(module(), SnapshotCallback(tmp_path, last=3), max_epochs=4)
    check_snapshots(tmp_path, recorder, [1, 2, 3])


def test_snapshot_rules_are_validated():
    with pytest.raises(ValueError, match="exactly one rule"):
        SnapshotCallback("x")
    with pytest.raises(ValueError, match="exactly one rule"):
        SnapshotCallback("x", last=2, cycle_ends=True)
    with pytest.raises(ValueError, match="last must be"):
        SnapshotCallback("x", last=0)


def test_cycle_ends_without_warm_restarts_is_refused(tmp_path):
    module = SeedClassifier(arch="digits_cnn", num_classes=10, in_channels=1, image_size=8)
    with pytest.raises(ValueError, match="cosine_restarts"):
        fit(module, SnapshotCallback(tmp_path, cycle_ends=True), max_epochs=2)
