"""Tables and plots of a Hydra multirun, from each job's overrides and ``metrics.json``.

A sweep folder holds one numbered folder per job (``conf/hydra/default.yaml``), each with
``.hydra/overrides.yaml`` and the ``metrics.json`` the entry point wrote. Columns are named by
dotted paths into ``{"job", "override": {...}, "metrics": {...}, "row": {...}}``, e.g.
``override.generator.threshold`` or ``metrics.generate.test.mistake_iou.mean``. A job gives one row,
or, with ``rows_from`` (a path to a list or mapping in its metrics, e.g. one entry per pool it
evaluated), one row per entry, whose fields are read with ``row.<key>``.

With several seeds per setting, rows are also aggregated: one row per setting (its key columns)
with the mean, the standard deviation over seeds (ddof 1; 0 for one seed) and the number of seeds
of every numeric column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

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


SECTIONS = ("job", "override", "metrics", "row")


def check_column_path(path: str) -> None:
    """Refuse a column path that names no part of a job."""
    if path.partition(".")[0] not in SECTIONS:
        raise ValueError(f"Column path {path!r} must start with 'job', 'override.', 'metrics.' or 'row.'.")


def lookup(job: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` ("override.<key>", "metrics.<a>.<b>", "row.<key>"); None where absent."""
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


def is_number(value: Any) -> TypeGuard[int | float]:
    """A number, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def order_key(value: Any) -> tuple:
    """Sort key for cells of any type: numbers in order, then other values as text, None last."""
    numeric = is_number(value)
    return (value is None, not numeric, value if numeric else str(value))


def _entries(job: Mapping[str, Any], rows_from: str) -> list[Mapping[str, Any]]:
    """The row entries of a job: a list of dicts, or a mapping whose values are dicts (keyed by ``label``)."""
    found = lookup(job, rows_from)
    if isinstance(found, Mapping):
        return [{"label": label, **entry} for label, entry in found.items() if isinstance(entry, Mapping)]
    if isinstance(found, list):
        return [entry for entry in found if isinstance(entry, Mapping)]
    return []


def sweep_rows(
    jobs: Sequence[Mapping[str, Any]], columns: Mapping[str, str], rows_from: str | None = None
) -> list[dict[str, Any]]:
    """One ``{column: value}`` per job (or per entry of each job's ``rows_from``), in job order."""
    if rows_from is None:
        return [{name: lookup(job, path) for name, path in columns.items()} for job in jobs]
    return [
        {name: lookup({**job, "row": entry}, path) for name, path in columns.items()}
        for job in jobs
        for entry in _entries(job, rows_from)
    ]


def aggregate(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], seed: str) -> list[dict[str, Any]]:
    """One row per distinct ``keys``: mean, ``<column>_std`` (over seeds, ddof 1) and ``seeds`` (how many).

    Numeric columns are averaged over the rows that have a value; a non-numeric column keeps its
    value when every row agrees, else None. The ``seed`` column itself is dropped.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    values = [c for c in (rows[0] if rows else {}) if c not in keys and c != seed]
    out = []
    for key, members in groups.items():
        result: dict[str, Any] = dict(zip(keys, key, strict=True))
        for column in values:
            cells = [m.get(column) for m in members]
            numbers = [float(c) for c in cells if is_number(c)]
            if numbers:
                mean = sum(numbers) / len(numbers)
                var = sum((x - mean) ** 2 for x in numbers) / (len(numbers) - 1) if len(numbers) > 1 else 0.0
                result[column], result[f"{column}_std"] = mean, var**0.5
            else:
                result[column] = cells[0] if len({str(c) for c in cells}) == 1 else None
        result["seeds"] = len({str(m.get(seed)) for m in members})
        out.append(result)
    return out


def write_table(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, name: str) -> tuple[Path, Path]:
    """``<name>.md`` and ``<name>.csv`` in ``out_dir``; empty cells for missing values.

    In the Markdown table a column ``c`` followed by ``c_std`` is shown as one cell ``mean ± std``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    headers = [h for h in (list(rows[0]) if rows else []) if not (h.endswith("_std") and h[:-4] in rows[0])]

    def cell(row: Mapping[str, Any], h: str) -> Any:
        value, spread = row.get(h), row.get(f"{h}_std")
        if value is None:
            return ""
        return f"{value:.4g} ± {spread:.2g}" if is_number(value) and is_number(spread) else value

    md = out_dir / f"{name}.md"
    md.write_text(markdown_table(headers, [[cell(row, h) for h in headers] for row in rows]) + "\n")
    return md, write_csv(rows, out_dir / f"{name}.csv")


def plot_sweep(
    rows: Sequence[Mapping[str, Any]],
    x: str,
    ys: Sequence[str],
    path: str | Path,
    *,
    group: str | None = None,
    seed: str | None = None,
    x_scale: str = "linear",
    title: str = "",
    labels: Mapping[str, str] | None = None,
    references: Mapping[str, str] | None = None,
) -> Path:
    """One row of panels per value of ``group`` (datasets are never mixed in one panel), one panel per ``y``.

    A numeric ``x`` gives lines: each seed faint, the mean over seeds bold with a band of one standard
    deviation. A categorical ``x`` (e.g. a pool kind) gives bars of the mean with error bars, each
    seed a dot. ``references`` maps a ``y`` to the column holding the seed model's value, drawn as
    a dashed line. ``labels`` gives the words on the axes. ``x_scale`` is a matplotlib scale
    ("linear", "log", "logit"); points it cannot show are left out.
    """
    from matplotlib.figure import Figure  # not pyplot: leaves the caller's backend alone

    labels, references = dict(labels or {}), dict(references or {})
    groups: dict[Any, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get(group) if group else None, []).append(row)
    fig = Figure(figsize=(4.2 * len(ys), 3.4 * max(len(groups), 1)))
    axes = fig.subplots(max(len(groups), 1), len(ys), squeeze=False)
    for r, (group_value, members) in enumerate(groups.items()):
        for c, y in enumerate(ys):
            ax = axes[r][c]
            _draw(ax, members, x, y, seed)
            if y in references:
                ref = [float(m[references[y]]) for m in members if is_number(m.get(references[y]))]
                if ref:
                    ax.axhline(sum(ref) / len(ref), color="black", linestyle="--", linewidth=1, label="seed model")
                    ax.legend(fontsize="small")
            ax.set_xlabel(labels.get(x, x))
            ax.set_ylabel(labels.get(y, y))
            if any(is_number(m.get(x)) for m in members):
                ax.set_xscale(x_scale)
            ax.grid(alpha=0.3)
            if group:
                ax.set_title(f"{labels.get(group, group)}: {group_value}", fontsize="medium")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _draw(ax: Any, rows: Sequence[Mapping[str, Any]], x: str, y: str, seed: str | None) -> None:
    """Lines (numeric ``x``) or bars (categorical ``x``) of ``y``: each seed, and the mean over seeds."""
    points = [
        (r[x], float(r[y]), r.get(seed) if seed else None) for r in rows if r.get(x) is not None and is_number(r.get(y))
    ]
    if not points:
        return
    xs = sorted({p[0] for p in points}, key=order_key)
    by_x = {v: [p[1] for p in points if p[0] == v] for v in xs}
    means = [sum(v) / len(v) for v in by_x.values()]
    stds = [
        (sum((a - m) ** 2 for a in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
        for v, m in zip(by_x.values(), means, strict=True)
    ]
    numeric = all(is_number(v) for v in xs)
    seeds = sorted({p[2] for p in points}, key=order_key)
    if numeric:
        if len(seeds) > 1:
            for s in seeds:
                line = sorted((p[0], p[1]) for p in points if p[2] == s)
                ax.plot(*zip(*line, strict=True), color="grey", alpha=0.35, linewidth=1, marker=".")
        ax.plot(xs, means, marker="o", linewidth=2, label="mean over seeds" if len(seeds) > 1 else None)
        if len(seeds) > 1:
            ax.fill_between(
                xs,
                [m - s for m, s in zip(means, stds, strict=True)],
                [m + s for m, s in zip(means, stds, strict=True)],
                alpha=0.2,
            )
    else:
        positions = range(len(xs))
        ax.bar(positions, means, yerr=stds if len(seeds) > 1 else None, capsize=3, alpha=0.7)
        for i, v in enumerate(xs):
            ax.scatter([i] * len(by_x[v]), by_x[v], color="black", s=8, zorder=3)
        ax.set_xticks(list(positions), [str(v) for v in xs], rotation=30, ha="right", fontsize="small")
        low, high = min(p[1] for p in points), max(p[1] for p in points)
        pad = (high - low) * 0.5 or abs(high) * 0.01 or 0.01
        ax.set_ylim(low - pad, high + pad)
