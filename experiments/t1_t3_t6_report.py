"""Tables T1, T3 and T6 over seed indices: mean ± std of the runs of experiments/t1_t6.sh.

Usage: python experiments/t1_t3_t6_report.py OUT   (OUT as given to t1_t6.sh; reads OUT/seed<s>/)

Every OUT/seed<s> holding a finished t1_accuracy/metrics.json is one seed index. Reads its
mge/metrics.json (the MGE run: T3), t1_accuracy/metrics.json (every pool's row: T1 and T6) and
stages.tsv (wall-clock and load of each stage), and writes into OUT/tables/:

- t1.md/.csv (mean ± std over seeds, std with ddof 1) and t1_per_seed.*: per pool, member accuracy,
  the pool as a soft/majority-vote ensemble and its gain over the seed, what the pool cost;
- t3.md/.csv and t3_per_seed.*: the MGE run's candidates, acceptance, rejections per discriminator
  test, last threshold, pool accuracy and mistake IoU, seconds per kept model and its ratio to one
  seed training (the run's own probe, and the seed's recorded training time);
- t6.md/.csv and t6_per_seed.*: per pool and per noise-curve distance, mean accuracy and mean
  mistake IoU; for every pool, the noise curve's IoU at the pool's accuracy (interpolated) and the
  pool's IoU minus it (negative: more novel than noise at the same accuracy), with ``curve_seeds``
  (how many seed indices have that value: none where the pool is more accurate than the curve) and
  ``members_below_curve`` (the fraction of its members below the curve at their own accuracy);
- stages.md/.csv: the last timing of every stage of every seed index that ran it (not a skip).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mge.reporting.sweep import aggregate, lookup, write_table

SEED = "seed"
# T3: column -> path into {"metrics": <the MGE run's metrics.json>}
T3_COLUMNS = {
    "seed_accuracy": "metrics.generate.test.seed_accuracy",
    "candidates": "metrics.generate.n_candidates",
    "passed": "metrics.generate.n_passed",
    "kept": "metrics.generate.n_kept",
    "acceptance": "metrics.generate.acceptance_rate",
    "rejected_non_finite": "metrics.generate.rejected.non_finite",
    "rejected_distribution": "metrics.generate.rejected.distribution",
    "rejected_spectral": "metrics.generate.rejected.spectral",
    "rejected_accuracy": "metrics.generate.rejected.accuracy",
    "last_threshold": "metrics.generate.last_threshold",
    "accuracy_mean": "metrics.generate.test.accuracy.mean",
    "accuracy_min": "metrics.generate.test.accuracy.min",
    "accuracy_max": "metrics.generate.test.accuracy.max",
    "mistake_iou_mean": "metrics.generate.test.mistake_iou.mean",
    "disagreement": "metrics.generate.test.pairwise_disagreement",
    "seconds_per_kept_model": "metrics.generate.seconds_per_kept_model",
    "ratio_to_probe_training": "metrics.generate.time_ratio_per_model",
    "probe_training_seconds": "metrics.generate.time_reference.seconds",
    "seed_recorded_train_seconds": "metrics.generate.seed_recorded_train_seconds",
}
T1_COLUMNS = (
    "members", "accuracy_mean", "accuracy_std", "accuracy_min", "accuracy_max", "soft_vote_accuracy",
    "majority_vote_accuracy", "soft_vote_nll", "soft_vote_ece", "cost_seconds", "seconds_per_member",
)  # fmt: skip
T6_COLUMNS = ("members", "accuracy_mean", "mistake_iou_mean", "disagreement", "relative_l2_mean")


def curve_iou_at(accuracy: float, points: Sequence[tuple[float, float]]) -> float | None:
    """The noise curve's mistake IoU at ``accuracy``, linearly interpolated in accuracy.

    ``points`` are ``(accuracy, iou)`` in order of growing noise distance, the seed itself first
    (distance 0: its own accuracy, IoU 1). The first segment whose accuracies bracket ``accuracy``
    gives the value (accuracy falls with distance; where noise first lifts it, the earliest crossing
    is the one at the smallest distance); None when no segment does (outside the curve).
    """
    for (a0, i0), (a1, i1) in itertools.pairwise(points):
        if min(a0, a1) <= accuracy <= max(a0, a1):
            return i0 if a0 == a1 else i0 + (i1 - i0) * (accuracy - a0) / (a1 - a0)
    return None


def _rows_of(eval_metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    table = lookup({"metrics": eval_metrics}, "metrics.eval.table")
    if not isinstance(table, list) or not table:
        raise ValueError("metrics.json holds no eval.table: not a finished mge-eval run (rerun t1_t6.sh).")
    return table


def t1_rows(seed: int, eval_metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """T1 of one seed index: every pool (the noise curve's distances are T6's) and its ensemble's gain over the seed."""
    rows = _rows_of(eval_metrics)
    seed_accuracy = rows[0]["accuracy_mean"]
    out = []
    for row in rows:
        if row["distance"] is not None:
            continue
        vote = row["soft_vote_accuracy"]
        gain = None if vote is None or row is rows[0] else vote - seed_accuracy  # the seed is the reference
        out.append({"label": row["label"], SEED: seed, **{c: row[c] for c in T1_COLUMNS}, "soft_vote_gain": gain})
    return out


def t6_rows(
    seed: int, eval_metrics: Mapping[str, Any], members: Mapping[str, Sequence[tuple[float, float]]] | None = None
) -> list[dict[str, Any]]:
    """T6 of one seed index: every pool and curve distance; each pool against the noise curve at its accuracy.

    ``members`` (pool label -> each member's (accuracy, IoU), from mge-eval's members.csv) adds
    ``members_below_curve``: the fraction of a pool's members below the curve at their own accuracy,
    among those the curve reaches.
    """
    rows = _rows_of(eval_metrics)
    seed_row = rows[0]
    curve = [(seed_row["accuracy_mean"], 1.0)] + [
        (r["accuracy_mean"], r["mistake_iou_mean"])
        for r in sorted((r for r in rows if r["distance"] is not None), key=lambda r: r["distance"])
    ]
    out = []
    for row in rows:
        at = None
        if row["distance"] is None and row is not seed_row and len(curve) > 1 and row["accuracy_mean"] is not None:
            at = curve_iou_at(row["accuracy_mean"], curve)
        below = None if at is None else row["mistake_iou_mean"] - at
        figures = {c: row[c] for c in T6_COLUMNS}
        out.append({"label": row["label"], SEED: seed, "distance": row["distance"], **figures,
                    "curve_iou_at_accuracy": at, "iou_minus_curve": below,
                    "members_below_curve": _below(curve, (members or {}).get(row["label"], []))})  # fmt: skip
    return out


def _below(curve: Sequence[tuple[float, float]], members: Sequence[tuple[float, float]]) -> float | None:
    """The fraction of ``members`` (accuracy, IoU) under the curve at their accuracy; None if the curve reaches none."""
    at = [(iou, curve_iou_at(accuracy, curve)) for accuracy, iou in members]
    reached = [iou < value for iou, value in at if value is not None]
    return sum(reached) / len(reached) if reached and len(curve) > 1 else None


def members_of(csv_file: Path) -> dict[str, list[tuple[float, float]]]:
    """Each pool's members as (test accuracy, mistake IoU), from mge-eval's members.csv (curve members left out)."""
    found: dict[str, list[tuple[float, float]]] = {}
    if csv_file.is_file():
        with csv_file.open() as f:
            for r in csv.DictReader(f):
                if not r["distance"]:
                    member = (float(r["test_accuracy"]), float(r["mistake_iou_with_seed"]))
                    found.setdefault(r["label"], []).append(member)
    return found


def t3_row(seed: int, generate_metrics: Mapping[str, Any]) -> dict[str, Any]:
    """T3 of one seed index: the MGE run's generation statistics, and its cost per kept model against a training."""
    job = {"metrics": generate_metrics}
    row: dict[str, Any] = {"label": "MGE", SEED: seed, **{c: lookup(job, p) for c, p in T3_COLUMNS.items()}}
    per_model, recorded = row["seconds_per_kept_model"], row["seed_recorded_train_seconds"]
    row["ratio_to_recorded_training"] = None if per_model is None or not recorded else per_model / recorded
    return row


def stage_rows(seed: int, tsv: Path) -> list[dict[str, Any]]:
    """Per stage in ``stages.tsv``, its last timing that ran the job (a rerun appends rows; ``skipped=yes``
    marks a finished job it only read back); a stage only ever skipped keeps its last row."""
    if not tsv.is_file():
        return []
    with tsv.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    last: dict[str, dict[str, str]] = {}
    for r in rows:
        if r.get("skipped") != "yes" or r["stage"] not in last or last[r["stage"]].get("skipped") == "yes":
            last[r["stage"]] = r
    return [
        {SEED: seed, **r, "seconds": float(r["seconds"]), "exit": int(r["exit"]), "skipped": r.get("skipped")}
        for r in last.values()
    ]


def seed_folders(out: Path) -> dict[int, Path]:
    """``seed<s>`` folders of ``out`` whose evaluation finished, by seed index."""
    found = {}
    for folder in sorted(out.glob("seed*")):
        index = folder.name.removeprefix("seed")
        if index.isdigit() and (folder / "t1_accuracy" / "metrics.json").is_file():
            found[int(index)] = folder
    if not found:
        raise FileNotFoundError(f"{out} holds no seed<s>/t1_accuracy/metrics.json: run experiments/t1_t6.sh first.")
    return found


def mean_table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seed indices per pool label, every row with every column (``<c>_std`` after ``<c>``).

    A column empty in some pools (the seed's curve IoU) gets its ``_std`` only where it has values;
    the tables' files take their columns from the first row, so every row is given all of them.
    """
    table = aggregate(rows, ["label"], SEED)
    keys = list(dict.fromkeys(k for row in table for k in row))
    order = [c for k in keys if not (k.endswith("_std") and k[:-4] in keys) for c in (k, f"{k}_std") if c in keys]
    return [{k: row.get(k) for k in order} for row in table]


def curve_counts(table: list[dict[str, Any]], rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """T6's mean table with ``curve_seeds``: over how many seed indices the curve IoU is averaged (a pool
    more accurate than every point of a seed's curve has none there); a curve distance's constant
    ``distance_std`` is left out."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["label"]] = counts.get(row["label"], 0) + (row["curve_iou_at_accuracy"] is not None)
    return [{**{k: v for k, v in r.items() if k != "distance_std"}, "curve_seeds": counts[r["label"]]} for r in table]


def report(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Write the tables of ``out``'s seed indices into ``out/tables``; return them by name."""
    t1: list[dict[str, Any]] = []
    t3: list[dict[str, Any]] = []
    t6: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    for seed, folder in seed_folders(out).items():
        evaluation = json.loads((folder / "t1_accuracy" / "metrics.json").read_text())
        t1 += t1_rows(seed, evaluation)
        t6 += t6_rows(seed, evaluation, members_of(folder / "t1_accuracy" / "members.csv"))
        t3.append(t3_row(seed, json.loads((folder / "mge" / "metrics.json").read_text())))
        stages += stage_rows(seed, folder / "stages.tsv")
    tables = {
        "t1_per_seed": t1,
        "t1": mean_table(t1),
        "t3_per_seed": t3,
        "t3": mean_table(t3),
        "t6_per_seed": t6,
        "t6": curve_counts(mean_table(t6), t6),
        "stages": stages,
    }
    for name, rows in tables.items():
        write_table(rows, out / "tables", name)
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the OUT folder given to experiments/t1_t6.sh")
    args = parser.parse_args(argv)
    try:
        tables = report(args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name in ("t1", "t3", "t6"):
        print(f"{name} ({tables[name][0]['seeds']} seeds)\n{(args.out / 'tables' / f'{name}.md').read_text()}")
    print(f"tables: {args.out / 'tables'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
