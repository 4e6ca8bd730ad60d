"""Models on disk: seeds and pools (safetensors + strict JSON; verified, confined, locked, atomic; no pickle)."""

from mge.pool.manifest import (
    POOL_FORMAT,
    POOL_KINDS,
    SEED_BASE,
    LineageRecord,
    MemberRecord,
    NewMember,
    lineage_parent,
)
from mge.pool.seed import SEED_FILENAME, SeedModel, load_seed, resolve_seed_path, save_seed
from mge.pool.store import Pool, PoolMember, PoolWriter

__all__ = [
    "POOL_FORMAT",
    "POOL_KINDS",
    "SEED_BASE",
    "SEED_FILENAME",
    "LineageRecord",
    "MemberRecord",
    "NewMember",
    "Pool",
    "PoolMember",
    "PoolWriter",
    "SeedModel",
    "lineage_parent",
    "load_seed",
    "resolve_seed_path",
    "save_seed",
]
