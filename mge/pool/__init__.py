"""Models on disk: seeds and pools (safetensors + JSON, atomic writes, no pickle)."""

from mge.pool.seed import SEED_FILENAME, SeedModel, load_seed, resolve_seed_path, save_seed
from mge.pool.store import Pool, PoolMember, PoolWriter

__all__ = [
    "SEED_FILENAME",
    "Pool",
    "PoolMember",
    "PoolWriter",
    "SeedModel",
    "load_seed",
    "resolve_seed_path",
    "save_seed",
]
