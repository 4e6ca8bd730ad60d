"""Plots of pools compared together: accuracy against novelty with the noise curve (T6), ensemble accuracy against size.

Both take plain rows (what ``mge-eval`` writes to ``members.csv`` and its table), so they can be
redrawn from the files of a finished run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

NOVELTY_AXIS = "mistake IoU with the seed (lower = more novel)"


def _figure(panels: int, width: float = 5.2, height: float = 4.2) -> Any:
    from matplotlib.figure import Figure  # not pyplot: leaves the caller's backend alone

    return Figure(figsize=(width * panels, height))


def _colors(labels: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


def plot_novelty(
    members: Sequence[Mapping[str, Any]],
    groups: Sequence[Mapping[str, Any]],
    seed_accuracy: float,
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Test accuracy against mistake IoU with the seed: every member, each pool's mean, and the noise curve.

    Two panels: the whole range (where the curve falls off at large distances) and a zoom on the
    members of the pools that are not on the curve.

    Args:
        members: one row per member: ``label``, ``distance`` (None off the curve), ``test_accuracy``,
            ``mistake_iou_with_seed``.
        groups: one row per table row: ``label``, ``kind``, ``distance``, ``accuracy_mean``,
            ``mistake_iou_mean`` (the seed's row is skipped; it is drawn from ``seed_accuracy``).
        seed_accuracy: the seed's test accuracy, drawn at IoU 1.
        path: the PNG to write.
        title: the figure's title.
    """
    pools = [g for g in groups if g["distance"] is None and g["kind"] != "seed" and g["accuracy_mean"] is not None]
    curve = sorted((g for g in groups if g["distance"] is not None and g["accuracy_mean"] is not None),
                   key=lambda g: g["distance"])  # fmt: skip
    colors = _colors([g["label"] for g in pools])
    fig = _figure(2)
    for panel, zoom in enumerate((False, True)):
        ax = fig.add_subplot(1, 2, panel + 1)
        if curve:
            xs, ys = [g["mistake_iou_mean"] for g in curve], [g["accuracy_mean"] for g in curve]
            on_curve = [m for m in members if m["distance"] is not None]
            ax.scatter([m["mistake_iou_with_seed"] for m in on_curve], [m["test_accuracy"] for m in on_curve],
                       s=6, color="0.75", zorder=1)  # fmt: skip
            ax.plot(xs, ys, color="black", linestyle="--", marker="o", markersize=4, label="noise curve", zorder=2)
            for g, x, y in zip(curve, xs, ys, strict=True):
                ax.annotate(f"d={g['distance']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        for g in pools:
            own = [m for m in members if m["label"] == g["label"]]
            color = colors[g["label"]]
            ax.scatter([m["mistake_iou_with_seed"] for m in own], [m["test_accuracy"] for m in own],
                       s=10, alpha=0.45, color=color, zorder=3)  # fmt: skip
            ax.scatter([g["mistake_iou_mean"]], [g["accuracy_mean"]], s=90, color=color, edgecolor="black",
                       label=f"{g['label']} (mean)", zorder=4)  # fmt: skip
        ax.scatter([1.0], [seed_accuracy], marker="*", s=200, color="gold", edgecolor="black", label="seed", zorder=5)
        if zoom:
            focus = [m for m in members if m["distance"] is None] or list(members)
            accs = [m["test_accuracy"] for m in focus] + [seed_accuracy]
            ious = [m["mistake_iou_with_seed"] for m in focus] + [1.0]
            pad_y = max(1e-3, 0.1 * (max(accs) - min(accs)))
            pad_x = max(1e-2, 0.05 * (max(ious) - min(ious)))
            ax.set_ylim(min(accs) - pad_y, max(accs) + pad_y)
            ax.set_xlim(min(ious) - pad_x, max(ious) + pad_x)
            ax.set_title("zoom on the pools", fontsize=9)
        else:
            ax.set_title("whole range", fontsize=9)
            ax.legend(fontsize=7, loc="best")
        ax.set_xlabel(NOVELTY_AXIS)
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def plot_ensemble_size(
    curves: Mapping[str, Mapping[str, Any]], seed_accuracy: float, path: str | Path, *, title: str = ""
) -> Path:
    """Soft- and majority-vote accuracy of the first k members against k, mean and range over random orderings.

    Args:
        curves: per pool label, its ``EnsembleCurve.to_dict()``.
        seed_accuracy: drawn as a horizontal line.
        path: the PNG to write.
        title: the figure's title.
    """
    colors = _colors(list(curves))
    fig = _figure(2)
    for panel, vote in enumerate(("soft_vote_accuracy", "majority_vote_accuracy")):
        ax = fig.add_subplot(1, 2, panel + 1)
        for label, curve in curves.items():
            sizes, spread = curve["sizes"], curve[vote]
            ax.plot(sizes, spread["mean"], marker="o", markersize=3, color=colors[label], label=label)
            ax.fill_between(sizes, spread["min"], spread["max"], color=colors[label], alpha=0.15)
        ax.axhline(seed_accuracy, color="black", linestyle=":", label="seed")
        ax.set_xscale("log")
        ax.set_xlabel("pool size (first k members of a random ordering)")
        ax.set_ylabel(vote.replace("_", " ") + " (test)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
