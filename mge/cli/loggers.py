"""Loggers per stage: CSV by default, Weights & Biases with ``logger=wandb`` (offline unless told otherwise).

Every stage of a job (train, generate, evolve, ...) logs on its own: CSV into
``<run>/csv/<stage>/metrics.csv``, and with wandb as a run of its own named
``<task>-<stage>-s<seed>``, of job type ``<stage>``, grouped with the other stages and jobs of the same
sweep (or run folder) and tagged with the table (the task) it belongs to. When a stage ends, its
figures go into the run's summary and the files it wrote (tables, plots) into an artifact, and the
wandb run is finished, so that no two stages or multirun jobs ever share one (LHT #289).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from mge.errors import ConfigError


def run_group(cfg: DictConfig) -> str:
    """The wandb group of a job: its sweep (every job of a multirun together), else its run folder."""
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        folder = (
            hydra_cfg.sweep.dir
            if hydra_cfg.mode is not None and hydra_cfg.mode.name == "MULTIRUN"
            else hydra_cfg.run.dir
        )
        return f"{cfg.get('task_name', 'mge')}-{Path(str(folder)).name}"
    return f"{cfg.get('task_name', 'mge')}-{Path(str(cfg.paths.output_dir)).name}"


def stage_loggers(cfg: DictConfig, stage: str) -> list[Logger]:
    """The loggers of ``logger`` (empty for logger=none), set up for one stage of this job."""
    loggers: list[Logger] = []
    for name, node in (cfg.get("logger") or {}).items():
        if not OmegaConf.is_dict(node) or "_target_" not in node:
            raise ConfigError(f"logger.{name} needs a _target_ (see conf/logger/).")
        target = str(node["_target_"])
        overrides: dict[str, Any] = {}
        if target.endswith("CSVLogger"):
            overrides = {"version": stage}
        elif target.endswith("WandbLogger"):
            task = cfg.get("task_name", "mge")
            overrides = {
                "name": f"{task}-{stage}-s{cfg.get('seed', 0)}",
                "job_type": stage,
                "group": run_group(cfg),
                "tags": [str(task)],
            }
        loggers.append(instantiate(node, **overrides))
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    return loggers


def _flatten(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}/")
        elif isinstance(value, (int, float, str, bool)) or value is None:
            yield f"{prefix}{key}", value


def close_stage(
    loggers: Sequence[Logger], stage: str, summary: Mapping[str, Any] | None = None, files: Sequence[Path] = ()
) -> None:
    """End a stage's logging: its figures as the wandb summary, its files as an artifact, the run finished."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            run = logger.experiment
            if summary:
                run.summary.update(dict(_flatten(summary)))
            existing = [Path(f) for f in files if Path(f).is_file()]
            if existing:
                artifact = wandb.Artifact(f"{run.name}".replace("/", "-"), type=stage)
                for path in existing:
                    artifact.add_file(str(path))
                run.log_artifact(artifact)
            wandb.finish()
        elif isinstance(logger, CSVLogger):
            logger.save()


def log_sweep_report(config: DictConfig, name: str, rows: Sequence[Mapping[str, Any]], files: Sequence[Path]) -> None:
    """With ``logger=wandb``, a sweep's table and plot as one more run of the sweep's group (job type "report")."""
    node = (config.get("logger") or {}).get("wandb")
    if node is None:
        return
    import wandb

    sweep_dir = Path(str(config.hydra.sweep.dir))
    task = str(config.get("task_name", "mge"))
    run = wandb.init(
        project=node.get("project", "mge"),
        dir=str(sweep_dir),
        mode="offline" if node.get("offline", True) else "online",
        name=f"{name}-report",
        group=f"{task}-{sweep_dir.name}",
        job_type="report",
        tags=[task],
        config={"table": name, "sweep_dir": str(sweep_dir)},
    )
    if rows:
        names = list(rows[0])
        table = wandb.Table(columns=list[str | int](names), data=[[row.get(c) for c in names] for row in rows])
        run.log({name: table})
    artifact = wandb.Artifact(f"{name}-report", type="table")
    for path in files:
        artifact.add_file(str(path))
    run.log_artifact(artifact)
    run.finish()
