"""``mge-fewshot``: few-shot transfer of labelled pools to classes their seed never saw (table T4).

Writes ``metrics.json``, ``fewshot.csv`` (one row per head and compared model) and ``fewshot.png``
(bars with 95% CI whiskers, one panel per head) into the run folder; see ``conf/fewshot.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from mge.cli.config import CONF_DIR, ConfigError, job, settings_from_config, to_plain, typed, write_metrics
from mge.reporting import markdown_table, write_csv
from mge.runs import FewShotRunReport, FewShotRunSettings, run_fewshot

POOLS_HINT = "give at least one pool folder, e.g. pools.MGE=<mge-generate run>/pool (other labels: +pools.<label>=...)."


def pool_dirs(cfg: DictConfig) -> dict[str, str]:
    """The labelled pool folders of ``cfg.pools`` in order, null entries left out."""
    node = cfg.get("pools")
    if node is None or not OmegaConf.is_dict(node):
        raise ConfigError(f"pools must be a mapping of labels to pool folders; {POOLS_HINT}")
    pools = {}
    for label, path in (to_plain(node) or {}).items():
        if path is None:
            continue
        if not isinstance(path, str) or not path:
            raise ConfigError(f"pools.{label} must be a pool folder, got {path!r}.")
        pools[str(label)] = path
    if not pools:
        raise ConfigError(f"pools: no pool given; {POOLS_HINT}")
    return pools


def fewshot(cfg: DictConfig) -> FewShotRunReport:
    """Validate ``cfg``, run :func:`mge.runs.run_fewshot`, write the run's files."""
    settings = settings_from_config(FewShotRunSettings, cfg.fewshot, "fewshot")
    report = run_fewshot(
        settings,
        pool_dirs(cfg),
        seed_pool=typed(cfg, "seed_pool", str),
        data_root=typed(cfg, "data_root", str),
        device=typed(cfg, "device", str),
    )
    output = Path(cfg.paths.output_dir)
    write_metrics(report.to_dict(), output)
    write_csv(report.rows(), output / "fewshot.csv")
    report.plot().savefig(output / "fewshot.png", dpi=120)
    return report


def summary_table(report: FewShotRunReport) -> str:
    """The table ``mge-fewshot`` prints: accuracy and 95% CI in percent, a column pair per head."""
    heads = list(report.reports)
    names = [g.name for g in report.reports[heads[0]].groups]
    cells = {(r["head"], r["model"]): r for r in report.rows()}
    rows = []
    for name in names:
        first = cells[(heads[0], name)]
        row: list[object] = [name, first["members"]]
        for head in heads:
            cell = cells[(head, name)]
            row.append(f"{100 * cell['accuracy']:.2f} +- {100 * cell['ci95']:.2f}")
        rows.append(row)
    s = report.settings
    title = f"{report.dataset}: {s.n_way}-way {s.k_shot}-shot, {s.n_episodes} episodes, accuracy (%) and 95% CI"
    return title + "\n" + markdown_table(["model", "members", *heads], rows)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="fewshot")
def main(cfg: DictConfig) -> float:
    with job(cfg):
        report = fewshot(cfg)
        print(summary_table(report))
        print(f"run folder: {cfg.paths.output_dir}")
        return next(iter(report.reports.values())).groups[1].mean  # the seed's accuracy, for a sweeper


if __name__ == "__main__":
    main()
