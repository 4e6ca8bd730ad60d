"""``mge-eval``: labelled pools compared on the test set, as members and as ensembles; tables and plots.

Writes ``metrics.json``, ``members.csv``, ``<table.name>.md``/``.csv``, ``novelty.png`` (T6) and
``ensemble_size.png`` into the run folder; see ``conf/eval.yaml`` and :mod:`mge.runs.evaluate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from mge.cli.config import CONF_DIR, ConfigError, finished_or_run, job, settings_from_config, to_plain, typed
from mge.reporting import markdown_table, write_csv
from mge.reporting.pools import plot_ensemble_size, plot_novelty
from mge.runs.evaluate import COLUMNS, EvalOptions, EvalReport, EvalSettings, evaluate_pools

MEMBERS_FILE = "members.csv"
NOVELTY_PLOT = "novelty.png"
ENSEMBLE_PLOT = "ensemble_size.png"


def eval_settings(cfg: DictConfig) -> EvalSettings:
    """The typed settings of ``cfg``'s evaluation, each value checked against its config key."""
    pools = to_plain(cfg.get("pools")) or {}
    if not isinstance(pools, dict):
        raise ConfigError(f"pools must map labels to pool folders (pools.MGE=<run>/pool), got {pools!r}.")
    chosen = {str(label): path for label, path in pools.items() if path is not None}
    bad = {label: path for label, path in chosen.items() if not isinstance(path, str)}
    if bad:
        raise ConfigError(f"pools: every value must be a pool folder, got {bad}.")
    options = settings_from_config(EvalOptions, cfg.get("eval"), "eval")
    try:
        return EvalSettings(
            pools=chosen, options=options, data_root=typed(cfg, "data_root", str), device=typed(cfg, "device", str)
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err


def table_columns(cfg: DictConfig) -> list[str]:
    """The columns of the table (``table.columns``), each one of :data:`~mge.runs.evaluate.COLUMNS`."""
    columns = to_plain(cfg.table.get("columns")) if "table" in cfg else None
    if not columns or not isinstance(columns, list):
        return list(COLUMNS)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise ConfigError(f"table.columns: unknown column(s) {unknown}. Valid columns are {list(COLUMNS)}.")
    return columns


def write_outputs(report: EvalReport, cfg: DictConfig, columns: list[str]) -> None:
    """The run's CSV, Markdown and PNG files."""
    output = Path(cfg.paths.output_dir)
    name = typed(cfg.table, "name", str, "pools")
    write_csv(report.member_rows(), output / MEMBERS_FILE)
    rows = report.rows()
    write_csv([{c: row[c] for c in columns} for row in rows], output / f"{name}.csv")
    table = markdown_table([COLUMNS[c] for c in columns], [["" if row[c] is None else row[c] for c in columns]
                                                           for row in rows])  # fmt: skip
    (output / f"{name}.md").write_text(table + "\n")
    title = f"{report.dataset or ''} {report.model}, {report.test_examples} test examples".strip()
    seed_accuracy = report.seed.evaluation.seed_accuracy
    plot_novelty(report.member_rows(), rows, seed_accuracy, output / NOVELTY_PLOT, title=title)
    curves = {g.label: g.curve.to_dict() for g in report.groups if g.curve is not None}
    if curves:
        plot_ensemble_size(curves, seed_accuracy, output / ENSEMBLE_PLOT, title=title)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Validate ``cfg``, evaluate the pools, write the tables and plots; return the stage's figures."""
    settings = eval_settings(cfg)
    columns = table_columns(cfg)
    report = evaluate_pools(settings)
    write_outputs(report, cfg, columns)
    return report.to_dict()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    with job(cfg):
        finished_or_run(cfg, lambda: {"eval": evaluate(cfg)})
        name = typed(cfg.table, "name", str, "pools")
        print((Path(cfg.paths.output_dir) / f"{name}.md").read_text(), end="")
        print(f"run folder: {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
