"""Atomic file writes, content hashes and confined file names: what every pool file relies on."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from mge.errors import PoolError

TMP_SUFFIX = ".tmp"
# A file a manifest may name: a plain file name (no folder, no "..", not hidden) ending in .safetensors.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.safetensors")


def _file_mode() -> int:
    """The mode a new file gets from the user's umask (mkstemp would make it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write via a temporary file in the same folder and ``os.replace`` it into place.

    Readers (and a resumed run after a crash) see either the old file or the whole new one; an
    interrupted write leaves at most a hidden ``.<name>.<random>.tmp`` that readers ignore and
    writers clean up. The file gets the permissions of the user's umask, like any other file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())  # after writing: a writer may replace the file it was given
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_safetensors(tensors: Mapping[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Save tensors (moved to CPU, made contiguous) as safetensors, atomically."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic_write(path, lambda tmp: save_file(cpu, tmp, metadata=metadata))


def atomic_write_json(data: Any, path: Path) -> None:
    """Write strict JSON (indented; NaN and infinity refused), atomically."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    _atomic_write(path, write)


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temporary files an interrupted atomic write left in ``folder``; return them."""
    leftovers = [p for p in folder.glob(f".*{TMP_SUFFIX}") if p.is_file() and not p.is_symlink()]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def confined_file(root: Path, name: object, what: str) -> Path:
    """``root / name`` for a file name a manifest gives, refusing anything outside ``root``.

    Only plain ``.safetensors`` file names are accepted: no folders, no ``..``, no absolute
    paths, and no symbolic links (which could point anywhere).
    """
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise PoolError(
            f"{what} names the file {name!r}; a pool only refers to plain .safetensors file names inside its "
            f"folder {root}. The manifest was edited or is not from mge: refusing to read it."
        )
    path = root / name
    if path.is_symlink():
        raise PoolError(f"{what} {path} is a symbolic link; a pool only reads plain files inside its folder.")
    return path


def tensor_hash(tensors: Mapping[str, Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
