"""The curves of an E-MGE run: fitness, quality, diversity and acceptance against the generation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# (panel title, y-axis label, [(history key, line label)])
PANELS = (
    ("Fitness", "fitness (accuracy + lambda x diversity)", [("best_fitness", "best"), ("mean_fitness", "mean")]),
    ("Quality", "mean accuracy on the discriminator split", [("mean_accuracy", "population")]),
    ("Diversity", "mean pairwise disagreement on the probe set", [("diversity", "population")]),
    ("Gating", "share of children the discriminator accepted", [("acceptance", "children")]),
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def plot_history(history: Sequence[Mapping[str, Any]], *, title: str = "") -> Figure:
    """One panel per quantity of the run's history entries (``history.json``) against the generation.

    Generation 0 is the initial population; it has no acceptance. The x axis of every panel is the
    generation, with the cumulative forward passes of the last entry in the title of the figure.
    """
    from matplotlib.figure import Figure  # not pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(4.2 * len(PANELS), 3.4))
    for i, (name, ylabel, lines) in enumerate(PANELS):
        ax = fig.add_subplot(1, len(PANELS), i + 1)
        for key, label in lines:
            points = [(e["generation"], e[key]) for e in history if _number(e.get(key))]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("generation")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize="small")
    passes = history[-1].get("total_forward_passes") if history else None
    suffix = f"{passes:,} forward passes in all" if _number(passes) else ""
    fig.suptitle(" - ".join(part for part in (title, suffix) if part))
    fig.tight_layout()
    return fig
