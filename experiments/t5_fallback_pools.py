"""Baseline pools for T5 where ``mge-baseline``'s are not there yet (docs/adversarial.md).

- ``noise``: Gaussian weight noise around the MGE pool's seed at the MGE pool's distances, member by
  member and tensor by tensor (``mge.baselines.noise.matched_noise``), ungated;
- ``independent``: K ``mge-train`` runs stacked with their full state (``stack_seeds``), with the
  MGE pool's seed as the pool's base, as ``mge-baseline baseline=independent`` makes them.

Usage::

    python experiments/t5_fallback_pools.py noise /work/artifacts/mnist/seed0-mge/pool OUT
    python experiments/t5_fallback_pools.py independent /work/artifacts/mnist/seed0-mge/pool OUT \
        /work/artifacts/mnist/independent/seed1 ... /work/artifacts/mnist/independent/seed5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mge.baselines import matched_noise, stack_seeds
from mge.evaluation import relative_l2
from mge.pool import SEED_BASE, NewMember, Pool, PoolWriter


def noise_pool(reference: Pool, out: Path, seed: int) -> Pool:
    """Ungated noise at ``reference``'s per-member, per-tensor distances to its seed."""
    base = reference.seed
    seed_params = {k: base.state_dict[k] for k in reference.targets}
    params = matched_noise(seed_params, reference.parameters(), seed=seed)
    distances = relative_l2(params, seed_params).tolist()
    config = {"baseline": "noise", "matched_to": reference.pool_hash(), "gated": False, "seed": seed}
    members = [NewMember(operator="noise", parents=(SEED_BASE,), scores={"relative_l2": d}) for d in distances]
    with PoolWriter.open(out, kind="noise", bases={SEED_BASE: base}, targets=reference.targets, config=config) as w:
        w.append(params, members)
        return w.finish({"members": len(members)})


def independent_pool(reference: Pool, out: Path, runs: list[str]) -> Pool:
    """The ``runs``' seeds as members carrying every floating tensor; ``reference``'s seed is the base."""
    stack = stack_seeds(runs)
    targets = [k for k, v in stack.tensors.items() if v.is_floating_point()]
    config = {"baseline": "independent", "runs": runs}
    with PoolWriter.open(
        out, kind="independent", bases={SEED_BASE: reference.seed}, targets=targets, config=config
    ) as writer:
        members = [
            NewMember(operator="independent", parents=(), scores={"test_accuracy": meta.get("test_accuracy")})
            for meta in stack.metas
        ]
        writer.append({k: stack.tensors[k] for k in targets}, members)
        return writer.finish({"members": len(members)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("baseline", choices=["noise", "independent"])
    parser.add_argument("reference", help="the MGE pool folder whose seed (and distances) the baseline uses")
    parser.add_argument("out", type=Path, help="the new pool folder")
    parser.add_argument("runs", nargs="*", help="independent: mge-train run folders")
    parser.add_argument("--seed", type=int, default=0, help="noise: seed of the draws")
    args = parser.parse_args()
    reference = Pool.load(args.reference)
    start = time.perf_counter()
    if args.baseline == "noise":
        pool = noise_pool(reference, args.out, args.seed)
    else:
        if not args.runs:
            parser.error("independent needs the mge-train run folders of its members")
        pool = independent_pool(reference, args.out, args.runs)
    print(f"{pool.kind} pool of {len(pool)} at {args.out} ({time.perf_counter() - start:.1f} s): {pool.pool_hash()}")


if __name__ == "__main__":
    main()
