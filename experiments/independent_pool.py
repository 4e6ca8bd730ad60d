"""Collect independently trained seeds into a pool of kind "independent" (members carry their full state).

The independent baseline of T4 (docs/fewshot.md): K ``mge-train`` runs with different ``seed=`` and the
same data settings, read by every evaluation like any other pool (``mge.runs.independent_pool``).

Usage: python experiments/independent_pool.py <pool folder> <seed run folder> [<seed run folder> ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mge.runs import independent_pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool_dir", type=Path, help="a new or empty folder")
    parser.add_argument("seeds", type=Path, nargs="+", help="mge-train run folders or seed files, in member order")
    args = parser.parse_args()
    pool = independent_pool(args.seeds, args.pool_dir)
    print(f"independent pool of {len(pool)} members: {pool.root} (pool hash {pool.pool_hash()[:16]})")


if __name__ == "__main__":
    main()
