"""What a sweeper (Optuna, ``conf/hparams_search/``) optimises: one figure of a run's metrics.json.

The figure is named by a dotted path (``generate.test.accuracy.mean``). An optional floor makes it
a constrained search, e.g. "the lowest mistake IoU among pools whose mean accuracy is at most half
a point below the seed's": a run under the floor returns NaN, which Optuna records as a failed trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def figure(metrics: Mapping[str, Any], path: str) -> float:
    """The number at dotted ``path`` in ``metrics`` (NaN where absent or not a number, e.g. an empty pool)."""
    value: Any = metrics
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


@dataclass(frozen=True)
class Objective:
    """The returned figure and an optional floor on another one."""

    metric: str | None = None  # dotted path into metrics.json; None: the job returns nothing to optimise
    floor_metric: str | None = None  # a figure that must reach the floor, e.g. generate.test.accuracy.mean
    floor: float = 0.0  # the floor's value, or its offset from floor_relative_to
    floor_relative_to: str | None = None  # e.g. generate.test.seed_accuracy: floor = that - 0.005

    def __post_init__(self) -> None:
        if not math.isfinite(self.floor):
            raise ValueError(f"floor must be a finite number, got {self.floor}.")
        if self.floor_relative_to is not None and self.floor_metric is None:
            raise ValueError("floor_relative_to needs floor_metric: the figure the floor applies to.")

    def __call__(self, metrics: Mapping[str, Any]) -> float | None:
        if self.metric is None:
            return None
        if self.floor_metric is not None:
            base = 0.0 if self.floor_relative_to is None else figure(metrics, self.floor_relative_to)
            if not figure(metrics, self.floor_metric) >= base + self.floor:  # NaN fails too
                return math.nan
        return figure(metrics, self.metric)
