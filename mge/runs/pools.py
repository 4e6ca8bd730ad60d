"""Pools compared together: loaded and verified, one architecture, one dataset split.

Every evaluation (``mge-eval``, few-shot transfer, adversarial transfer) takes labelled pools,
e.g. ``{"MGE": ..., "E-MGE": ..., "noise (gated)": ..., "independent": ...}``. They are only
comparable if their members share an architecture and were made from seeds trained on the same
dataset split (the discriminator split held out of the same training set, the same test set),
which this module checks before anything is evaluated. The data of the comparison is rebuilt from
what the first pool's seed recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mge.data import ClassificationDataModule
from mge.errors import ConfigError, PoolError
from mge.pool import Pool
from mge.pool.manifest import ARCHITECTURE_KEYS
from mge.runs.generate import seed_datamodule

# What makes two seeds' data the same split.
SPLIT_KEYS = ("name", "split_seed", "discriminator_size", "classes")


def pool_data(pool: Pool) -> dict[str, Any]:
    """The dataset arguments the pool's first base (its seed) was trained with."""
    meta = pool.seed.meta
    data = meta.get("data")
    if not isinstance(data, dict) or "name" not in data:
        raise PoolError(
            f"Pool {pool.root}: its seed does not record its dataset (meta['data']), so its test and "
            "discriminator splits are unknown. Make pools from seeds written by mge-train."
        )
    return dict(data)


def load_pools(paths: Mapping[str, str | Path]) -> dict[str, Pool]:
    """Load and verify labelled pools, refusing a set that cannot be compared.

    Raises:
        ConfigError: no pool, or pools of different architectures or dataset splits (the message
            names the two pools and what differs).
    """
    if not paths:
        raise ConfigError("No pool to evaluate: give at least one, e.g. pools.MGE=<run>/pool.")
    pools = {label: Pool.load(path) for label, path in paths.items()}
    (first_label, first), *others = pools.items()
    arch, split = first.manifest.architecture, pool_data(first)
    for label, pool in others:
        differing = [k for k in ARCHITECTURE_KEYS if pool.manifest.architecture[k] != arch[k]]
        data = pool_data(pool)
        differing += [f"data.{k}" for k in SPLIT_KEYS if data.get(k) != split.get(k)]
        if differing:
            raise ConfigError(
                f"Pools {first_label!r} ({first.root}) and {label!r} ({pool.root}) cannot be compared: "
                f"their {', '.join(differing)} differ. Compare pools of one architecture on one dataset split."
            )
    return pools


def comparison_datamodule(pools: Mapping[str, Pool], data_root: str | None = None) -> ClassificationDataModule:
    """The dataset the pools were made on, with its seed's splits, set up (``data_root``: where the files are now)."""
    first = next(iter(pools.values()))
    pool_data(first)  # a clear error if the seed does not record its data
    datamodule = seed_datamodule(first.seed, data_root)
    datamodule.setup("fit")
    return datamodule
