"""T4 over reference seeds: mean and spread of each row across T4 sweeps made with different seeds.

Each sweep folder is one ``mge-fewshot -m experiment=t4_fewshot`` run of experiments/t4_fewshot.sh
with another reference seed (REF): its "seed" row, MGE pool and independent pool change with it,
the episodes do not. A row (model, dataset, shots, head) gets the mean accuracy over the sweeps
that have it, the standard deviation across them (ddof 1: the spread due to the choice of seed,
which the per-sweep 95% CI over episodes does not cover) and the number of seeds.

    python experiments/t4_fewshot_seeds.py OUT SWEEP [SWEEP ...]

writes OUT/t4_fewshot_seeds.{csv,md,png}.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mge.cli.fewshot_sweep import fewshot_rows, plot_fewshot_sweep
from mge.reporting import markdown_table, write_csv
from mge.reporting.sweep import collect_jobs

KEYS = ("model", "dataset", "n_way", "k_shot", "head", "features")


def across_seeds(sweeps: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (model, dataset, setting, head): mean, std and count of accuracy over the sweeps."""
    groups: dict[tuple, list[float]] = {}
    for rows in sweeps:
        for row in rows:
            groups.setdefault(tuple(row.get(k, "raw") for k in KEYS), []).append(float(row["accuracy"]))
    out = []
    for key, values in groups.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        # ci95 carries the std so that the sweep's bar plot draws the spread over seeds as whiskers
        out.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "accuracy": statistics.fmean(values),
                "ci95": std,
                "std": std,
                "seeds": len(values),
            }
        )
    return out


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Models down, one column per dataset, shots and head: "mean +- std (n)" in percent."""
    settings = list(dict.fromkeys((r["dataset"], r["k_shot"], r["head"]) for r in rows))
    settings.sort(key=lambda s: (s[0], s[1]))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cells = {(r["model"], (r["dataset"], r["k_shot"], r["head"])): r for r in rows}
    headers = ["model", *(f"{d} {rows[0]['n_way']}-way {k}-shot {h}" for d, k, h in settings)]
    lines = []
    for model in models:
        line: list[object] = [model]
        for setting in settings:
            cell = cells.get((model, setting))
            line.append(
                "" if cell is None else f"{100 * cell['accuracy']:.2f} +- {100 * cell['std']:.2f} ({cell['seeds']})"
            )
        lines.append(line)
    return markdown_table(headers, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for t4_fewshot_seeds.{csv,md,png}")
    parser.add_argument("sweeps", type=Path, nargs="+", help="T4 sweep folders, one per reference seed")
    args = parser.parse_args()
    rows = across_seeds([fewshot_rows(collect_jobs(sweep)) for sweep in args.sweeps])
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "t4_fewshot_seeds.csv")
    (args.out / "t4_fewshot_seeds.md").write_text(table(rows) + "\n")
    # no title: the sweep plot's own would call the whiskers a CI over episodes; here they are the std over seeds
    plot_fewshot_sweep(rows, args.out / "t4_fewshot_seeds.png")
    print(table(rows))


if __name__ == "__main__":
    main()
