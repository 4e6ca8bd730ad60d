"""Seed models on disk: weights plus the metadata needed to rebuild and trust them.

A seed is saved as one safetensors file whose metadata carries the architecture (name and
kwargs), the dataset and split seed, the test accuracy, the training time and the config hash --
like torchvision's weights ``meta``. Loading never unpickles by default: Lightning ``.ckpt`` and
other pickle-based files are refused unless the caller opts in with ``allow_pickle=True``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open
from torch import Tensor, nn

from mge.errors import CheckpointError
from mge.pool.files import atomic_save_safetensors

SEED_FILENAME = "seed.safetensors"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".pkl", ".pickle", ".bin")
# Prefixes that wrappers add to state_dict keys: Lightning's attribute, torch.compile, DDP.
_KEY_PREFIXES = ("model.", "_orig_mod.", "module.")


def canonical_key(key: str) -> str:
    """Strip wrapper prefixes so that the codec addresses parameters by their module names."""
    changed = True
    while changed:
        changed = False
        for prefix in _KEY_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


@dataclass
class SeedModel:
    """A trained model and what is known about it."""

    arch: str
    arch_kwargs: dict[str, Any]
    num_classes: int
    in_channels: int
    image_size: int
    state_dict: dict[str, Tensor]
    meta: dict[str, Any] = field(default_factory=dict)  # dataset, split_seed, test_accuracy, ...

    def build(self) -> nn.Module:
        """The architecture with the seed's weights, in eval mode."""
        model = self.build_empty()
        model.load_state_dict(self.state_dict)
        return model.eval()

    def build_empty(self) -> nn.Module:
        """The architecture with fresh weights (for its tensor names, shapes and dtypes)."""
        from mge.models.registry import build_model

        return build_model(
            self.arch,
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            image_size=self.image_size,
            **self.arch_kwargs,
        )

    def header(self) -> dict[str, Any]:
        """Everything but the tensors, JSON-serialisable."""
        return {
            "arch": self.arch,
            "arch_kwargs": self.arch_kwargs,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "meta": self.meta,
        }


def check_finite(state_dict: dict[str, Tensor], what: str, fix: str = "") -> None:
    """Raise if any floating tensor holds NaN or inf, naming ``what`` holds it (a seed, a pool member).

    MGE would copy the damage of a non-finite seed into every model it draws.
    """
    for name, tensor in state_dict.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{what} has non-finite values (NaN or inf) in {name!r}.{' ' + fix if fix else ''}")


_SEED_FIX = "Retrain the seed or pick another checkpoint; MGE cannot generate from NaN/inf weights."


def save_seed(seed: SeedModel, path: str | Path) -> Path:
    """Write ``seed`` as safetensors (atomically) and return the path."""
    path = Path(path)
    check_finite(seed.state_dict, f"Seed {path}", _SEED_FIX)
    state = {canonical_key(k): v.detach().cpu() for k, v in seed.state_dict.items()}
    atomic_save_safetensors(state, path, {"mge_seed": json.dumps(seed.header())})
    return path


def resolve_seed_path(path: str | Path) -> Path:
    """The seed file itself: ``path``, or ``path/seed.safetensors`` for an mge-train run folder."""
    path = Path(path)
    if path.is_dir():
        candidate = path / SEED_FILENAME
        if not candidate.is_file():
            raise FileNotFoundError(
                f"No {SEED_FILENAME} in {path}. Point seed_model= at the run folder of mge-train or at a "
                "seed .safetensors file."
            )
        return candidate
    if not path.exists():
        raise FileNotFoundError(f"Seed checkpoint {path} does not exist.")
    return path


def read_seed_file(path: Path, what: str) -> SeedModel:
    """A seed (or a pool's base) from a safetensors file with mge's ``mge_seed`` header."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{what} ({path}) is not a readable safetensors file ({err}). It may be truncated or corrupt: "
            "write it again, or check that it is not a pickle file with a wrong suffix."
        ) from err
    if "mge_seed" not in header:
        raise CheckpointError(
            f"{path} has no 'mge_seed' metadata, so its architecture is unknown. Save seeds with "
            "mge.pool.save_seed (mge-train does)."
        )
    try:
        info = json.loads(header["mge_seed"])
        seed = SeedModel(state_dict={canonical_key(k): v for k, v in state.items()}, **info)
    except (json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{path}: its 'mge_seed' metadata is malformed ({err}).") from err
    check_finite(seed.state_dict, what.capitalize(), _SEED_FIX)
    return seed


def load_seed(path: str | Path, *, allow_pickle: bool = False) -> SeedModel:
    """Load a seed from a ``.safetensors`` file, an ``mge-train`` run folder, or (opt-in) a ``.ckpt``.

    Args:
        path: file or run folder.
        allow_pickle: also accept pickle-based checkpoints (the ``.ckpt`` files mge-train's Lightning
            run writes). Only for files you trust. Even then ``torch.load(weights_only=True)`` is used,
            which refuses anything but tensors and plain containers.
    """
    path = resolve_seed_path(path)
    if path.suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise CheckpointError(
                f"Refusing to unpickle {path}: pickle files can run arbitrary code. Use the "
                f"{SEED_FILENAME} that mge-train writes beside it, or pass allow_pickle=true if you "
                "trust this file."
            )
        return _load_lightning_checkpoint(path)
    return read_seed_file(path, f"seed {path}")


# Lightning saves the datamodule's hyperparameters under this key; mge's datamodules save their
# build_datamodule arguments, with the dataset's name under "dataset".
_DATAMODULE_HPARAMS = "datamodule_hyper_parameters"


def _load_lightning_checkpoint(path: Path) -> SeedModel:
    """A seed from a ``.ckpt`` of mge-train's ``SeedClassifier``, its dataset settings included."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or refused pickles
        raise CheckpointError(
            f"Could not load checkpoint {path} ({type(err).__name__}: {err}). It is truncated, not a Lightning "
            "checkpoint, or holds objects a weights-only load refuses."
        ) from err
    hparams = ckpt.get("hyper_parameters", {}) if isinstance(ckpt, dict) else {}
    missing = [k for k in ("arch", "arch_kwargs", "num_classes", "in_channels", "image_size") if k not in hparams]
    if missing or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not an mge SeedClassifier checkpoint (missing {missing or ['state_dict']}).")
    state = {canonical_key(k): v for k, v in ckpt["state_dict"].items()}
    check_finite(state, f"Seed {path}", _SEED_FIX)
    meta: dict[str, Any] = {"source": str(path)}
    data = dict(ckpt.get(_DATAMODULE_HPARAMS) or {})
    if "dataset" in data:
        meta["dataset"] = data["dataset"]
        meta["data"] = {"name": data.pop("dataset"), **data}
    return SeedModel(
        arch=hparams["arch"],
        arch_kwargs=dict(hparams["arch_kwargs"]),
        num_classes=hparams["num_classes"],
        in_channels=hparams["in_channels"],
        image_size=hparams["image_size"],
        state_dict=state,
        meta=meta,
    )
