"""Snapshot pools: several models from ONE training run (spec section 5).

Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for free", train with a cosine learning rate
that restarts every cycle (``optim.scheduler=cosine_restarts`` of ``SeedClassifier``) and keep
the weights at the end of each cycle, where the rate is near 0 and the model sits in a minimum;
the plainer variant keeps the last K epochs of an ordinary run. Either way the pool costs one
training, which is what a generated pool's time has to beat.

:class:`SnapshotCallback` writes each snapshot as a seed file (``mge.pool.save_seed``: full state,
BatchNorm buffers included, with the architecture in its metadata), so a snapshot loads with
``mge.pool.load_seed``; an index ``snapshots.json`` lists them with their epoch, step, learning
rate and content hash. Both are written atomically, the index after the snapshot it names, and
:func:`load_snapshots` stacks a folder into one pool after checking every file against the index.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from torch import nn

from mge.baselines.independent import SeedStack, stack_seeds
from mge.pool.files import atomic_write_json, tensor_hash
from mge.pool.seed import SeedModel, save_seed

SNAPSHOT_INDEX = "snapshots.json"
_ARCH_KEYS = ("arch", "arch_kwargs", "num_classes", "in_channels", "image_size")


def snapshot_filename(epoch: int) -> str:
    """File of the snapshot taken at the end of (0-based) ``epoch``."""
    return f"epoch_{epoch:04d}.safetensors"


class SnapshotCallback(L.Callback):
    """Saves ``module.model``'s full state at the end of chosen training epochs.

    Give exactly one rule:

    - ``last=K``: the last K epochs of ``trainer.max_epochs``;
    - ``cycle_ends=True``: the last epoch of every cycle of ``optim.scheduler=cosine_restarts``
      (epochs ``c-1, 2c-1, ...`` for ``c = optim.cycle_epochs``); a trailing partial cycle is not
      saved, so make ``max_epochs`` a multiple of ``cycle_epochs``.

    Epochs are Lightning's 0-based ``current_epoch``. The learning rate recorded is the one of the
    epoch's last optimizer step (Lightning steps schedulers before the epoch-end hooks run). A
    resumed fit keeps the snapshots of the epochs before it and replaces the rest; a fresh fit
    into a folder with an index replaces them all.

    Args:
        dirpath: folder for the snapshot files and ``snapshots.json``.
        last: number of final epochs to save.
        cycle_ends: save at the end of each warm-restart cycle.
        meta: extra JSON-serialisable metadata for every snapshot (e.g. the run's config hash);
            the datamodule's name and split are added when it is an mge datamodule.
    """

    def __init__(
        self,
        dirpath: str | Path,
        *,
        last: int | None = None,
        cycle_ends: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if (last is None) == (not cycle_ends):
            raise ValueError(
                f"SnapshotCallback needs exactly one rule, got last={last!r} and cycle_ends={cycle_ends!r}. Pass "
                "last=K for the final K epochs or cycle_ends=True for the end of each cosine_restarts cycle."
            )
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
            raise ValueError(f"last must be a whole number of epochs >= 1, got {last!r}.")
        self.dirpath = Path(dirpath)
        self.last = last
        self.cycle_ends = cycle_ends
        self.meta = dict(meta or {})
        self.epochs: set[int] = set()  # resolved at fit start
        self.index: list[dict[str, Any]] = []
        self._lr = float("nan")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        hp = pl_module.hparams
        missing = [k for k in _ARCH_KEYS if k not in hp]
        if missing or not isinstance(getattr(pl_module, "model", None), nn.Module):
            raise ValueError(
                f"SnapshotCallback saves module.model with its architecture hyperparameters {list(_ARCH_KEYS)}; "
                f"{type(pl_module).__name__} lacks {missing or ['a .model nn.Module']}. Use "
                "mge.models.lightning_module.SeedClassifier."
            )
        max_epochs = trainer.max_epochs
        if max_epochs is None or max_epochs < 1:
            raise ValueError(f"SnapshotCallback counts epochs and needs trainer.max_epochs >= 1, got {max_epochs}.")
        if self.cycle_ends:
            cycle = hp.get("cycle_epochs")
            if hp.get("scheduler") != "cosine_restarts" or cycle is None:
                raise ValueError(
                    f"cycle_ends=True needs optim.scheduler=cosine_restarts with optim.cycle_epochs, got scheduler="
                    f"{hp.get('scheduler')!r}. Set both, or use last=K."
                )
            self.epochs = set(range(cycle - 1, max_epochs, cycle))
        elif self.last is not None:  # __init__ made sure one rule is set
            if self.last > max_epochs:
                raise ValueError(f"last={self.last} exceeds trainer.max_epochs={max_epochs}; lower it.")
            self.epochs = set(range(max_epochs - self.last, max_epochs))
        index_path = self.dirpath / SNAPSHOT_INDEX
        previous = json.loads(index_path.read_text())["snapshots"] if index_path.is_file() else []
        start = trainer.current_epoch  # > 0 only when resuming
        self.index = [s for s in previous if s["epoch"] < start]
        if trainer.is_global_zero:
            for stale in (s for s in previous if s["epoch"] >= start):
                (self.dirpath / stale["file"]).unlink(missing_ok=True)
            self._write_index()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"])  # the rate this batch's step uses

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch not in self.epochs or not trainer.is_global_zero:
            return
        model: nn.Module = pl_module.model  # type: ignore[assignment]  # checked in on_fit_start
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        entry: dict[str, Any] = {
            "file": snapshot_filename(epoch),
            "epoch": epoch,
            "step": trainer.global_step,
            "lr": self._lr,
        }
        hp = pl_module.hparams
        seed = SeedModel(
            arch=hp["arch"],
            arch_kwargs=dict(hp["arch_kwargs"]),
            num_classes=hp["num_classes"],
            in_channels=hp["in_channels"],
            image_size=hp["image_size"],
            state_dict=state,
            meta={**self._data_meta(trainer), **self.meta, "snapshot": entry},
        )
        save_seed(seed, self.dirpath / entry["file"])
        self.index = [s for s in self.index if s["epoch"] != epoch] + [{**entry, "sha256": tensor_hash(state)}]
        self._write_index()

    def _write_index(self) -> None:
        atomic_write_json({"snapshots": sorted(self.index, key=lambda s: s["epoch"])}, self.dirpath / SNAPSHOT_INDEX)

    @staticmethod
    def _data_meta(trainer: L.Trainer) -> dict[str, Any]:
        """The dataset and split, as ``mge-train`` records them, so that snapshot pools can be checked like seeds."""
        dm = getattr(trainer, "datamodule", None)
        keys = ("split_seed", "discriminator_size")
        if dm is None or not all(hasattr(dm, k) for k in (*keys, "name", "root")):
            return {}
        return {"data": {"name": dm.name, "root": str(Path(dm.root).resolve()), **{k: getattr(dm, k) for k in keys}}}


def load_snapshots(dirpath: str | Path) -> SeedStack:
    """The snapshots of a folder as one pool ``{name: (K, *shape)}``, in epoch order.

    Each file must hash to what the index recorded (a snapshot overwritten or corrupted after the
    run is refused); the architecture and split checks are :func:`~mge.baselines.stack_seeds`'.
    """
    dirpath = Path(dirpath)
    index_path = dirpath / SNAPSHOT_INDEX
    if not index_path.is_file():
        raise FileNotFoundError(f"No {SNAPSHOT_INDEX} in {dirpath}: point at the dirpath a SnapshotCallback wrote.")
    index = json.loads(index_path.read_text())["snapshots"]
    if not index:
        raise ValueError(f"{index_path} lists no snapshot: the run ended before the first chosen epoch.")
    stack = stack_seeds([dirpath / Path(entry["file"]).name for entry in index])
    for i, entry in enumerate(index):
        digest = tensor_hash({k: v[i] for k, v in stack.tensors.items()})
        if digest != entry["sha256"]:
            raise ValueError(
                f"Snapshot {dirpath / entry['file']} does not match the hash in {index_path}: it changed after the "
                "run. Rerun the training, or remove the file and its entry."
            )
    return stack
