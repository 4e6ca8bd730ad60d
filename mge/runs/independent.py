"""Independently trained seeds collected into a pool, so that evaluations read them like any other pool.

The independent baseline (MGE.md section 5) is K ordinary ``mge-train`` runs with different
``seed=``. :func:`mge.baselines.stack_seeds` checks that they share an architecture and a dataset
split and are distinct; here their full states (every floating tensor, BatchNorm statistics
included) become the members of a pool of kind ``"independent"``, whose base is the first seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mge.baselines import stack_seeds
from mge.pool import SEED_BASE, NewMember, Pool, PoolWriter, resolve_seed_path
from mge.pool.files import file_hash


def independent_pool(seed_paths: Sequence[str | Path], pool_dir: str | Path) -> Pool:
    """Write the seeds as the members of an ``"independent"`` pool at ``pool_dir`` and return it, loaded.

    Args:
        seed_paths: ``mge-train`` run folders or seed files, in member order; at least one.
        pool_dir: a new or empty folder (a finished pool of the same seeds there is returned as it is).

    Raises:
        ValueError: the seeds cannot form one pool (see :func:`mge.baselines.stack_seeds`).
        PoolError: ``pool_dir`` holds something else.
    """
    stack = stack_seeds(seed_paths)
    targets = [k for k, v in stack.tensors.items() if v.is_floating_point()]  # integer counters stay in the base
    files = [resolve_seed_path(p) for p in seed_paths]
    config = {"seeds": [file_hash(f) for f in files]}  # what decides the members: the seed files' contents
    source = {"path": str(files[0].resolve()), "file_sha256": config["seeds"][0], "meta": stack.seed.meta}
    with PoolWriter.open(
        pool_dir, kind="independent", bases={SEED_BASE: stack.seed}, targets=targets, config=config,
        sources={SEED_BASE: source},
    ) as writer:  # fmt: skip
        if writer.manifest.finished:
            return Pool.load(pool_dir)
        members = [
            NewMember(
                operator="independent",
                parents=(),
                scores={"test_accuracy": meta.get("test_accuracy"), "train_seed": meta.get("seed")},
            )
            for meta in stack.metas
        ]
        writer.append({k: stack.tensors[k] for k in targets}, members)
        return writer.finish({"sources": [str(f.resolve()) for f in files]})
