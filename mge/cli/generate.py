"""``mge-generate``: from a trained seed to a pool of N accepted models, without training.

Writes ``pool/`` and ``metrics.json`` into the run folder; see ``conf/generate.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from mge.cli.config import (
    CONF_DIR,
    ConfigError,
    build_loggers,
    call_with_config,
    job,
    log,
    settings_from_config,
    to_plain,
    write_metrics,
)
from mge.data import build_datamodule
from mge.discriminator import Discriminator, DiscriminatorSettings
from mge.evaluation.pool_eval import evaluate_pool
from mge.generator import GeneratorSettings, LatentSampler, generate, select_targets, settings_dict
from mge.latent import LatentCodec
from mge.pool import PoolWriter, SeedModel, load_seed, resolve_seed_path
from mge.pool.files import file_hash
from mge.reporting import markdown_table

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise ConfigError(f"Unknown device {name!r}. Valid values are {list(DEVICES)}.")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is visible; use device=auto or device=cpu.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_datamodule(seed: SeedModel, data_root: str | None) -> Any:
    """The seed's dataset with the seed's own splits (so the discriminator split stays held out)."""
    data = dict(seed.meta.get("data") or {})
    if not data:
        raise ConfigError("The seed's metadata does not name its dataset; it was not saved by mge-train.")
    if data_root is not None:
        data["root"] = data_root
    data["download"] = False  # the seed was trained on these files: they are there or moved
    return call_with_config(build_datamodule, data, "seed data")


def generate_pool(cfg: DictConfig, seed_path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Generate, discriminate, store and evaluate a pool; return ``(metrics, objects)``."""
    gen = settings_from_config(GeneratorSettings, cfg.generator, "generator")
    disc_settings = settings_from_config(DiscriminatorSettings, cfg.discriminator, "discriminator")
    device = resolve_device(cfg.device)
    seed = load_seed(seed_path, allow_pickle=cfg.get("allow_pickle", False))

    datamodule = seed_datamodule(seed, cfg.get("data_root"))
    datamodule.setup("fit")
    x_disc, y_disc = (t.to(device) for t in datamodule.split_tensors("discriminator"))
    x_test, y_test = datamodule.split_tensors("test")

    model = seed.build().to(device)
    targets = select_targets(model, gen.include, gen.exclude)
    seed_targets = {k: seed.state_dict[k].to(device) for k in targets}
    sampler = LatentSampler(seed_targets, LatentCodec(gen.granularity), zero_mean=gen.zero_mean)  # type: ignore[arg-type]
    discriminator = Discriminator(model, seed_targets, x_disc, y_disc, disc_settings)

    seed_file = resolve_seed_path(seed_path)
    writer = PoolWriter(
        cfg.pool_dir,
        seed,
        targets,
        config={"seed": cfg.seed, "generator": settings_dict(gen), "discriminator": to_plain(cfg.discriminator)},
        seed_reference={"path": str(seed_file.resolve()), "sha256": file_hash(seed_file), "meta": seed.meta},
    )
    if writer.resumed:
        log.info("resuming pool %s at %d/%d members", cfg.pool_dir, len(writer.members), gen.n_models)
    loggers = build_loggers(cfg)

    def log_round(round_log: dict) -> None:
        for logger in loggers:
            logger.log_metrics({f"generate/{k}": v for k, v in round_log.items()}, step=round_log["round"])

    result = generate(sampler, discriminator, writer, gen, rng_seed=cfg.seed, on_round=log_round, progress=cfg.progress)
    if result.accepted == 0:
        log.warning(
            "budget spent: no candidate accepted in %d rounds, the pool is empty; raise generator.threshold "
            "or generator.max_rounds, or loosen the discriminator",
            len(result.rounds),
        )
    elif result.accepted < gen.n_models:
        log.warning(
            "budget spent: %d of %d models accepted in %d rounds; raise generator.max_rounds or loosen "
            "the discriminator",
            result.accepted,
            gen.n_models,
            len(result.rounds),
        )
    pool = writer.finish({"accepted": result.accepted, "candidates": result.candidates})
    evaluation = evaluate_pool(
        pool,
        x_test,
        y_test,
        device=device,
        batch_size=disc_settings.eval_batch_size,
        models_per_chunk=disc_settings.models_per_chunk,
    )
    seed_train_seconds = seed.meta.get("train_seconds")
    metrics = {
        "dataset": seed.meta.get("dataset"),
        "model": seed.meta.get("model"),
        "pool_dir": str(Path(cfg.pool_dir).resolve()),
        "pool_hash": pool.pool_hash(),
        "n_accepted": result.accepted,
        "n_candidates": result.candidates,
        "acceptance_rate": result.acceptance_rate,
        "acceptance_rate_per_round": [r["acceptance_rate"] for r in result.rounds],
        "final_threshold": result.final_threshold,
        "final_alpha": result.final_alpha,
        "seed_discriminator_accuracy": discriminator.seed_accuracy,
        "test": evaluation.summary(),
        "generation_seconds": result.generation_seconds,
        "discriminator_seconds": result.discriminator_seconds,
        "seconds_per_accepted_model": result.seconds_per_accepted,
        "seed_train_seconds": seed_train_seconds,
        "time_ratio_per_model": (
            result.seconds_per_accepted / seed_train_seconds if seed_train_seconds and result.accepted else None
        ),
        "device": str(device),
        "rounds": result.rounds,
    }
    pool_metrics: dict[str, float | None] = {"pool/acceptance_rate": result.acceptance_rate}
    if result.accepted:
        pool_metrics |= {
            "pool/test_acc_mean": evaluation.accuracies.mean().item(),
            "pool/novelty_mean": evaluation.novelty.mean().item(),
            "pool/seconds_per_model": result.seconds_per_accepted,
        }
    for logger in loggers:
        logger.log_metrics(pool_metrics, step=len(result.rounds))
        logger.save()
    return metrics, {"pool": pool, "evaluation": evaluation, "result": result, "seed": seed}


def pool_mean_accuracy(metrics: dict[str, Any]) -> float:
    """What a sweeper optimises: the pool's mean test accuracy.

    NaN for an empty pool: an optimising sweeper (e.g. Optuna) records that trial as failed.
    """
    accuracy = metrics["test"]["accuracy"]
    return float("nan") if accuracy is None else accuracy["mean"]


def _or_na(value: Any) -> Any:
    return "n/a" if value is None else value


def summary_table(metrics: dict[str, Any]) -> str:
    """The table ``mge`` and ``mge-generate`` print."""
    test = metrics["test"]
    acc, novelty = test["accuracy"] or {}, test["novelty"] or {}
    ratio = metrics["time_ratio_per_model"]
    rows = [
        ["seed test accuracy", test["seed_accuracy"]],
        ["pool size (accepted / candidates)", f"{metrics['n_accepted']} / {metrics['n_candidates']}"],
        ["pool accuracy mean", acc.get("mean", "n/a")],
        ["pool accuracy median", acc.get("median", "n/a")],
        ["pool accuracy min / max", f"{acc['min']:.4f} / {acc['max']:.4f}" if acc else "n/a"],
        ["novelty (mistake IoU with seed), mean", novelty.get("mean", "n/a")],
        ["pairwise disagreement", _or_na(test["pairwise_disagreement"])],
        ["acceptance rate", metrics["acceptance_rate"]],
        ["final threshold t", metrics["final_threshold"]],
        ["seconds per accepted model", _or_na(metrics["seconds_per_accepted_model"])],
        ["ratio to one seed training", "n/a" if ratio is None else f"{100 * ratio:.3f}%"],
    ]
    return markdown_table(["metric", "value"], rows)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="generate")
def main(cfg: DictConfig) -> float:
    with job(cfg):
        metrics, _ = generate_pool(cfg, cfg.seed_model)
        write_metrics(metrics, cfg.paths.output_dir)
        print(summary_table(metrics))
        return pool_mean_accuracy(metrics)


if __name__ == "__main__":
    main()
