"""A Hydra callback that ends a few-shot multirun (table T4) with its table and bar plots.

Each ``mge-fewshot`` job writes one row per head and compared model into its ``metrics.json``
(``fewshot.rows``); this callback, added by ``conf/experiment/t4_fewshot.yaml``, collects every job's rows
into the sweep folder: ``<name>.csv`` (the long table), ``<name>.md`` (models down, one column per
dataset, setting and head, "accuracy +- 95% CI" in percent) and ``<name>.png`` (a panel of bars with
CI whiskers per dataset, setting and head), whichever launcher ran the jobs. ``mge-report <sweep
folder>`` rebuilds them (it runs every callback whose name ends in ``SweepReport``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mge.cli.loggers import log_sweep_report
from mge.reporting import markdown_table, write_csv
from mge.reporting.sweep import collect_jobs

log = logging.getLogger("mge")


def fewshot_rows(jobs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every job's rows with the job's folder name in front; a failed job contributes none."""
    rows = []
    for job in jobs:
        metrics = job["metrics"]
        if metrics is None:
            continue
        rows += [{"job": job["job"], **row} for row in (metrics.get("fewshot") or {}).get("rows") or []]
    return rows


def _setting(row: Mapping[str, Any]) -> str:
    """A column of the table: dataset, episodes, head, and the features unless they are raw."""
    features = row.get("features", "raw")
    return f"{row['dataset']} {row['n_way']}-way {row['k_shot']}-shot {row['head']}" + (
        "" if features == "raw" else f" {features}"
    )


def pivot(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[object]]]:
    """Headers and rows of the paper-style table: a row per model, a column per dataset, setting and head."""
    settings = sorted({_setting(r) for r in rows}, key=lambda s: _sort_key(rows, s))
    models = list(dict.fromkeys(r["model"] for r in rows))
    cells = {(r["model"], _setting(r)): f"{100 * r['accuracy']:.2f} +- {100 * r['ci95']:.2f}" for r in rows}
    return ["model", *settings], [[m, *(cells.get((m, s), "") for s in settings)] for m in models]


def _sort_key(rows: Sequence[Mapping[str, Any]], setting: str) -> tuple:
    """Dataset, then N-way, K-shot, then heads in the order the jobs list them, then features."""
    heads = list(dict.fromkeys(r["head"] for r in rows))
    row = next(r for r in rows if _setting(r) == setting)
    return (str(row["dataset"]), row["n_way"], row["k_shot"], heads.index(row["head"]), row.get("features", "raw"))


def plot_fewshot_sweep(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """A panel per dataset, setting and head: bars of mean accuracy with 95% CI whiskers, chance level dashed."""
    from matplotlib.figure import Figure  # not pyplot: leaves the caller's backend alone

    settings = sorted({_setting(r) for r in rows}, key=lambda s: _sort_key(rows, s))
    columns = min(4, len(settings))
    lines = (len(settings) + columns - 1) // columns
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig = Figure(figsize=(1.0 + 0.75 * len(models) * columns, 3.6 * lines))
    for i, setting in enumerate(settings):
        ax = fig.add_subplot(lines, columns, i + 1)
        by_model = {r["model"]: r for r in rows if _setting(r) == setting}
        shown = [m for m in models if m in by_model]
        ax.bar(
            range(len(shown)),
            [100 * by_model[m]["accuracy"] for m in shown],
            yerr=[100 * by_model[m]["ci95"] for m in shown],
            capsize=3,
            color="tab:blue",
        )
        ax.axhline(100 / by_model[shown[0]]["n_way"], color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(shown)), shown, rotation=40, ha="right", fontsize="small")
        ax.set_ylim(0, 100)
        ax.set_ylabel("accuracy on novel classes (%)", fontsize="small")
        ax.set_title(setting, fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(f"{title}: mean and 95% CI over episodes (dashed: chance)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


class FewShotSweepReport(Callback):
    """Collects the rows of every ``mge-fewshot`` job into ``<name>.csv``, ``<name>.md`` and ``<name>.png``."""

    def __init__(self, name: str) -> None:
        if not name:
            raise ValueError("FewShotSweepReport needs a name, e.g. t4_fewshot.")
        self.name = name

    def report(self, sweep_dir: str | Path) -> list[dict[str, Any]]:
        """Write the tables and plot of ``sweep_dir``; return the long rows."""
        sweep_dir = Path(sweep_dir)
        jobs = collect_jobs(sweep_dir)
        failed = [job["job"] for job in jobs if job["metrics"] is None]
        if failed:
            log.warning("%s: jobs %s wrote no metrics.json; their rows are missing", self.name, failed)
        rows = fewshot_rows(jobs)
        if not rows:
            raise ValueError(f"{self.name}: no job in {sweep_dir} wrote few-shot rows; see the jobs' logs.")
        write_csv(rows, sweep_dir / f"{self.name}.csv")
        headers, table = pivot(rows)
        (sweep_dir / f"{self.name}.md").write_text(markdown_table(headers, table) + "\n")
        plot_fewshot_sweep(rows, sweep_dir / f"{self.name}.png", title=self.name)
        log.info("%s: wrote %s.{csv,md,png} in %s", self.name, self.name, sweep_dir)
        return rows

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = self.report(sweep_dir)
        log_sweep_report(config, self.name, rows, [sweep_dir / f"{self.name}.{ext}" for ext in ("md", "csv", "png")])
        print((sweep_dir / f"{self.name}.md").read_text())
