"""``mge-evolve``: E-MGE, from an MGE pool (``pool=``) or a seed (``seed_model=``) to a population of E-MGE seeds.

Writes ``population/`` (the final population), ``history/`` (every member that joined it, with
lineage), ``history.json``, ``history.png`` and ``metrics.json`` into the run folder; see
``conf/evolve.yaml`` and :mod:`mge.runs.evolve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig
from tqdm.auto import tqdm

from mge.cli.config import CONF_DIR, ConfigError, finished_or_run, in_multirun, job, settings_from_config, typed
from mge.cli.generate import generate_settings
from mge.cli.loggers import close_stage, stage_loggers
from mge.discriminator import DiscriminatorSettings
from mge.evolution import EvolutionSettings
from mge.pool.files import atomic_write_json
from mge.reporting import markdown_table, plot_history
from mge.runs import EvolveReport, EvolveSettings, FromPool, FromSeed, evolve_population
from mge.runs.evolve import GenerationCallback

SOURCE_HINT = "give pool=<an MGE pool folder> (mge-generate's <run>/pool) or seed_model=<an mge-train run folder>."


def evolve_settings(cfg: DictConfig) -> EvolveSettings:
    """The typed settings of ``cfg``'s evolution stage, each value checked against its config key."""
    evolution = settings_from_config(EvolutionSettings, cfg.evolution, "evolution")
    discriminator = settings_from_config(DiscriminatorSettings, cfg.discriminator, "discriminator")
    try:
        return EvolveSettings(
            evolution=evolution,
            discriminator=discriminator,
            seed=typed(cfg, "seed", int),
            population_dir=Path(typed(cfg, "population_dir", str)),
            history_dir=Path(typed(cfg, "history_dir", str)),
            granularity=typed(cfg, "granularity", str),
            holdout=typed(cfg, "holdout", int, 0),
            evaluate_test=typed(cfg, "evaluate_test", bool, True),
            device=typed(cfg, "device", str),
            data_root=typed(cfg, "data_root", str),
            time_probe_steps=typed(cfg, "time_probe_steps", int, 3),
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err


def evolve_source(cfg: DictConfig) -> FromPool | FromSeed:
    """``pool=`` or ``seed_model=`` (exactly one), as the run layer's source."""
    pool, seed_model = cfg.get("pool"), cfg.get("seed_model")
    if (pool is None) == (seed_model is None):
        given = "both were given" if pool is not None else "neither was given"
        raise ConfigError(f"mge-evolve starts from one source, but {given}: {SOURCE_HINT}")
    if pool is not None:
        return FromPool(Path(typed(cfg, "pool", str)))
    return FromSeed(Path(typed(cfg, "seed_model", str)), generate_settings(cfg))


def generation_reporter(cfg: DictConfig, generations: int, loggers: list[Logger]) -> tuple[GenerationCallback, tqdm]:
    """A callback that moves a progress bar per generation (stderr; off in multirun jobs) and logs to the loggers."""
    bar = tqdm(total=generations, desc="E-MGE", unit="generation", disable=not cfg.progress or in_multirun())

    def on_generation(entry: dict[str, Any]) -> None:
        figures = {f"evolve/{k}": v for k, v in entry.items() if isinstance(v, int | float) and v is not None}
        for logger in loggers:
            logger.log_metrics(figures, step=entry["generation"])
        bar.n = entry["generation"]
        bar.set_postfix(acc=f"{entry['mean_accuracy']:.4f}", div=f"{entry['diversity']:.4f}")
        bar.refresh()

    return on_generation, bar


def write_history(report: EvolveReport, output: Path) -> None:
    """``history.json`` (one entry per generation, 0 = the initial population) and ``history.png``."""
    atomic_write_json({"history": report.history}, output / "history.json")
    title = f"E-MGE on {report.dataset or 'its dataset'} ({report.model})"
    plot_history(report.history, title=title).savefig(output / "history.png", dpi=120)


def evolve(cfg: DictConfig, source: FromPool | FromSeed | None = None) -> EvolveReport:
    """Validate ``cfg``, run :func:`mge.runs.evolve_population` with a progress bar and loggers, write its files."""
    settings = evolve_settings(cfg)
    source = source if source is not None else evolve_source(cfg)
    loggers = stage_loggers(cfg, "evolve")
    on_generation, bar = generation_reporter(cfg, settings.evolution.generations, loggers)
    try:
        report = evolve_population(settings, source, on_generation=on_generation)
    finally:
        bar.close()
    output = Path(cfg.paths.output_dir)
    write_history(report, output)
    close_stage(loggers, "evolve", report.to_dict(), files=[output / "history.json", output / "history.png"])
    return report


def _fraction(value: Any, digits: int = 4) -> Any:
    return "n/a" if value is None else round(value, digits)


def summary_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """The E-MGE rows of the table ``mge`` and ``mge-evolve`` print, from an evolution's ``metrics.json``."""
    test, ensemble = metrics["test"] or {}, metrics["test_ensemble"] or {}
    acc, iou = test.get("accuracy") or {}, test.get("mistake_iou") or {}
    ratio = metrics["time_ratio"]
    return [
        ["E-MGE population (generations)", f"{metrics['population_size']} ({metrics['generations']})"],
        ["E-MGE children accepted / drawn", f"{metrics['accepted']} / {metrics['candidates']}"],
        ["E-MGE forward passes", metrics["forward_passes"]],
        ["E-MGE test accuracy mean", acc.get("mean", "n/a")],
        ["E-MGE test accuracy min / max", f"{acc['min']:.4f} / {acc['max']:.4f}" if acc else "n/a"],
        ["E-MGE mistake IoU with the seed, mean (lower = more novel)", iou.get("mean", "n/a")],
        ["E-MGE pairwise disagreement", _fraction(test.get("pairwise_disagreement"), 6)],
        ["E-MGE soft-vote ensemble test accuracy", ensemble.get("soft_vote_accuracy", "n/a")],
        ["E-MGE seconds", round(metrics["stage_seconds"], 2)],
        ["E-MGE ratio to one seed training (timed in this run)", "n/a" if ratio is None else f"{100 * ratio:.2f}%"],
    ]


def summary_table(metrics: dict[str, Any]) -> str:
    """The table ``mge-evolve`` prints."""
    seed_accuracy = (metrics["test"] or {}).get("seed_accuracy", "n/a")
    return markdown_table(["metric", "value"], [["seed test accuracy", seed_accuracy], *summary_rows(metrics)])


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evolve")
def main(cfg: DictConfig) -> None:
    with job(cfg):
        metrics = finished_or_run(cfg, lambda: {"evolve": evolve(cfg).to_dict()})
        print(summary_table(metrics["evolve"]))
        print(f"run folder: {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
