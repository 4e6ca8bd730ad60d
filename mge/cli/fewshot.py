"""``mge-fewshot``: few-shot transfer of labelled pools to classes their seed never saw (table T4).

Writes ``metrics.json`` (under the stage key ``fewshot``), ``fewshot.csv`` (one row per head and
compared model) and ``fewshot.png`` (bars with 95% CI whiskers, one panel per head) into the run
folder; see ``conf/fewshot.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from mge.cli.config import CONF_DIR, ConfigError, finished_or_run, job, settings_from_config, to_plain, typed
from mge.cli.loggers import close_stage, stage_loggers
from mge.reporting import markdown_table, write_csv
from mge.runs import FewShotRunReport, FewShotRunSettings, run_fewshot

STAGE = "fewshot"
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
    """Validate ``cfg``, run :func:`mge.runs.run_fewshot`, write the CSV and the plot, log the stage."""
    settings = settings_from_config(FewShotRunSettings, cfg.fewshot, "fewshot")
    pools = pool_dirs(cfg)
    loggers = stage_loggers(cfg, STAGE)
    report = run_fewshot(
        settings,
        pools,
        seed_pool=typed(cfg, "seed_pool", str),
        data_root=typed(cfg, "data_root", str),
        device=typed(cfg, "device", str),
    )
    output = Path(cfg.paths.output_dir)
    table = write_csv(report.rows(), output / "fewshot.csv")
    plot = output / "fewshot.png"
    report.plot().savefig(plot, dpi=120)
    for logger in loggers:
        logger.log_metrics({f"{STAGE}/{r['head']}/{r['model']}": r["accuracy"] for r in report.rows()}, step=0)
    close_stage(loggers, STAGE, {"accuracy": report.to_dict()["accuracy"]}, files=[table, plot])
    return report


def summary_table(metrics: dict[str, Any]) -> str:
    """The table ``mge-fewshot`` prints from its ``metrics.json`` stage: accuracy and 95% CI in percent per head."""
    rows, s = metrics["rows"], metrics["settings"]
    heads = list(dict.fromkeys(r["head"] for r in rows))
    cells = {(r["head"], r["model"]): r for r in rows}
    table = []
    for name in dict.fromkeys(r["model"] for r in rows):
        first = cells[(heads[0], name)]
        table.append(
            [name, first["members"]]
            + [f"{100 * cells[(h, name)]['accuracy']:.2f} +- {100 * cells[(h, name)]['ci95']:.2f}" for h in heads]
        )
    title = (
        f"{metrics['dataset']}: {s['n_way']}-way {s['k_shot']}-shot, {s['n_episodes']} episodes, {s['features']} "
        "features, accuracy (%) and 95% CI"
    )
    return title + "\n" + markdown_table(["model", "members", *heads], table)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="fewshot")
def main(cfg: DictConfig) -> None:
    with job(cfg):
        metrics = finished_or_run(cfg, lambda: {STAGE: fewshot(cfg).to_dict()})
        print(summary_table(metrics[STAGE]))
        print(f"run folder: {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
