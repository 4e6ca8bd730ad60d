"""``mge-attack``: adversarial transfer and the pool as a defence (table T5), for labelled pools.

Writes ``metrics.json`` (under ``attack``), ``t5.md`` / ``t5.csv`` (one row per eps and pool),
``attacks.csv`` (every defence and attack), ``robust_accuracy.png`` and ``transfer_matrices.png``
into the run folder; see ``conf/attack.yaml``.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from mge.adversarial import plot_robust_accuracy, plot_transfer_matrices
from mge.cli.config import CONF_DIR, ConfigError, finished_or_run, job, require, to_plain
from mge.cli.loggers import close_stage, stage_loggers
from mge.reporting import markdown_table, write_csv, write_table
from mge.runs import AdversarialRunReport, AdversarialRunSettings, attack_pools

POOLS_HINT = "give labelled pool folders, e.g. pools.MGE=<mge-generate run>/pool pools.noise=<pool folder>."
LABELS = ("eps", "pool", "members")  # the printed columns that say which row it is
# The columns mge-attack prints (all of them are in t5.md): accuracies on the attacked examples.
PRINTED = {
    "eps": "eps",
    "pool": "pool",
    "members": "members",
    "seed_white_box": "seed, white-box PGD",
    "member_transfer_pgd": "members, seed's PGD",
    "matrix_off_diagonal": "member to member",
    "vote_transfer": "vote, seed's PGD",
    "vote_worst_case": "vote, worst case",
    "random_transfer": "random member, seed's PGD",
    "random_worst_case": "random member, worst case",
}


def attack_settings(cfg: DictConfig) -> AdversarialRunSettings:
    """The typed settings of ``cfg`` (its top-level keys are the settings' fields; messages name them)."""
    values = {f.name: to_plain(cfg[f.name]) for f in fields(AdversarialRunSettings) if f.name in cfg}
    try:
        return AdversarialRunSettings(**values)
    except ValueError as err:
        raise ConfigError(str(err)) from err


def pool_paths(cfg: DictConfig) -> dict[str, str]:
    """``pools`` as label -> folder, in the given order; null entries are left out."""
    pools = to_plain(require(cfg, "pools", POOLS_HINT))
    if not isinstance(pools, dict):
        raise ConfigError(f"pools must map labels to pool folders, got {pools!r}; {POOLS_HINT}")
    paths = {}
    for label, path in pools.items():
        if path is None:
            continue
        if not isinstance(path, str):
            raise ConfigError(f"pools.{label} must be a pool folder (a path), got {path!r}.")
        paths[str(label)] = path
    if not paths:
        raise ConfigError(f"pools is empty: {POOLS_HINT}")
    return paths


def attack(cfg: DictConfig) -> AdversarialRunReport:
    """Validate ``cfg``, run :func:`mge.runs.attack_pools`, write the tables and figures, log the stage."""
    paths, settings = pool_paths(cfg), attack_settings(cfg)
    loggers = stage_loggers(cfg, "attack")
    report = attack_pools(paths, settings)
    output = Path(cfg.paths.output_dir)
    table = report.table()
    files = [
        *write_table(table, output, "t5"),
        write_csv(report.adversarial.rows(), output / "attacks.csv"),
        plot_robust_accuracy(report.adversarial, output / "robust_accuracy.png"),
        plot_transfer_matrices(report.adversarial, output / "transfer_matrices.png"),
    ]
    steps = {eps: i for i, eps in enumerate(report.adversarial.settings.eps)}  # one logging step per eps
    for row in table:
        values = {f"attack/{row['pool']}/{k}": row[k] for k in PRINTED if k not in LABELS and row[k] is not None}
        for logger in loggers:
            logger.log_metrics(values, step=steps[row["eps"]])
    figures = {f"{row['pool']}/eps={row['eps']:g}": {k: row[k] for k in PRINTED if k not in LABELS} for row in table}
    close_stage(loggers, "attack", figures, files=files)
    return report


def summary_table(metrics: dict[str, Any]) -> str:
    """What ``mge-attack`` prints, from its ``metrics.json``: the main T5 figures per eps and pool."""
    rows = [[row[key] for key in PRINTED] for row in metrics["table"]]
    return markdown_table(list(PRINTED.values()), rows)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="attack")
def main(cfg: DictConfig) -> None:
    with job(cfg):
        metrics = finished_or_run(cfg, lambda: {"attack": attack(cfg).to_dict()})["attack"]
        print(
            f"{metrics['dataset']}: {metrics['examples']} test examples that the seed and every evaluated member "
            f"classify correctly ({metrics['agreeing']} of {metrics['scanned']} checked); accuracies under attack:"
        )
        print(summary_table(metrics))
        print(f"run folder: {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
