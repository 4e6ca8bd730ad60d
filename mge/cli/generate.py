"""``mge-generate``: from a trained seed to a pool of N accepted models, without training.

Writes ``pool/``, ``metrics.json`` and ``members.csv`` into the run folder; see ``conf/generate.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig
from tqdm.auto import tqdm

from mge.cli.config import (
    CONF_DIR,
    ConfigError,
    finished_or_run,
    in_multirun,
    job,
    require,
    settings_from_config,
    typed,
)
from mge.cli.loggers import close_stage, stage_loggers
from mge.cli.objective import Objective
from mge.discriminator import DiscriminatorSettings
from mge.generator import GeneratorSettings, RoundCallback
from mge.reporting import markdown_table, write_csv
from mge.runs import GenerateReport, GenerateSettings, generate_pool

SEED_MODEL_HINT = "point seed_model= at an mge-train run folder or a seed .safetensors file."


def generate_settings(cfg: DictConfig) -> GenerateSettings:
    """The typed settings of ``cfg``'s generation stage, each value checked against its config key."""
    generator = settings_from_config(GeneratorSettings, cfg.generator, "generator")
    discriminator = settings_from_config(DiscriminatorSettings, cfg.discriminator, "discriminator")
    try:
        return GenerateSettings(
            generator=generator,
            discriminator=discriminator,
            seed=typed(cfg, "seed", int),
            pool_dir=Path(typed(cfg, "pool_dir", str)),
            device=typed(cfg, "device", str),
            data_root=typed(cfg, "data_root", str),
            allow_pickle=typed(cfg, "allow_pickle", bool, False),
            time_probe_steps=typed(cfg, "time_probe_steps", int, 3),
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err


def round_reporter(cfg: DictConfig, n_models: int, loggers: list[Logger]) -> tuple[RoundCallback, tqdm]:
    """A round callback that moves a progress bar (stderr; off in multirun jobs) and logs to the loggers."""
    bar = tqdm(total=n_models, desc="MGE", unit="model", disable=not cfg.progress or in_multirun())

    def on_round(entry: dict[str, Any]) -> None:
        for logger in loggers:
            logger.log_metrics({f"generate/{k}": v for k, v in entry.items()}, step=entry["round"])
        bar.n = entry["total_kept"]
        bar.set_postfix(rate=f"{entry['acceptance_rate']:.2f}", t=f"{entry['threshold']:.4f}")
        bar.refresh()

    return on_round, bar


def log_pool(loggers: list[Logger], report: GenerateReport) -> None:
    """The pool's summary figures to the loggers."""
    test = None if report.evaluation is None else report.evaluation.summary()
    figures: dict[str, float] = {"pool/acceptance_rate": report.state.acceptance_rate}
    if test is not None and test["accuracy"] is not None and report.state.seconds_per_kept is not None:
        figures |= {
            "pool/test_acc_mean": test["accuracy"]["mean"],
            "pool/mistake_iou_mean": test["mistake_iou"]["mean"],
            "pool/seconds_per_model": report.state.seconds_per_kept,
        }
    for logger in loggers:
        logger.log_metrics(figures, step=report.state.rounds)


def generate(cfg: DictConfig, seed_model: str | Path | None = None) -> GenerateReport:
    """Validate ``cfg``, run :func:`mge.runs.generate_pool` with a progress bar and loggers, write the run's files."""
    settings = generate_settings(cfg)
    seed_model = seed_model if seed_model is not None else require(cfg, "seed_model", SEED_MODEL_HINT)
    loggers = stage_loggers(cfg, "generate")
    on_round, bar = round_reporter(cfg, settings.generator.n_models, loggers)
    try:
        report = generate_pool(settings, seed_model, on_round=on_round)
    finally:
        bar.close()
    log_pool(loggers, report)
    if report.evaluation is None:  # the command line always evaluates; GenerateSettings.evaluate_test=False skips it
        close_stage(loggers, "generate", report.to_dict())
        return report
    lineage = {r.id: r for r in report.pool.records}
    members = write_csv(
        [
            {**row, "round": lineage[row["member"]].generation, "threshold": lineage[row["member"]].threshold}
            for row in report.evaluation.rows()
        ],
        Path(cfg.paths.output_dir) / "members.csv",
    )
    close_stage(loggers, "generate", report.to_dict(), files=[members])
    return report


def _or_na(value: Any) -> Any:
    return "n/a" if value is None else value


def summary_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    """The rows of the table ``mge`` and ``mge-generate`` print, from a generation's ``metrics.json``."""
    no_test: dict[str, Any] = {"seed_accuracy": "n/a", "accuracy": None, "mistake_iou": None}
    test: dict[str, Any] = metrics["test"] or {**no_test, "pairwise_disagreement": None}  # None: not evaluated
    acc, iou = test["accuracy"] or {}, test["mistake_iou"] or {}
    ratio = metrics["time_ratio_per_model"]
    rejected = metrics["rejected"]
    rows = [
        ["seed test accuracy", test["seed_accuracy"]],
        ["candidates / passed the discriminator / kept", f"{metrics['n_candidates']} / {metrics['n_passed']} / "
         f"{metrics['n_kept']}"],
        ["rejected: non-finite / distribution / spectral / accuracy",
         f"{rejected['non_finite']} / {rejected['distribution']} / {rejected['spectral']} / {rejected['accuracy']}"],
        ["pool test accuracy mean", acc.get("mean", "n/a")],
        ["pool test accuracy median", acc.get("median", "n/a")],
        ["pool test accuracy min / max", f"{acc['min']:.4f} / {acc['max']:.4f}" if acc else "n/a"],
        ["mistake IoU with the seed, mean (lower = more novel)", iou.get("mean", "n/a")],
        ["pairwise disagreement", _or_na(test["pairwise_disagreement"])],
        ["acceptance rate", metrics["acceptance_rate"]],
        ["threshold t of the last round", _or_na(metrics["last_threshold"])],
        ["seconds per kept model", _or_na(metrics["seconds_per_kept_model"])],
        ["ratio to one seed training (timed in this run)", "n/a" if ratio is None else f"{100 * ratio:.3f}%"],
    ]  # fmt: skip
    return rows


def summary_table(metrics: dict[str, Any]) -> str:
    """The table ``mge-generate`` prints, from its ``metrics.json``."""
    return markdown_table(["metric", "value"], summary_rows(metrics))


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="generate")
def main(cfg: DictConfig) -> float | None:
    with job(cfg):
        objective = settings_from_config(Objective, cfg.get("objective"), "objective")
        metrics = finished_or_run(cfg, lambda: {"generate": generate(cfg).to_dict()})  # the layout mge writes too
        print(summary_table(metrics["generate"]))
        print(f"run folder: {cfg.paths.output_dir}")
        return objective(metrics)


if __name__ == "__main__":
    main()
