"""Model pools on disk (spec section 4).

A pool is a folder::

    pool/
      manifest.json            # format, seed reference, architecture, config, targets, members, run state
      base.safetensors         # the seed's full state_dict: what every member shares
      shard-00000.safetensors  # stacked target tensors {name: (k, *shape)} of k members
      shard-00001.safetensors
      ...

Members are appended shard by shard, so a pool of thousands of models is streamed to disk with
memory bounded by one shard. Every file is written atomically and the manifest last, so a run
killed at any moment leaves a consistent pool that :class:`PoolWriter` can resume.
Tensors are only ever read with safetensors; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from mge.pool.files import atomic_save_safetensors, atomic_write_json, tensor_hash
from mge.pool.seed import PICKLE_SUFFIXES, SeedModel, check_finite, load_seed

POOL_FORMAT = "mge-pool/1"
MANIFEST = "manifest.json"
BASE = "base.safetensors"


def _read_tensors(path: Path) -> dict[str, Tensor]:
    if path.suffix in PICKLE_SUFFIXES:
        raise ValueError(f"Refusing to unpickle {path}: pools are stored as safetensors only.")
    if not path.is_file():
        raise FileNotFoundError(f"Pool file {path} is missing; the pool is incomplete.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"Pool file {path} is corrupt or not safetensors ({err}).") from err


@dataclass(frozen=True)
class PoolMember:
    """One model of a pool: its manifest record and its target tensors."""

    record: dict[str, Any]
    params: dict[str, Tensor]


class Pool:
    """Read access to a pool folder.

    >>> pool = Pool.load("outputs/generate/runs/<date>/pool")  # doctest: +SKIP
    >>> model = pool.model(0)  # an nn.Module in eval mode  # doctest: +SKIP
    """

    def __init__(self, root: Path, manifest: dict[str, Any], seed: SeedModel) -> None:
        self.root = root
        self.manifest = manifest
        self.seed = seed

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> Pool:
        """Open a pool folder; with ``verify``, check every member's content hash."""
        root = Path(path)
        if root.is_file():
            raise ValueError(
                f"{root} is a file; a pool is a folder holding {MANIFEST}. "
                + ("Pickled pools are refused." if root.suffix in PICKLE_SUFFIXES else "")
            )
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"No {MANIFEST} in {root}: not a pool folder (run mge-generate).")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{manifest_path} is not valid JSON ({err}).") from err
        if manifest.get("format") != POOL_FORMAT:
            raise ValueError(f"{manifest_path} has format {manifest.get('format')!r}, expected {POOL_FORMAT!r}.")
        pool = cls(root, manifest, load_seed(root / BASE))
        if verify:
            pool.verify()
        return pool

    @property
    def members(self) -> list[dict[str, Any]]:
        return self.manifest["members"]

    @property
    def targets(self) -> list[str]:
        return self.manifest["targets"]

    def __len__(self) -> int:
        return len(self.members)

    def chunks(self) -> Iterator[tuple[list[dict[str, Any]], dict[str, Tensor]]]:
        """``(records, {name: (k, *shape)})`` shard by shard: streams a pool of any size."""
        by_shard: dict[str, list[dict[str, Any]]] = {}
        for record in self.members:
            by_shard.setdefault(record["shard"], []).append(record)
        for shard, records in by_shard.items():
            tensors = _read_tensors(self.root / shard)
            index = torch.tensor([r["index"] for r in records])
            yield records, {k: tensors[k][index] for k in self.targets}

    def __iter__(self) -> Iterator[PoolMember]:
        """Members in order, one shard in memory at a time."""
        for records, params in self.chunks():
            for i, record in enumerate(records):
                yield PoolMember(record, {k: v[i] for k, v in params.items()})

    def parameters(self, indices: Sequence[int] | None = None) -> dict[str, Tensor]:
        """Stacked target tensors ``{name: (B, *shape)}`` of the chosen members (all by default)."""
        wanted = list(range(len(self))) if indices is None else list(indices)
        for i in wanted:
            if not 0 <= i < len(self):
                raise IndexError(f"Pool {self.root} has {len(self)} members; index {i} is out of range.")
        rows: dict[int, dict[str, Tensor]] = {}
        wanted_set, offset = set(wanted), 0
        for records, params in self.chunks():
            for j in range(len(records)):
                if offset + j in wanted_set:
                    rows[offset + j] = {k: v[j] for k, v in params.items()}
            offset += len(records)
        return {k: torch.stack([rows[i][k] for i in wanted]) for k in self.targets}

    def state_dict(self, i: int) -> dict[str, Tensor]:
        """Full state_dict of member ``i``: the seed's tensors with the member's targets."""
        member = self.parameters([i])
        return {**self.seed.state_dict, **{k: v[0] for k, v in member.items()}}

    def model(self, i: int) -> nn.Module:
        """Member ``i`` as an ``nn.Module`` in eval mode."""
        model = self.seed.build()
        model.load_state_dict(self.state_dict(i))
        return model.eval()

    def pool_hash(self) -> str:
        """SHA-256 over the members' content hashes, in order: equal pools have equal hashes."""
        return hashlib.sha256("".join(r["sha256"] for r in self.members).encode()).hexdigest()

    def verify(self) -> None:
        """Check each member's tensors against its recorded hash and for non-finite values."""
        for member in self:
            if tensor_hash(member.params) != member.record["sha256"]:
                raise ValueError(
                    f"Member {member.record['id']} of pool {self.root} does not match its hash: "
                    "the shard was modified or corrupted."
                )
            check_finite(member.params, f"{self.root} member {member.record['id']}")


class PoolWriter:
    """Creates a pool folder, appends shards of members, and resumes an interrupted run.

    ``state`` is an opaque JSON-serialisable dict the caller stores with each shard (for the
    generator: round, RNG state, knob values) so that a resumed run continues exactly where the
    interrupted one stopped.
    """

    def __init__(
        self,
        root: str | Path,
        seed: SeedModel,
        targets: Sequence[str],
        config: Mapping[str, Any],
        seed_reference: Mapping[str, Any],
    ) -> None:
        self.root = Path(root)
        config = json.loads(json.dumps(dict(config)))  # as it will read back from JSON
        manifest_path = self.root / MANIFEST
        if manifest_path.is_file():
            self.manifest = Pool.load(self.root, verify=False).manifest
            if self.manifest["seed"].get("sha256") != seed_reference.get("sha256"):
                raise ValueError(
                    f"Pool {self.root} exists and was generated from another seed "
                    f"({self.manifest['seed'].get('path')}), so it cannot be resumed from this one. Pick "
                    "another output folder, or delete it to start over."
                )
            if self.manifest["config"] != config:
                raise ValueError(
                    f"Pool {self.root} exists and was made with a different config "
                    f"({', '.join(_differing_keys(self.manifest['config'], config))} differ), so it cannot be "
                    "resumed. Pick another output folder, or delete it to start over."
                )
            self.resumed = True
            return
        self.resumed = False
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_save_safetensors(seed.state_dict, self.root / BASE, {"mge_seed": json.dumps(seed.header())})
        self.manifest = {
            "format": POOL_FORMAT,
            "seed": dict(seed_reference),
            "architecture": seed.header(),
            "config": config,
            "targets": list(targets),
            "members": [],
            "rounds": [],
            "state": None,
            "finished": False,
        }
        atomic_write_json(self.manifest, manifest_path)

    @property
    def members(self) -> list[dict[str, Any]]:
        return self.manifest["members"]

    @property
    def state(self) -> dict[str, Any] | None:
        return self.manifest["state"]

    def append(
        self,
        params: Mapping[str, Tensor],
        records: Sequence[Mapping[str, Any]],
        round_log: Mapping[str, Any],
        state: Mapping[str, Any],
    ) -> None:
        """Add ``len(records)`` members (stacked ``params``) plus one round's log and run state.

        A round that accepted nobody still records its log and state.
        """
        shard = f"shard-{len(self.manifest['rounds']):05d}.safetensors"
        new = []
        if records:
            atomic_save_safetensors(params, self.root / shard, {"format": POOL_FORMAT})
            for i, record in enumerate(records):
                member = {k: v[i] for k, v in params.items()}
                new.append(
                    {
                        "id": f"m{len(self.members) + i:06d}",
                        "shard": shard,
                        "index": i,
                        **record,
                        "sha256": tensor_hash(member),
                    }
                )
        self.manifest["members"].extend(new)
        self.manifest["rounds"].append(dict(round_log))
        self.manifest["state"] = dict(state)
        atomic_write_json(self.manifest, self.root / MANIFEST)

    def finish(self, summary: Mapping[str, Any]) -> Pool:
        """Mark the pool complete, store a summary, and open it for reading."""
        self.manifest["finished"] = True
        self.manifest["summary"] = dict(summary)
        atomic_write_json(self.manifest, self.root / MANIFEST)
        return Pool.load(self.root, verify=False)


def _differing_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested configs."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [prefix or "config"] if old != new else []
    return [
        differing
        for key in sorted(set(old) | set(new))
        for differing in _differing_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
    ]
