"""A Hydra callback that ends a multirun with its table (Markdown, CSV) and a PNG plot.

Experiment configs (``conf/experiment/``) add it under ``hydra.callbacks``; it runs in the
launching process once every job is done, whichever launcher ran them, and writes into the sweep
folder. ``mge-report <sweep folder>`` rebuilds the same files later from the sweep's
``multirun.yaml``. The table logic is plain Python in :mod:`mge.reporting.sweep`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mge.cli.loggers import log_sweep_report
from mge.reporting.sweep import (
    aggregate,
    check_column_path,
    collect_jobs,
    order_key,
    plot_sweep,
    sweep_rows,
    write_table,
)

log = logging.getLogger("mge")

X_SCALES = ("linear", "log", "logit", "symlog")


class SweepReport(Callback):
    """Collects ``metrics.json`` of every job into ``<name>.md``, ``<name>.csv`` and ``<name>.png``.

    Args:
        name: file stem of the table and the plot.
        columns: column name -> dotted path into a job (see :mod:`mge.reporting.sweep`).
        x: the column on the plot's horizontal axis.
        plots: the columns plotted against ``x``, one panel each.
        group: a column whose values get their own row of panels and their own rows (e.g. dataset).
        x_scale: matplotlib scale of ``x``.
        seed: the column naming the seed of a job; with it, ``<name>`` is aggregated over seeds
            (mean ± std, number of seeds) and ``<name>_per_seed`` keeps one row per job.
        keys: the columns that identify a setting (default: ``group`` and ``x``).
        rows_from: a path to a list or mapping in each job's metrics giving one row per entry.
        labels: column -> words for the plot's axes.
        references: plotted column -> column holding the seed model's value (a dashed line).
    """

    def __init__(
        self,
        name: str,
        columns: Mapping[str, str],
        x: str,
        plots: Sequence[str],
        group: str | None = None,
        x_scale: str = "linear",
        seed: str | None = None,
        keys: Sequence[str] | None = None,
        rows_from: str | None = None,
        labels: Mapping[str, str] | None = None,
        references: Mapping[str, str] | None = None,
    ) -> None:
        self.keys = list(keys) if keys is not None else [k for k in (group, x) if k]
        named = [x, *plots, *self.keys, *([group] if group else []), *([seed] if seed else [])]
        named += [*(references or {}), *(references or {}).values()]
        missing = sorted({c for c in named if c not in columns})
        if missing:
            raise ValueError(f"SweepReport {name!r}: {missing} are not among its columns {list(columns)}.")
        if x_scale not in X_SCALES:
            raise ValueError(f"SweepReport {name!r}: unknown x_scale {x_scale!r}. Valid values are {list(X_SCALES)}.")
        for path in [*columns.values(), *([rows_from] if rows_from else [])]:
            check_column_path(path)
        self.name, self.columns, self.x, self.plots = name, dict(columns), x, list(plots)
        self.group, self.x_scale, self.seed, self.rows_from = group, x_scale, seed, rows_from
        self.labels, self.references = dict(labels or {}), dict(references or {})

    def report(self, sweep_dir: str | Path) -> list[dict[str, Any]]:
        """Write the tables and the plot of ``sweep_dir``; return the (aggregated, if seeded) rows."""
        jobs = collect_jobs(sweep_dir)
        failed = [job["job"] for job in jobs if job["metrics"] is None]
        if failed:
            log.warning("%s: jobs %s wrote no metrics.json; their rows are empty", self.name, failed)
        rows = sorted(sweep_rows(jobs, self.columns, self.rows_from), key=self._order)
        if self.seed is None:
            table = rows
        else:
            write_table(rows, sweep_dir, f"{self.name}_per_seed")
            table = aggregate(rows, self.keys, self.seed)
        md, csv_path = write_table(table, sweep_dir, self.name)
        png = plot_sweep(
            rows,
            self.x,
            self.plots,
            Path(sweep_dir) / f"{self.name}.png",
            group=self.group,
            seed=self.seed,
            x_scale=self.x_scale,
            title=self.name,
            labels=self.labels,
            references=self.references,
        )
        log.info("%s: wrote %s, %s and %s", self.name, md, csv_path, png)
        return table

    def _order(self, row: dict[str, Any]) -> tuple:
        """Rows by key columns (group, then x), then seed; missing values last."""
        return tuple(order_key(row[k]) for k in [*self.keys, *([self.seed] if self.seed else [])])

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = self.report(sweep_dir)
        files = sorted(p for p in sweep_dir.glob(f"{self.name}*") if p.suffix in (".md", ".csv", ".png"))
        log_sweep_report(config, self.name, rows, files)
        print((sweep_dir / f"{self.name}.md").read_text())


def reports_of(sweep_dir: Path) -> list[SweepReport]:
    """The SweepReport callbacks a sweep was run with, from its ``multirun.yaml``."""
    config_file = sweep_dir / "multirun.yaml"
    if not config_file.is_file():
        raise FileNotFoundError(f"No multirun.yaml in {sweep_dir}: not the folder of a Hydra multirun (-m).")
    callbacks = OmegaConf.select(OmegaConf.load(config_file), "hydra.callbacks") or {}
    reports = [instantiate(node) for node in callbacks.values() if "SweepReport" in str(node.get("_target_", ""))]
    if not reports:
        raise ValueError(f"The sweep in {sweep_dir} was run without a table (no SweepReport callback in its config).")
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """``mge-report <sweep folder>``: rebuild a sweep's tables and plots from its jobs' metrics."""
    parser = argparse.ArgumentParser(prog="mge-report", description=main.__doc__)
    parser.add_argument("sweep_dir", type=Path, help="the multirun folder (outputs/<task>/multiruns/<time>)")
    args = parser.parse_args(argv)
    try:
        for report in reports_of(args.sweep_dir):
            report.report(args.sweep_dir)
            print((args.sweep_dir / f"{report.name}.md").read_text())
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
