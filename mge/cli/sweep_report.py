"""A Hydra callback that ends a multirun with its table (Markdown, CSV) and a PNG plot.

Experiment configs (``conf/experiment/``) add it under ``hydra.callbacks``; it runs in the
launching process once every job is done, whichever launcher ran them, and writes into the sweep
folder. The table logic is plain Python in :mod:`mge.reporting.sweep`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mge.reporting.sweep import check_column_path, collect_jobs, order_key, plot_sweep, sweep_rows, write_table

log = logging.getLogger("mge")

X_SCALES = ("linear", "log", "logit", "symlog")


class SweepReport(Callback):
    """Collects ``metrics.json`` of every job into ``<name>.md``, ``<name>.csv`` and ``<name>.png``."""

    def __init__(
        self,
        name: str,
        columns: dict[str, str],
        x: str,
        plots: Sequence[str],
        group: str | None = None,
        x_scale: str = "linear",
    ) -> None:
        missing = [c for c in (x, *plots, *([group] if group else [])) if c not in columns]
        if missing:
            raise ValueError(f"SweepReport {name!r}: {missing} are not among its columns {list(columns)}.")
        if x_scale not in X_SCALES:
            raise ValueError(f"SweepReport {name!r}: unknown x_scale {x_scale!r}. Valid values are {list(X_SCALES)}.")
        for path in columns.values():
            check_column_path(path)
        self.name, self.columns, self.x, self.plots = name, dict(columns), x, list(plots)
        self.group, self.x_scale = group, x_scale

    def report(self, sweep_dir: str | Path) -> list[dict[str, Any]]:
        """Write the table and plot of ``sweep_dir``; return the rows."""
        jobs = collect_jobs(sweep_dir)
        failed = [job["job"] for job in jobs if job["metrics"] is None]
        if failed:
            log.warning("%s: jobs %s wrote no metrics.json; their rows are empty", self.name, failed)
        rows = sorted(sweep_rows(jobs, self.columns), key=self._order)
        md, csv_path = write_table(rows, sweep_dir, self.name)
        png = plot_sweep(
            rows, self.x, self.plots, Path(sweep_dir) / f"{self.name}.png", group=self.group,
            x_scale=self.x_scale, title=self.name,
        )  # fmt: skip
        log.info("%s: wrote %s, %s and %s", self.name, md, csv_path, png)
        return rows

    def _order(self, row: dict[str, Any]) -> tuple:
        """Rows by group, then x; missing values last."""
        return tuple(order_key(row[k]) for k in ([self.group, self.x] if self.group else [self.x]))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.report(config.hydra.sweep.dir)
        print((Path(config.hydra.sweep.dir) / f"{self.name}.md").read_text())
