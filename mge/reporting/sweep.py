"""Tables and plots of a Hydra multirun: one row per job, from its overrides and ``metrics.json``.

A sweep folder holds one numbered folder per job (``conf/hydra/default.yaml``), each with
``.hydra/overrides.yaml`` and the ``metrics.json`` the entry point wrote. Columns are named by
dotted paths into ``{"override": {...}, "metrics": {...}}``, e.g. ``override.generator.threshold``
or ``metrics.test.mistake_iou.mean``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from mge.reporting.table import markdown_table, write_csv


def _job_dirs(sweep_dir: Path) -> list[Path]:
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra" / "overrides.yaml").is_file()]
    return sorted(jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def collect_jobs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """``{"job", "override", "metrics"}`` for every job of a sweep; a failed job has ``metrics`` None."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"No sweep folder at {sweep_dir}.")
    jobs = []
    for job_dir in _job_dirs(sweep_dir):
        overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
        # Hydra's own parser, so that values get the types the job saw (1e-3 is a float, on a string)
        override = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}
        metrics_file = job_dir / "metrics.json"
        try:
            metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{metrics_file} is not valid JSON ({error}); rerun that job or delete the file."
            ) from error
        jobs.append({"job": job_dir.name, "override": override, "metrics": metrics})
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir} holds no Hydra job folders (numbered, with .hydra/overrides.yaml).")
    return jobs


SECTIONS = ("job", "override", "metrics")


def check_column_path(path: str) -> None:
    """Refuse a column path that names no part of a job."""
    if path.partition(".")[0] not in SECTIONS:
        raise ValueError(f"Column path {path!r} must start with 'job', 'override.' or 'metrics.'.")


def lookup(job: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` ("override.<key>" or "metrics.<a>.<b>"); None where absent."""
    check_column_path(path)
    section, _, rest = path.partition(".")
    value = job.get(section)
    if section == "override":
        return (value or {}).get(rest)  # override keys contain dots themselves
    for part in rest.split(".") if rest else []:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def order_key(value: Any) -> tuple:
    """Sort key for cells of any type: numbers in order, then other values as text, None last."""
    numeric = _is_number(value)
    return (value is None, not numeric, value if numeric else str(value))


def sweep_rows(jobs: Sequence[Mapping[str, Any]], columns: Mapping[str, str]) -> list[dict[str, Any]]:
    """One ``{column: value}`` per job, in job order."""
    return [{name: lookup(job, path) for name, path in columns.items()} for job in jobs]


def write_table(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """``<name>.md`` and ``<name>.csv`` in ``out_dir``; empty cells for missing values."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headers = list(rows[0]) if rows else []
    md = out_dir / f"{name}.md"
    cells = [["" if row[h] is None else row[h] for h in headers] for row in rows]
    md.write_text(markdown_table(headers, cells) + "\n")
    return md, write_csv(rows, out_dir / f"{name}.csv")


def plot_sweep(
    rows: Sequence[Mapping[str, Any]],
    x: str,
    ys: Sequence[str],
    path: str | Path,
    *,
    group: str | None = None,
    x_scale: str = "linear",
    title: str = "",
) -> Path:
    """One panel per ``y`` against ``x``, one line per value of ``group``; non-numeric points are skipped.

    ``x_scale`` is a matplotlib scale: "linear", "log", or "logit" (spreads t = 0.99, 0.999, ...;
    it cannot show x = 0 or 1, and log cannot show x <= 0: such points are left out).
    """
    from matplotlib.figure import Figure  # not pyplot: leaves the caller's backend alone

    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get(group) if group else None, []).append(row)
    fig = Figure(figsize=(4.2 * len(ys), 3.4))
    for i, y in enumerate(ys):
        ax = fig.add_subplot(1, len(ys), i + 1)
        for label, members in groups.items():
            points = sorted((r[x], r[y]) for r in members if _is_number(r[x]) and _is_number(r[y]))
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=None if label is None else str(label))
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_xscale(x_scale)
        ax.grid(alpha=0.3)
        if group:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
