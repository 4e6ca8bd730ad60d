"""Model pools on disk (spec section 4): every kind of pool (MGE, evolved, baselines) in one format.

A pool is a folder::

    pool/
      manifest.json            # format, kind, architecture, bases, config, targets, members, log, run state
      base.safetensors         # a base model: the full state_dict members build on (several bases allowed,
      base-<name>.safetensors  #   e.g. one per seed of an evolved population)
      shard-00000.safetensors  # stacked tensors {name: (k, *shape)} of k members, for every target name
      ...
      .lock                    # who holds (or last held) the writer's lock

Members carry the ``targets`` tensors (for MGE: the generated weights and biases; for independently
trained models and snapshots: every floating tensor, BatchNorm statistics included); their base fills
the rest. What loads is what was written: :meth:`Pool.load` reads only plain file names inside the
folder, checks every base and member against its content hash, every tensor's shape and dtype
against the architecture, and refuses non-finite members. Writes are atomic and the manifest is
written last, so a run killed at any moment leaves a pool that :class:`PoolWriter` resumes; one
writer at a time holds the folder's lock. Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from mge.errors import PoolError
from mge.pool.files import (
    atomic_save_safetensors,
    atomic_write_json,
    confined_file,
    file_hash,
    remove_leftovers,
    tensor_hash,
)
from mge.pool.lock import LOCK_FILE, FolderLock
from mge.pool.manifest import (
    ARCHITECTURE_KEYS,
    POOL_FORMAT,
    POOL_KINDS,
    BaseRecord,
    LineageRecord,
    Manifest,
    MemberRecord,
    NewMember,
    base_file,
    parse_manifest,
    unknown_parents,
)
from mge.pool.seed import PICKLE_SUFFIXES, SeedModel, check_finite, read_seed_file

MANIFEST = "manifest.json"
SHARD_PREFIX = "shard-"


@dataclass(frozen=True)
class PoolMember:
    """One model of a pool: its record and the tensors it carries."""

    record: MemberRecord
    params: dict[str, Tensor]


def _read_tensors(path: Path, what: str) -> dict[str, Tensor]:
    if not path.is_file():
        raise PoolError(f"{what} {path} is missing; the pool is incomplete.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise PoolError(f"{what} {path} is corrupt or not safetensors ({err}).") from err


def _read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if path.is_symlink():
        raise PoolError(f"{path} is a symbolic link; a pool only reads plain files inside its folder.")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PoolError(f"{path} is not valid JSON ({err}); the file is truncated or was edited.") from err
    except RecursionError:
        raise PoolError(f"{path} is nested too deeply to be a pool manifest.") from None
    return parse_manifest(data, str(path))


class Pool:
    """A pool folder, read and verified.

    >>> pool = Pool.load("outputs/mge/runs/<time>/pool")  # doctest: +SKIP
    >>> model = pool.model(0)  # an nn.Module in eval mode  # doctest: +SKIP
    """

    def __init__(self, root: Path, manifest: Manifest, bases: dict[str, SeedModel]) -> None:
        self.root = root
        self.manifest = manifest
        self.bases = bases

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> Pool:
        """Open a pool folder: bases are always checked; with ``verify``, every member too.

        Raises:
            PoolError: not a pool, or a file is corrupt, tampered with, misplaced or of the wrong shape.
            FileNotFoundError: the folder does not exist.
        """
        root = Path(path)
        if root.is_file():
            hint = " Pickled pools are refused." if root.suffix in PICKLE_SUFFIXES else ""
            raise PoolError(f"{root} is a file; a pool is a folder holding {MANIFEST}.{hint}")
        if not root.is_dir():
            raise FileNotFoundError(f"No pool folder at {root}.")
        if not (root / MANIFEST).is_file():
            raise PoolError(f"No {MANIFEST} in {root}: not a pool folder (mge-generate and mge-evolve write them).")
        manifest = _read_manifest(root)
        pool = cls(root, manifest, _load_bases(root, manifest))
        if verify:
            pool.verify()
        return pool

    # ------------------------------------------------------------------ what it holds

    @property
    def records(self) -> list[MemberRecord]:
        return self.manifest.members

    @property
    def targets(self) -> list[str]:
        return self.manifest.targets

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def seed(self) -> SeedModel:
        """The first base: for a pool generated from one seed, that seed."""
        return next(iter(self.bases.values()))

    def __len__(self) -> int:
        return len(self.records)

    def lineage_pool(self, name: str) -> Pool:
        """The pool that parents ``"<name>:<id>"`` refer to, loaded, verified and checked to be the one recorded.

        Raises:
            PoolError: ``name`` is not in the manifest's lineage, or the pool there has changed.
            FileNotFoundError: the pool is no longer where it was recorded.
        """
        record = self.manifest.lineage.get(name)
        if record is None:
            raise PoolError(f"Pool {self.root} has no lineage pool {name!r} (it has {sorted(self.manifest.lineage)}).")
        path = Path(record.path)
        pool = Pool.load(path if path.is_absolute() else self.root / path)
        if pool.pool_hash() != record.pool_hash:
            raise PoolError(
                f"Lineage pool {name!r} of {self.root} at {pool.root} is not the pool recorded (its hash differs): "
                "it was changed or replaced after this pool was written."
            )
        return pool

    def build(self, base: str | None = None) -> nn.Module:
        """The architecture holding base ``base`` (the first by default), in eval mode."""
        return self.bases[base or next(iter(self.bases))].build()

    # ------------------------------------------------------------------ tensors

    def chunks(self) -> Iterator[tuple[list[MemberRecord], dict[str, Tensor]]]:
        """``(records, {name: (k, *shape)})`` shard by shard: streams a pool of any size."""
        by_shard: dict[str, list[MemberRecord]] = {}
        for record in self.records:
            by_shard.setdefault(record.shard, []).append(record)
        for shard, records in by_shard.items():
            tensors = self._shard(shard, max(r.index for r in records) + 1)
            index = torch.tensor([r.index for r in records])
            yield records, {k: tensors[k][index] for k in self.targets}

    def _shard(self, name: str, rows: int) -> dict[str, Tensor]:
        """A shard's tensors, checked against the architecture (names, shapes, dtypes, enough rows)."""
        path = confined_file(self.root, name, "a member's shard")
        tensors = _read_tensors(path, "shard")
        expected = self.seed.state_dict
        missing = [k for k in self.targets if k not in tensors]
        if missing:
            raise PoolError(f"Shard {path} lacks the tensors {missing}; the pool is corrupt.")
        for k in self.targets:
            t, want = tensors[k], expected[k]
            if t.dim() != want.dim() + 1 or t.shape[1:] != want.shape or t.shape[0] < rows or t.dtype != want.dtype:
                raise PoolError(
                    f"Shard {path}: tensor {k!r} is {t.dtype} {tuple(t.shape)}, expected {want.dtype} "
                    f"(>= {rows}, *{tuple(want.shape)}) for {self.manifest.architecture['arch']}; the pool is corrupt."
                )
        return tensors

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
        if not wanted:
            return {k: self.seed.state_dict[k].new_empty(0, *self.seed.state_dict[k].shape) for k in self.targets}
        return {k: torch.stack([rows[i][k] for i in wanted]) for k in self.targets}

    def state_dict(self, i: int) -> dict[str, Tensor]:
        """Full state_dict of member ``i``: its base's tensors with the member's own."""
        member = self.parameters([i])
        base = self.bases[self.records[i].base]
        return {**base.state_dict, **{k: v[0] for k, v in member.items()}}

    def model(self, i: int) -> nn.Module:
        """Member ``i`` as an ``nn.Module`` in eval mode."""
        model = self.build(self.records[i].base)
        model.load_state_dict(self.state_dict(i))
        return model.eval()

    # ------------------------------------------------------------------ trust

    def verify(self) -> None:
        """Check each member's tensors against its recorded hash and for non-finite values."""
        for member in self:
            if tensor_hash(member.params) != member.record.sha256:
                raise PoolError(
                    f"Member {member.record.id} of pool {self.root} does not match its hash: "
                    f"{member.record.shard} was modified or corrupted."
                )
            check_finite(member.params, f"member {member.record.id} of pool {self.root}")

    def pool_hash(self) -> str:
        """SHA-256 over the bases' and the members' content hashes (members in order).

        Equal pools have equal hashes whatever their file bytes, lineage or scores; any change to a
        tensor changes it (the hashes it covers are checked against the tensors when the pool loads).
        """
        content = {
            "bases": {name: base.sha256 for name, base in sorted(self.manifest.bases.items())},
            "members": [r.sha256 for r in self.records],
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _load_bases(root: Path, manifest: Manifest) -> dict[str, SeedModel]:
    """Read and check every base: content hash, architecture, shapes, dtypes, finite values."""
    bases = {}
    arch = manifest.architecture
    for name, record in manifest.bases.items():
        path = confined_file(root, record.file, f"base {name!r}")
        if not path.is_file():
            raise PoolError(f"Base {name!r} ({path}) is missing; the pool is incomplete.")
        # format 1 recorded the seed file's hash, which the base was copied from
        if manifest.upgraded_from and file_hash(path) != record.source.get("file_sha256"):
            raise PoolError(f"{path} does not match the seed hash its manifest records: it was modified.")
        seed = read_seed_file(path, f"base {name!r} of pool {root}")
        if any(seed.header()[k] != arch[k] for k in ARCHITECTURE_KEYS):
            raise PoolError(f"Base {path} is not the {arch['arch']} the manifest describes.")
        content = tensor_hash(seed.state_dict)
        if manifest.upgraded_from:
            manifest.bases[name] = replace(record, sha256=content)
        elif content != record.sha256:
            raise PoolError(f"Base {path} does not match its hash: it was modified or corrupted.")
        _check_architecture(seed, path)
        bases[name] = seed
    return bases


def _check_architecture(seed: SeedModel, path: Path) -> None:
    """The base's tensors have exactly the names, shapes and dtypes of its architecture."""
    expected = seed.build_empty().state_dict()
    got = seed.state_dict
    if set(got) != set(expected):
        raise PoolError(
            f"Base {path} holds tensors {sorted(set(got) ^ set(expected))} that do not fit its architecture."
        )
    for name, want in expected.items():
        if got[name].shape != want.shape or got[name].dtype != want.dtype:
            raise PoolError(
                f"Base {path}: {name!r} is {got[name].dtype} {tuple(got[name].shape)}, the architecture needs "
                f"{want.dtype} {tuple(want.shape)}."
            )


class PoolWriter:
    """Creates a pool folder or resumes an unfinished one; appends members; checkpoints run state.

    Holds the folder's lock from :meth:`open` until :meth:`finish` or :meth:`close` (use it as a
    context manager). :meth:`append` writes a shard and returns the new members' ids; they become
    part of the pool at the next :meth:`checkpoint` (or :meth:`finish`), which writes the manifest
    with the run state. A run killed between the two resumes from the last checkpoint: the
    uncommitted shard is ignored and rewritten.
    """

    def __init__(self, root: Path, manifest: Manifest, lock: FolderLock, resumed: bool) -> None:
        self.root = root
        self.manifest = manifest
        self.lock = lock
        self.resumed = resumed
        self._staged: list[MemberRecord] = []
        self._shards = len({m.shard for m in manifest.members})

    @classmethod
    def open(
        cls,
        root: str | Path,
        *,
        kind: str,
        bases: Mapping[str, SeedModel],
        targets: Sequence[str],
        config: Mapping[str, Any],
        sources: Mapping[str, Mapping[str, Any]] | None = None,
        lineage: Mapping[str, LineageRecord] | None = None,
    ) -> PoolWriter:
        """Start the pool at ``root``, or resume it if it is an unfinished pool made the same way.

        Args:
            root: the pool folder; it must not exist, be empty, or hold a pool of this kind, config
                and bases (which is verified before it is continued).
            kind: one of ``POOL_KINDS``.
            bases: the base models by name (``"seed"`` for a pool drawn from one seed); all share
                one architecture.
            targets: names of the tensors every member carries.
            config: what decides the members (JSON-serialisable); a pool is only resumed under the
                same config.
            sources: per base, where it came from (path, file hash, metadata), for the record.
            lineage: other pools whose members this pool's members name as parents (``"<name>:<id>"``);
                a pool is only resumed under the same.

        Raises:
            PoolError: ``root`` is a file, holds files but no manifest, or holds another pool.
            PoolLockedError: another process is writing it.
        """
        root = Path(root)
        if kind not in POOL_KINDS:
            raise ValueError(f"Unknown pool kind {kind!r}. Valid kinds are {list(POOL_KINDS)}.")
        if root.exists() and not root.is_dir():
            raise PoolError(f"pool_dir {root} is an existing file; give a folder (new, empty, or a pool to resume).")
        if not bases:
            raise ValueError("A pool needs at least one base model.")
        plain: dict[str, Any] = json.loads(json.dumps(dict(config), allow_nan=False))  # as it will read back
        root.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(root)
        lock.acquire()
        try:
            if (root / MANIFEST).is_file():
                manifest = cls._resumable(root, kind, bases, plain, dict(lineage or {}))
                remove_leftovers(root)
                return cls(root, manifest, lock, resumed=True)
            remove_leftovers(root)
            others = sorted(p.name for p in root.iterdir() if p.name != LOCK_FILE)
            if others:
                raise PoolError(
                    f"pool_dir {root} holds files but no {MANIFEST} ({', '.join(others[:5])}): it is not a pool, and "
                    "mge never overwrites what it did not write. Give an empty or new folder."
                )
            manifest = cls._create(root, kind, bases, targets, plain, sources or {}, dict(lineage or {}))
            return cls(root, manifest, lock, resumed=False)
        except BaseException:
            lock.release()
            raise

    @staticmethod
    def _create(
        root: Path,
        kind: str,
        bases: Mapping[str, SeedModel],
        targets: Sequence[str],
        config: dict[str, Any],
        sources: Mapping[str, Mapping[str, Any]],
        lineage: dict[str, LineageRecord],
    ) -> Manifest:
        first = next(iter(bases.values()))
        architecture = {k: first.header()[k] for k in ARCHITECTURE_KEYS}
        records = {}
        for name, seed in bases.items():
            if any(seed.header()[k] != architecture[k] for k in ARCHITECTURE_KEYS):
                raise ValueError(f"Base {name!r} is not a {architecture['arch']} like the first base.")
            check_finite(seed.state_dict, f"base {name!r}")
            file = base_file(name)
            atomic_save_safetensors(seed.state_dict, root / file, {"mge_seed": json.dumps(seed.header())})
            records[name] = BaseRecord(
                file=file, sha256=tensor_hash(seed.state_dict), source=dict(sources.get(name, {}))
            )
        unknown = [t for t in targets if t not in first.state_dict]
        if unknown or not targets:
            raise ValueError(f"Targets {unknown or '[]'} are not tensors of {architecture['arch']}.")
        manifest = Manifest(
            kind=kind, architecture=architecture, bases=records, targets=list(targets), config=config, lineage=lineage
        )
        atomic_write_json(manifest.to_json(), root / MANIFEST)
        return manifest

    @staticmethod
    def _resumable(
        root: Path,
        kind: str,
        bases: Mapping[str, SeedModel],
        config: dict[str, Any],
        lineage: dict[str, LineageRecord],
    ) -> Manifest:
        pool = Pool.load(root, verify=True)  # continue only what is intact
        manifest = pool.manifest
        if manifest.upgraded_from:
            raise PoolError(f"{root} is a {manifest.upgraded_from} pool; it can be read but not continued.")
        if manifest.kind != kind:
            raise PoolError(f"{root} holds a pool of kind {manifest.kind!r}, not {kind!r}: pick another folder.")
        ours = {name: tensor_hash(seed.state_dict) for name, seed in bases.items()}
        theirs = {name: base.sha256 for name, base in manifest.bases.items()}
        if ours != theirs:
            raise PoolError(
                f"Pool {root} exists and was made from other base models ({sorted(theirs)}), so it cannot be resumed "
                "from these. Pick another output folder, or delete it to start over."
            )
        if manifest.config != config:
            raise PoolError(
                f"Pool {root} exists and was made with a different config "
                f"({', '.join(_differing_keys(manifest.config, config))} differ), so it cannot be "
                "resumed. Pick another output folder, or delete it to start over."
            )
        if manifest.lineage != lineage:
            raise PoolError(
                f"Pool {root} exists and names other lineage pools ({sorted(manifest.lineage)}, recorded with their "
                "hashes), so it cannot be resumed. Pick another output folder, or delete it to start over."
            )
        return manifest

    # ------------------------------------------------------------------ writing

    @property
    def members(self) -> list[MemberRecord]:
        """Committed and staged members."""
        return [*self.manifest.members, *self._staged]

    @property
    def state(self) -> dict[str, Any] | None:
        return self.manifest.state

    @property
    def log(self) -> list[dict[str, Any]]:
        return self.manifest.log

    def append(self, params: Mapping[str, Tensor], members: Sequence[NewMember]) -> list[str]:
        """Write ``len(members)`` members (stacked ``params`` over the targets) as one shard; return their ids."""
        if not members:
            return []
        if set(params) != set(self.manifest.targets):
            differing = sorted(set(params) ^ set(self.manifest.targets))
            raise ValueError(f"append needs exactly the pool's targets; {differing} are extra or missing.")
        rows = {v.shape[0] for v in params.values()}
        if rows != {len(members)}:
            raise ValueError(f"append got {len(members)} members but tensors with {sorted(rows)} rows.")
        known = {m.id for m in self.members}
        shard = f"{SHARD_PREFIX}{self._shards:05d}.safetensors"
        atomic_save_safetensors(params, self.root / shard, {"format": POOL_FORMAT})
        self._shards += 1
        ids = []
        for i, member in enumerate(members):
            unknown = unknown_parents(member.parents, known, self.manifest)
            if unknown or member.base not in self.manifest.bases:
                raise ValueError(f"New member {i} names unknown parents {unknown} or base {member.base!r}.")
            tensors = {k: v[i] for k, v in params.items()}
            check_finite(tensors, f"new member {i}")
            record = MemberRecord(
                **{f: getattr(member, f) for f in NewMember.__dataclass_fields__},
                id=f"m{len(self.members):06d}",
                shard=shard,
                index=i,
                sha256=tensor_hash(tensors),
            )
            self._staged.append(record)
            ids.append(record.id)
        return ids

    def checkpoint(self, state: Mapping[str, Any] | None, log_entry: Mapping[str, Any] | None = None) -> None:
        """Commit the staged members with the run state (and one log entry): the point a resume restarts from."""
        self.manifest.members.extend(self._staged)
        self._staged = []
        self.manifest.state = None if state is None else dict(state)
        if log_entry is not None:
            self.manifest.log.append(dict(log_entry))
        atomic_write_json(self.manifest.to_json(), self.root / MANIFEST)

    def finish(self, summary: Mapping[str, Any]) -> Pool:
        """Commit, mark the pool complete with a summary, release the lock and open the pool for reading."""
        self.manifest.finished = True
        self.manifest.summary = dict(summary)
        self.checkpoint(self.manifest.state)
        self.close()
        return Pool.load(self.root, verify=False)  # what was just written, from hashes of the tensors in hand

    def close(self) -> None:
        """Release the lock (uncommitted members are dropped)."""
        self.lock.release()

    def __enter__(self) -> PoolWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _differing_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested configs."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [prefix or "config"] if old != new else []
    return [
        differing
        for key in sorted(set(old) | set(new))
        for differing in _differing_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
    ]
