"""Issue 9's acceptance figures for E-MGE over training seeds, from the runs of experiments/evolution_results.sh.

For every ``RESULTS/seed<s>`` with an E-MGE run (``emge/metrics.json``) and its T6 evaluation
(``t6_novelty_emge/metrics.json``, test set), checks the four criteria of the issue:

- mean member accuracy within 0.5 points of the seed's;
- mean mistake IoU with the seed below the MGE pool's and below the noise curve's at the same mean
  accuracy (the curve of that seed's noise pools, IoU linearly interpolated in accuracy, clamped at
  the curve's ends);
- soft-vote ensemble accuracy above the seed's;
- the evolution run's cost at most 25% of one seed training: the run's own ratio (training steps
  timed in the same run, :mod:`mge.runs.timing`) and its seconds against the seed's recorded
  training seconds.

    PYTHONPATH=. python experiments/evolution_report.py RESULTS --out RESULTS/emge-tables \
        --figure docs/figures/evolution_<dataset>_seed0_accuracy_vs_iou.png

Writes ``emge.json`` and ``emge.md`` (per seed, then mean +- std over seeds) into ``--out`` and the
seed-0 accuracy-vs-IoU plot (noise curve, MGE, every E-MGE pool of that evaluation, with members).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from mge.reporting import markdown_table

ACCURACY_WINDOW = 0.005  # "within 0.5 points of the seed"
MAX_COST = 0.25  # "at most 25% of one seed training"


def noise_iou_at(curve: list[dict[str, Any]], accuracy: float) -> float:
    """The noise curve's mean IoU at a mean accuracy, linearly interpolated (clamped at the curve's ends)."""
    points = sorted((row["accuracy_mean"], row["mistake_iou_mean"]) for row in curve)
    xs, ys = zip(*points, strict=True)
    return float(np.interp(accuracy, xs, ys))


def stage_rows(seed_dir: Path) -> dict[str, dict[str, str]]:
    """``emge-stages.tsv`` by stage name: wall seconds and load averages of each stage."""
    path = seed_dir / "emge-stages.tsv"
    if not path.is_file():
        return {}
    with path.open() as f:
        return {row["stage"]: row for row in csv.DictReader(f, delimiter="\t")}


def eval_table(seed_dir: Path) -> list[dict[str, Any]]:
    """The rows (one per pool or noise distance) of the seed's T6 evaluation with E-MGE."""
    return json.loads((seed_dir / "t6_novelty_emge" / "metrics.json").read_text())["eval"]["table"]


def noise_rows(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The noise curve's rows (noise pools with a distance), nearest to the seed first."""
    return sorted((r for r in table if r["kind"] == "noise" and r["distance"] is not None), key=lambda r: r["distance"])


def seed_figures(seed_dir: Path, label: str = "E-MGE", run: str = "emge") -> dict[str, Any]:
    """The acceptance figures of one seed's E-MGE pool ``label`` (evolved in ``seed_dir/run``)."""
    table = {r["label"]: r for r in eval_table(seed_dir)}
    evolve = json.loads((seed_dir / run / "metrics.json").read_text())["evolve"]
    seed, mge, emge = table["seed"], table["MGE"], table[label]
    curve = noise_rows(list(table.values()))
    noise_emge, noise_mge = noise_iou_at(curve, emge["accuracy_mean"]), noise_iou_at(curve, mge["accuracy_mean"])
    train_seconds = seed["cost_seconds"]  # the seed's recorded training seconds
    stage = stage_rows(seed_dir).get(f"E-MGE {'sharing-lambda4' if run == 'emge' else 'default'}", {})
    figures = {
        "seed_accuracy": seed["accuracy_mean"],
        "mge_accuracy": mge["accuracy_mean"],
        "mge_iou": mge["mistake_iou_mean"],
        "mge_soft_vote": mge["soft_vote_accuracy"],
        "noise_iou_at_mge": noise_mge,
        "accuracy": emge["accuracy_mean"],
        "accuracy_min": emge["accuracy_min"],
        "iou": emge["mistake_iou_mean"],
        "noise_iou_at_emge": noise_emge,
        "disagreement": emge["disagreement"],
        "relative_l2": emge["relative_l2_mean"],
        "soft_vote": emge["soft_vote_accuracy"],
        "stage_seconds": evolve["stage_seconds"],
        "time_ratio": evolve["time_ratio"],
        "time_reference_seconds": (evolve.get("time_reference") or {}).get("seconds"),
        "seed_train_seconds": train_seconds,
        "cost_vs_recorded_training": evolve["stage_seconds"] / train_seconds if train_seconds else None,
        "acceptance_rate": evolve["acceptance_rate"],
        "forward_passes": evolve["forward_passes"],
        "survivors_by_operator": evolve["survivors_by_operator"],
        "wall_seconds": float(stage["seconds"]) if stage else None,
        "load_before": stage.get("load_before"),
        "load_after": stage.get("load_after"),
    }
    figures["met"] = {
        "accuracy_within_0.5pt": figures["accuracy"] >= figures["seed_accuracy"] - ACCURACY_WINDOW,
        "iou_below_mge": figures["iou"] < figures["mge_iou"],
        "iou_below_noise": figures["iou"] < noise_emge,
        "ensemble_above_seed": figures["soft_vote"] > figures["seed_accuracy"],
        "cost_time_ratio": figures["time_ratio"] is not None and figures["time_ratio"] <= MAX_COST,
        "cost_recorded_training": figures["cost_vs_recorded_training"] is not None
        and figures["cost_vs_recorded_training"] <= MAX_COST,
    }
    return figures


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def per_seed_table(rows: dict[str, dict[str, Any]]) -> str:
    headers = [
        "seed", "seed acc %", "E-MGE mean acc % (Δ pt)", "E-MGE IoU", "MGE IoU (acc %)", "noise IoU at E-MGE acc",
        "E-MGE soft vote % (seed)", "evolution s (time ratio)", "vs recorded training s", "accuracy", "IoU < MGE",
        "IoU < noise", "ensemble > seed", "cost ≤ 25%",
    ]  # fmt: skip
    lines = []
    for name, f in rows.items():
        met = f["met"]
        lines.append([
            name, f"{100 * f['seed_accuracy']:.2f}",
            f"{100 * f['accuracy']:.2f} ({100 * (f['accuracy'] - f['seed_accuracy']):+.2f})", f"{f['iou']:.3f}",
            f"{f['mge_iou']:.3f} ({100 * f['mge_accuracy']:.2f})", f"{f['noise_iou_at_emge']:.3f}",
            f"{100 * f['soft_vote']:.2f} ({100 * f['seed_accuracy']:.2f})",
            f"{f['stage_seconds']:.1f} ({100 * f['time_ratio']:.1f}%)",
            f"{f['seed_train_seconds']:.0f} ({100 * f['cost_vs_recorded_training']:.1f}%)",
            mark(met["accuracy_within_0.5pt"]), mark(met["iou_below_mge"]), mark(met["iou_below_noise"]),
            mark(met["ensemble_above_seed"]),
            mark(met["cost_time_ratio"]) + ("" if met["cost_recorded_training"] else " (ratio); MISSED (recorded)"),
        ])  # fmt: skip
    return markdown_table(headers, lines)


SUMMARY = (
    ("seed test accuracy %", "seed_accuracy", 100), ("MGE mean accuracy %", "mge_accuracy", 100),
    ("MGE mean mistake IoU", "mge_iou", 1), ("noise IoU at MGE's accuracy", "noise_iou_at_mge", 1),
    ("MGE soft vote %", "mge_soft_vote", 100),
    ("E-MGE mean accuracy %", "accuracy", 100), ("E-MGE mean mistake IoU", "iou", 1),
    ("noise IoU at E-MGE's accuracy", "noise_iou_at_emge", 1), ("E-MGE pairwise disagreement", "disagreement", 1),
    ("E-MGE relative L2 to the seed", "relative_l2", 1), ("E-MGE soft vote %", "soft_vote", 100),
    ("evolution seconds", "stage_seconds", 1), ("time ratio (timed in the run) %", "time_ratio", 100),
    ("seconds vs recorded seed training %", "cost_vs_recorded_training", 100),
)  # fmt: skip


def summary_table(rows: dict[str, dict[str, Any]]) -> str:
    """Mean +- std (sample std, ddof=1) over seeds of every figure, and how many seeds met each criterion."""
    lines = []
    for name, key, scale in SUMMARY:
        values = np.array([scale * f[key] for f in rows.values()])
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        lines.append([name, f"{values.mean():.4g} ± {std:.2g}", ", ".join(f"{v:.4g}" for v in values)])
    for criterion in next(iter(rows.values()))["met"]:
        met = sum(f["met"][criterion] for f in rows.values())
        lines.append([f"criterion {criterion}", f"met on {met} of {len(rows)} seeds", ""])
    return markdown_table(["figure", "mean ± std", "per seed"], lines)


def plot(seed_dir: Path, path: Path, title: str) -> None:
    """Mean member accuracy against mean mistake IoU on the test set: noise curve, MGE, E-MGE pools, with members."""
    from matplotlib.figure import Figure

    table = eval_table(seed_dir)
    with (seed_dir / "t6_novelty_emge" / "members.csv").open() as f:
        members = list(csv.DictReader(f))
    seed = next(r for r in table if r["label"] == "seed")
    curve = noise_rows(table)
    fig = Figure(figsize=(7.5, 5.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([100 * r["accuracy_mean"] for r in curve], [r["mistake_iou_mean"] for r in curve], "o-", color="grey",
            label="Gaussian weight noise curve (pool means)")  # fmt: skip
    for r in curve:
        ax.annotate(f"d={r['distance']:g}", (100 * r["accuracy_mean"], r["mistake_iou_mean"]), fontsize=7,
                    color="grey", textcoords="offset points", xytext=(4, 2))  # fmt: skip
    styles = {"MGE": ("s", "tab:blue"), "E-MGE": ("*", "tab:red"), "E-MGE-default": ("D", "tab:orange")}
    for label, (marker, colour) in styles.items():
        row = next((r for r in table if r["label"] == label), None)
        if row is None:
            continue
        own = [m for m in members if m["label"] == label]
        ax.scatter([100 * float(m["test_accuracy"]) for m in own], [float(m["mistake_iou_with_seed"]) for m in own],
                   s=8, alpha=0.25, color=colour)  # fmt: skip
        ax.plot(100 * row["accuracy_mean"], row["mistake_iou_mean"], marker, color=colour, markersize=12,
                markeredgecolor="black", label=f"{label} (mean; dots: members)")  # fmt: skip
    acc = 100 * seed["accuracy_mean"]
    ax.axvline(acc, color="black", linestyle=":", label="seed accuracy")
    ax.axvspan(acc - 100 * ACCURACY_WINDOW, acc, color="green", alpha=0.07, label="within 0.5 points of the seed")
    ax.set_xlim(acc - 1.5, acc + 0.2)
    shown = [float(m["mistake_iou_with_seed"]) for m in members if 100 * float(m["test_accuracy"]) >= acc - 1.5]
    shown += [r["mistake_iou_mean"] for r in curve if 100 * r["accuracy_mean"] >= acc - 1.5]
    ax.set_ylim(max(0.0, min(shown) - 0.05), min(1.0, max(shown) + 0.05))  # the members and curve in view
    ax.set_xlabel("mean member accuracy on the test set (%)")
    ax.set_ylabel("mean mistake IoU with the seed (lower = more novel)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the dataset's folder of experiments/t1_t6.sh runs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--figure", type=Path, default=None, help="the seed-0 accuracy-vs-IoU plot")
    args = parser.parse_args()
    done = sorted(d for d in args.results.glob("seed[0-9]*") if (d / "t6_novelty_emge" / "metrics.json").is_file())
    rows = {d.name: seed_figures(d) for d in done}
    default = {d.name: seed_figures(d, "E-MGE-default", "emge-default") for d in done if (d / "emge-default").is_dir()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "emge.json").write_text(json.dumps({"sharing-lambda4": rows, "default": default}, indent=2))
    text = [f"# E-MGE on {args.results.name}: test set, fitness=sharing, lambda=4\n", per_seed_table(rows), "",
            summary_table(rows), ""]  # fmt: skip
    if default:
        text += ["## default variant (fitness=disagreement, lambda=1)\n", per_seed_table(default), ""]
    (args.out / "emge.md").write_text("\n".join(text))
    print("\n".join(text))
    if args.figure is not None and (args.results / "seed0") in done:
        plot(args.results / "seed0", args.figure, f"{args.results.name}, seed 0: test set, 100-member pools")


if __name__ == "__main__":
    main()
