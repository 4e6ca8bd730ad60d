"""Independent training: K models of one architecture trained normally with different seeds (spec section 5).

The strongest cheap pool (Lakshminarayanan et al. 2017 train deep ensembles this way), and the
costliest: K trainings. The pool is K ordinary ``mge-train`` runs (``seed=0,1,...``); this module
collects their ``seed.safetensors`` into stacked tensors, after checking that the runs are
comparable, i.e. one architecture and one dataset split, and distinct. Snapshot files
(:mod:`mge.baselines.snapshots`) are seed files too and stack the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mge.pool.files import tensor_hash
from mge.pool.seed import SeedModel, load_seed

# What makes two seeds the same architecture, and what makes their data the same split.
ARCH_KEYS = ("arch", "arch_kwargs", "num_classes", "in_channels", "image_size")
SPLIT_KEYS = ("name", "split_seed", "discriminator_size")


@dataclass(frozen=True)
class SeedStack:
    """K seeds of one architecture as one pool.

    Attributes:
        seed: the first seed; its architecture (``seed.build()``) is every member's.
        tensors: full state of every member, parameters and buffers: ``{name: (K, *shape)}``.
        sources: the K seed files, in member order.
        metas: each seed's metadata (test accuracy, training seconds, seed, ...), in member order.
    """

    seed: SeedModel
    tensors: dict[str, Tensor]
    sources: list[str]
    metas: list[dict[str, Any]]


def _split(seed: SeedModel, source: Path) -> dict[str, Any]:
    data = seed.meta.get("data")
    if not isinstance(data, dict) or any(k not in data for k in SPLIT_KEYS):
        raise ValueError(
            f"Seed {source} does not record its dataset split ({list(SPLIT_KEYS)} under meta['data']), so it "
            "cannot be checked against the others. Use seeds written by mge-train or SnapshotCallback."
        )
    return {k: data[k] for k in SPLIT_KEYS}


def stack_seeds(paths: Sequence[str | Path]) -> SeedStack:
    """Load K seeds (``mge-train`` run folders or seed files) and stack their full states.

    Args:
        paths: the seeds, in member order.

    Raises:
        ValueError: fewer than one seed; seeds that differ in architecture (``arch``, ``arch_kwargs``,
            ``num_classes``, ``in_channels``, ``image_size``), in state names or shapes, or in dataset
            split (``name``, ``split_seed``, ``discriminator_size``); or two seeds with identical weights
            (the same run listed twice, or a copy).
    """
    if not paths:
        raise ValueError("stack_seeds needs at least one seed path (mge-train run folders or seed files).")
    seeds = [load_seed(p) for p in paths]
    sources = [Path(p) for p in paths]
    first, first_split = seeds[0], _split(seeds[0], sources[0])
    hashes: dict[str, Path] = {}
    for seed, source in zip(seeds, sources, strict=True):
        for key in ARCH_KEYS:
            if getattr(seed, key) != getattr(first, key):
                raise ValueError(
                    f"Seeds differ in {key}: {sources[0]} has {getattr(first, key)!r}, {source} has "
                    f"{getattr(seed, key)!r}. A pool needs one architecture: collect seeds trained with the same model."
                )
        split = _split(seed, source)
        for key in SPLIT_KEYS:
            if split[key] != first_split[key]:
                raise ValueError(
                    f"Seeds differ in data.{key}: {sources[0]} has {first_split[key]!r}, {source} has "
                    f"{split[key]!r}. A pool needs one dataset split: train every seed with the same data settings."
                )
        shapes = {k: tuple(v.shape) for k, v in seed.state_dict.items()}
        first_shapes = {k: tuple(v.shape) for k, v in first.state_dict.items()}
        if shapes != first_shapes:
            diff = sorted(set(shapes.items()) ^ set(first_shapes.items()))
            raise ValueError(f"Seeds {sources[0]} and {source} differ in state tensors: {diff}.")
        digest = tensor_hash(seed.state_dict)
        if digest in hashes:
            raise ValueError(
                f"Seeds {hashes[digest]} and {source} have identical weights: the same run twice, or a copy. "
                "Independent members must come from different trainings (e.g. seed=0,1,2)."
            )
        hashes[digest] = source
    tensors = {k: torch.stack([s.state_dict[k] for s in seeds]) for k in first.state_dict}  # (K, *shape)
    return SeedStack(seed=first, tensors=tensors, sources=[str(s) for s in sources], metas=[s.meta for s in seeds])
