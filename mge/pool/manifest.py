"""What a pool's ``manifest.json`` holds, read strictly: every field is checked for its type.

A manifest comes from disk and may have been edited, truncated or made by someone else, so
nothing in it is trusted: a missing key, a wrong type or an index out of range raises a
:class:`~mge.errors.PoolError` that names the field, never a ``KeyError`` from deep inside. Format
1 manifests (one seed, records as plain dicts) are upgraded to format 2 when read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mge.errors import PoolError

POOL_FORMAT = "mge-pool/2"
POOL_FORMAT_V1 = "mge-pool/1"
# What made the members; evaluation treats every kind alike.
POOL_KINDS = ("mge", "evolved", "noise", "independent", "snapshot")
SEED_BASE = "seed"  # the base of a pool generated from one seed
_BASE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
ARCHITECTURE_KEYS = ("arch", "arch_kwargs", "num_classes", "in_channels", "image_size")
LINEAGE_SEPARATOR = ":"  # a parent "<name>:<id>" is member <id> of the pool the manifest's lineage calls <name>


def base_file(name: str) -> str:
    """File name of base ``name``: ``base.safetensors`` for the seed, ``base-<name>.safetensors`` otherwise."""
    if not _BASE_NAME.fullmatch(name):
        raise ValueError(f"Base name {name!r} must be lower-case letters, digits, '_' or '-'.")
    return "base.safetensors" if name == SEED_BASE else f"base-{name}.safetensors"


@dataclass(frozen=True, kw_only=True)
class NewMember:
    """What the producer of a member knows about it: its lineage and its scores."""

    operator: str  # what made it: "mge", "mutation", "fusion", "noise", "independent", "snapshot", ...
    parents: tuple[str, ...]  # member ids of this pool, base names (e.g. "seed"), or "<lineage name>:<id>"
    generation: int = 0  # MGE round, or evolution generation
    base: str = SEED_BASE  # the base whose tensors fill what the member does not carry
    threshold: float | None = None  # energy threshold t it was drawn with
    alpha: float | None = None
    scores: Mapping[str, float | int | None] = field(default_factory=dict)  # discriminator scores, fitness, ...

    def __post_init__(self) -> None:
        for key in ("threshold", "alpha"):
            value = getattr(self, key)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"A member's {key} must be finite or None, got {value}.")
        bad = {k: v for k, v in self.scores.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise ValueError(f"A member's scores must be finite or None (strict JSON), got {bad}.")


@dataclass(frozen=True, kw_only=True)
class MemberRecord(NewMember):
    """A stored member: its lineage plus where its tensors are and their content hash."""

    id: str
    shard: str
    index: int  # row of the member in its shard's stacked tensors
    sha256: str  # tensor_hash of the member's tensors

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["parents"] = list(self.parents)
        data["scores"] = dict(self.scores)
        return data


@dataclass(frozen=True)
class BaseRecord:
    """A base model: a full state_dict that members build on."""

    file: str
    sha256: str  # tensor_hash of its tensors (content, not file bytes)
    source: Mapping[str, Any]  # where it came from: path, file sha256, the seed's metadata


@dataclass(frozen=True)
class LineageRecord:
    """Another pool that members of this one name as parents (``"<name>:<member id>"``).

    An evolved population names members of its history pool and of the MGE pool it started from.
    Nothing is read from it when this pool loads: :meth:`mge.pool.Pool.lineage_pool` opens and
    checks it on demand.
    """

    path: str  # its folder: absolute, or relative to this pool's folder
    pool_hash: str  # its Pool.pool_hash() when this pool was written


def lineage_parent(name: str, member_id: str) -> str:
    """The parent reference to member ``member_id`` of lineage pool ``name``."""
    return f"{name}{LINEAGE_SEPARATOR}{member_id}"


@dataclass
class Manifest:
    """The parsed ``manifest.json`` of a pool."""

    kind: str
    architecture: dict[str, Any]  # arch, arch_kwargs, num_classes, in_channels, image_size
    bases: dict[str, BaseRecord]
    targets: list[str]  # the tensors every member carries; the rest come from its base
    config: dict[str, Any]
    members: list[MemberRecord] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)  # one entry per round or generation
    state: dict[str, Any] | None = None  # the run state to resume from
    finished: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    upgraded_from: str | None = None  # "mge-pool/1" when read from a format-1 manifest
    lineage: dict[str, LineageRecord] = field(default_factory=dict)  # other pools that parents refer to

    def to_json(self) -> dict[str, Any]:
        return {
            "format": POOL_FORMAT,
            "kind": self.kind,
            "architecture": self.architecture,
            "bases": {name: asdict(base) | {"source": dict(base.source)} for name, base in self.bases.items()},
            "targets": self.targets,
            "config": self.config,
            "members": [m.to_json() for m in self.members],
            "log": self.log,
            "state": self.state,
            "finished": self.finished,
            "summary": self.summary,
            "lineage": {name: asdict(record) for name, record in self.lineage.items()},
        }


def unknown_parents(parents: tuple[str, ...], ids: set[str], manifest: Manifest) -> list[str]:
    """The parents that are neither in ``ids``, nor a base, nor a reference into a declared lineage pool."""
    return [
        p
        for p in parents
        if p not in ids
        and p not in manifest.bases
        and not (LINEAGE_SEPARATOR in p and p.split(LINEAGE_SEPARATOR, 1)[0] in manifest.lineage)
    ]


# --------------------------------------------------------------------------- strict reading


def _get(data: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise PoolError(f"{where} has no {key!r}.")
    value = data[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        names = " or ".join(t.__name__ for t in _as_tuple(types))
        raise PoolError(f"{where}: {key!r} must be {names}, got {type(value).__name__} {_short(value)}.")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _optional_float(data: Mapping[str, Any], key: str, where: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PoolError(f"{where}: {key!r} must be a finite number or null, got {_short(value)}.")
    return float(value)


def _string_list(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PoolError(f"{where}: {key!r} must be a list of strings, got {_short(value)}.")
    return list(value)


def _scores(value: Any, where: str) -> dict[str, float | int | None]:
    if not isinstance(value, dict):
        raise PoolError(f"{where}: 'scores' must be an object, got {_short(value)}.")
    for k, v in value.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise PoolError(f"{where}: score {k!r} must be a finite number or null, got {_short(v)}.")
    return dict(value)


def parse_member(data: Any, position: int) -> MemberRecord:
    where = f"manifest member {position}"
    if not isinstance(data, dict):
        raise PoolError(f"{where} must be an object, got {type(data).__name__}.")
    index = _get(data, "index", int, where)
    if index < 0:
        raise PoolError(f"{where}: 'index' must be >= 0, got {index}.")
    return MemberRecord(
        id=_get(data, "id", str, where),
        shard=_get(data, "shard", str, where),
        index=index,
        sha256=_get(data, "sha256", str, where),
        operator=_get(data, "operator", str, where),
        parents=tuple(_string_list(data.get("parents"), "parents", where)),
        generation=_get(data, "generation", int, where),
        base=_get(data, "base", str, where),
        threshold=_optional_float(data, "threshold", where),
        alpha=_optional_float(data, "alpha", where),
        scores=_scores(data.get("scores", {}), where),
    )


def _architecture(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PoolError(f"{where}: 'architecture' must be an object, got {_short(data)}.")
    arch = {
        "arch": _get(data, "arch", str, f"{where} architecture"),
        "arch_kwargs": _get(data, "arch_kwargs", dict, f"{where} architecture"),
    }
    for key in ("num_classes", "in_channels", "image_size"):
        arch[key] = _get(data, key, int, f"{where} architecture")
    return arch


def parse_manifest(data: Any, where: str) -> Manifest:
    """A :class:`Manifest` from decoded JSON, format 1 or 2; raises :class:`PoolError` naming the problem."""
    if not isinstance(data, dict):
        raise PoolError(f"{where} must hold a JSON object, got {type(data).__name__}.")
    fmt = data.get("format")
    if fmt == POOL_FORMAT_V1:
        return _upgrade_v1(data, where)
    if fmt != POOL_FORMAT:
        raise PoolError(
            f"{where} has format {_short(fmt)}; this version of mge reads {POOL_FORMAT!r} and {POOL_FORMAT_V1!r}."
        )
    kind = _get(data, "kind", str, where)
    if kind not in POOL_KINDS:
        raise PoolError(f"{where}: unknown pool kind {kind!r}. Valid kinds are {list(POOL_KINDS)}.")
    bases_data = _get(data, "bases", dict, where)
    if not bases_data:
        raise PoolError(f"{where}: 'bases' is empty; a pool needs at least one base model.")
    bases = {}
    for name, base in bases_data.items():
        base_where = f"{where} base {name!r}"
        if not isinstance(base, dict):
            raise PoolError(f"{base_where} must be an object, got {_short(base)}.")
        bases[name] = BaseRecord(
            file=_get(base, "file", str, base_where),
            sha256=_get(base, "sha256", str, base_where),
            source=_get(base, "source", dict, base_where),
        )
    members = [parse_member(m, i) for i, m in enumerate(_get(data, "members", list, where))]
    state = data.get("state")
    if state is not None and not isinstance(state, dict):
        raise PoolError(f"{where}: 'state' must be an object or null, got {_short(state)}.")
    manifest = Manifest(
        kind=kind,
        architecture=_architecture(data.get("architecture"), where),
        bases=bases,
        lineage=_lineage(data.get("lineage", {}), where),
        targets=_string_list(data.get("targets"), "targets", where),
        config=_get(data, "config", dict, where),
        members=members,
        log=_get(data, "log", list, where),
        state=state,
        finished=_get(data, "finished", bool, where),
        summary=_get(data, "summary", dict, where),
    )
    check_references(manifest, where)
    return manifest


def _lineage(data: Any, where: str) -> dict[str, LineageRecord]:
    if not isinstance(data, dict):
        raise PoolError(f"{where}: 'lineage' must be an object, got {_short(data)}.")
    lineage = {}
    for name, record in data.items():
        record_where = f"{where} lineage {name!r}"
        if not _BASE_NAME.fullmatch(name):
            raise PoolError(f"{record_where}: a lineage name must be lower-case letters, digits, '_' or '-'.")
        if not isinstance(record, dict):
            raise PoolError(f"{record_where} must be an object, got {_short(record)}.")
        lineage[name] = LineageRecord(
            path=_get(record, "path", str, record_where), pool_hash=_get(record, "pool_hash", str, record_where)
        )
    return lineage


def check_references(manifest: Manifest, where: str) -> None:
    """Members name existing bases, unique ids and, as parents, earlier members, bases or lineage pools' members."""
    if not manifest.targets or len(set(manifest.targets)) != len(manifest.targets):
        raise PoolError(f"{where}: 'targets' must be a non-empty list of distinct tensor names.")
    seen: set[str] = set()
    for member in manifest.members:
        if member.base not in manifest.bases:
            raise PoolError(
                f"{where}: member {member.id} builds on base {member.base!r}, which the manifest does not list "
                f"(bases: {sorted(manifest.bases)})."
            )
        if member.id in seen:
            raise PoolError(f"{where}: member id {member.id!r} appears twice.")
        unknown = unknown_parents(member.parents, seen, manifest)
        if unknown:
            raise PoolError(f"{where}: member {member.id} names unknown parents {unknown}.")
        seen.add(member.id)


def _upgrade_v1(data: dict[str, Any], where: str) -> Manifest:
    """Format 1: one seed in ``base.safetensors``, records with ``round`` and flat discriminator scores.

    Format 1 recorded the seed file's SHA-256 (``seed.sha256``), not the base's content hash; the
    reader checks ``base.safetensors`` against it (mge wrote the base byte for byte as the seed).
    """
    seed = _get(data, "seed", dict, where)
    members = []
    for i, record in enumerate(_get(data, "members", list, where)):
        member_where = f"{where} member {i}"
        if not isinstance(record, dict):
            raise PoolError(f"{member_where} must be an object, got {type(record).__name__}.")
        scores = {k: record.get(k) for k in ("distribution_distance", "discriminator_accuracy") if k in record}
        members.append(
            parse_member(
                {
                    "id": record.get("id"),
                    "shard": record.get("shard"),
                    "index": record.get("index"),
                    "sha256": record.get("sha256"),
                    "operator": record.get("operator", "mge"),
                    "parents": [SEED_BASE if p == "seed" else p for p in record.get("parents", [SEED_BASE])],
                    "generation": record.get("round", 0),
                    "base": SEED_BASE,
                    "threshold": record.get("threshold"),
                    "alpha": record.get("alpha"),
                    "scores": scores,
                },
                i,
            )
        )
    manifest = Manifest(
        kind="mge",
        architecture=_architecture(data.get("architecture"), where),
        bases={
            SEED_BASE: BaseRecord(
                file="base.safetensors",
                sha256="",  # unknown in format 1: filled in from the verified file by the reader
                source={"path": seed.get("path"), "file_sha256": _get(seed, "sha256", str, f"{where} seed")}
                | {"meta": seed.get("meta", {})},
            )
        },
        targets=_string_list(data.get("targets"), "targets", where),
        config=_get(data, "config", dict, where),
        members=members,
        log=_get(data, "rounds", list, where),
        state=data.get("state") if isinstance(data.get("state"), dict) else None,
        finished=_get(data, "finished", bool, where),
        summary=data["summary"] if isinstance(data.get("summary"), dict) else {},
        upgraded_from=POOL_FORMAT_V1,
    )
    check_references(manifest, where)
    return manifest
