"""The MGE stage: from a trained seed to a pool of accepted models, evaluated on the test set."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from mge.data import ClassificationDataModule, build_datamodule
from mge.discriminator import Discriminator, DiscriminatorSettings
from mge.errors import CheckpointError
from mge.evaluation.pool_eval import PoolEvaluation, evaluate_pool
from mge.generator import GenerationState, GeneratorSettings, LatentSampler, RoundCallback, generate, select_targets
from mge.latent import LatentCodec
from mge.pool import SEED_BASE, Pool, PoolWriter, SeedModel, load_seed, resolve_seed_path
from mge.pool.files import file_hash
from mge.runs.device import resolve_device
from mge.runs.timing import TrainingStepTimer, TrainingTimeReference

log = logging.getLogger("mge")


@dataclass(frozen=True)
class GenerateSettings:
    """Everything :func:`generate_pool` needs besides the seed."""

    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    discriminator: DiscriminatorSettings = field(default_factory=DiscriminatorSettings)
    seed: int = 0  # fixes the candidate noise: the same seed and settings give the same pool hash
    pool_dir: Path = Path("pool")  # an unfinished pool made with the same settings is resumed
    device: str = "auto"  # auto | cpu | cuda
    data_root: str | None = None  # where the seed's dataset lives; None: where it was trained
    allow_pickle: bool = False  # accept a Lightning .ckpt as the seed (unpickling: only your own files)
    time_probe_steps: int = 3  # training steps timed after each round for the time reference (mge.runs.timing)
    evaluate_test: bool = True  # score the members on the test and discriminator splits (off: time generation alone)

    def __post_init__(self) -> None:
        resolve_device(self.device)
        if self.time_probe_steps < 1:
            raise ValueError(f"time_probe_steps must be >= 1, got {self.time_probe_steps}.")

    def pool_config(self) -> dict[str, Any]:
        """What decides the pool's members; a pool is resumed only under the same."""
        return {"seed": self.seed, "generator": self.generator.to_json(), "discriminator": asdict(self.discriminator)}


@dataclass
class GenerateReport:
    """What a generation run produced; :meth:`to_dict` is its ``metrics.json``."""

    dataset: str | None
    model: str
    seed_model: dict[str, Any]  # which seed: its file, training seed, config hash and test accuracy
    pool_dir: Path
    pool_hash: str
    state: GenerationState
    rounds: list[dict[str, Any]]
    seed_discriminator_accuracy: float
    discriminator_accuracy_bound: float | None  # None: no performance test
    evaluation: PoolEvaluation | None  # on the test set: what is reported; None when settings.evaluate_test is off
    selection_evaluation: PoolEvaluation | None  # on the discriminator split: what a search may optimise
    time_reference: TrainingTimeReference | None
    seed_recorded_train_seconds: float | None
    device: str
    pool: Pool = field(repr=False)

    @property
    def time_ratio_per_model(self) -> float | None:
        """Seconds per kept model over one seed training, both measured in this run."""
        per_model = self.state.seconds_per_kept
        if per_model is None or self.time_reference is None:
            return None
        return per_model / self.time_reference.seconds

    def to_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "dataset": self.dataset,
            "model": self.model,
            "seed_model": self.seed_model,
            "pool_dir": str(self.pool_dir.resolve()),
            "pool_hash": self.pool_hash,
            "n_candidates": s.candidates,
            "n_passed": s.passed,
            "n_kept": s.kept,
            "acceptance_rate": s.acceptance_rate,
            "rejected": {
                "non_finite": s.rejected_non_finite,
                "distribution": s.rejected_distribution,
                "spectral": s.rejected_spectral,
                "accuracy": s.rejected_accuracy,
            },
            "acceptance_rate_per_round": [r["acceptance_rate"] for r in self.rounds],
            "last_threshold": s.last_threshold,
            "last_alpha": s.last_alpha,
            "next_threshold": s.threshold,
            "next_alpha": s.alpha,
            "seed_discriminator_accuracy": self.seed_discriminator_accuracy,
            "discriminator_accuracy_bound": self.discriminator_accuracy_bound,
            "discriminator_examples_scored": s.examples_scored,
            "test": None if self.evaluation is None else self.evaluation.summary(),
            "discriminator_split": None if self.selection_evaluation is None else self.selection_evaluation.summary(),
            "generation_seconds": s.generation_seconds,
            "discriminator_seconds": s.discriminator_seconds,
            "seconds_per_kept_model": s.seconds_per_kept,
            "time_reference": None if self.time_reference is None else self.time_reference.to_dict(),
            "time_ratio_per_model": self.time_ratio_per_model,
            "seed_recorded_train_seconds": self.seed_recorded_train_seconds,
            "device": self.device,
            "rounds": self.rounds,
        }


def seed_datamodule(seed: SeedModel, data_root: str | None) -> ClassificationDataModule:
    """The seed's dataset with the seed's own splits (so the discriminator split stays held out)."""
    data = dict(seed.meta.get("data") or {})
    if not data:
        raise CheckpointError(
            "The seed's metadata does not name its dataset, so its discriminator split is unknown; "
            "use a seed written by mge-train."
        )
    if data_root is not None:
        data["root"] = data_root
    data["download"] = False  # the seed was trained on these files: they are there or moved
    return build_datamodule(**data)


def generate_pool(
    settings: GenerateSettings, seed_path: str | Path, *, on_round: RoundCallback | None = None
) -> GenerateReport:
    """Generate, discriminate, store and evaluate a pool (resuming an unfinished one in ``pool_dir``).

    Args:
        settings: generator, discriminator, seed, device and where the pool goes.
        seed_path: an mge-train run folder or a seed file.
        on_round: called with each round's log, after the round is checkpointed.
    """
    gen, disc = settings.generator, settings.discriminator
    device = resolve_device(settings.device)
    seed = load_seed(seed_path, allow_pickle=settings.allow_pickle)
    datamodule = seed_datamodule(seed, settings.data_root)
    datamodule.setup("fit")
    x_disc, y_disc = (t.to(device) for t in datamodule.split_tensors("discriminator"))
    x_test, y_test = datamodule.split_tensors("test")

    model = seed.build().to(device)
    targets = select_targets(model, gen.include, gen.exclude)
    seed_targets = {k: seed.state_dict[k].to(device) for k in targets}
    codec = LatentCodec(gen.granularity)  # type: ignore[arg-type]
    sampler = LatentSampler(seed_targets, codec, zero_mean=gen.zero_mean)
    discriminator = Discriminator(model, seed_targets, x_disc, y_disc, disc, codec=codec)

    # the time reference: training steps timed between rounds, under the rounds' own load
    epochs = seed.meta.get("epochs")
    timer = TrainingStepTimer(seed, datamodule, device) if isinstance(epochs, int) and epochs >= 1 else None

    def round_done(entry: dict[str, Any]) -> None:
        if timer is not None:
            timer.step(settings.time_probe_steps)
        if on_round is not None:
            on_round(entry)

    seed_file = resolve_seed_path(seed_path)
    source = {"path": str(seed_file.resolve()), "file_sha256": file_hash(seed_file), "meta": seed.meta}
    with PoolWriter.open(
        settings.pool_dir,
        kind="mge",
        bases={SEED_BASE: seed},
        targets=targets,
        config=settings.pool_config(),
        sources={SEED_BASE: source},
    ) as writer:
        state = generate(sampler, discriminator, writer, gen, rng_seed=settings.seed, on_round=round_done)
        if state.kept < gen.n_models:
            log.warning(
                "budget spent: %d of %d models kept in %d rounds; raise the generator's max_rounds (or threshold), "
                "or loosen the discriminator",
                state.kept,
                gen.n_models,
                state.rounds,
            )
        pool = writer.finish({"kept": state.kept, "passed": state.passed, "candidates": state.candidates})

    def evaluate(x: Tensor, y: Tensor) -> PoolEvaluation:
        return evaluate_pool(
            pool, x, y, device=device, batch_size=disc.eval_batch_size, models_per_chunk=disc.models_per_chunk
        )

    evaluation = selection_evaluation = None
    if settings.evaluate_test:
        evaluation, selection_evaluation = evaluate(x_test, y_test), evaluate(x_disc, y_disc)
    reference = None if timer is None else timer.reference(int(epochs))  # type: ignore[arg-type]
    return GenerateReport(
        dataset=seed.meta.get("dataset"),
        model=seed.arch,
        seed_model={
            "path": source["path"],
            "train_seed": seed.meta.get("seed"),
            "config_hash": seed.meta.get("config_hash"),
            "test_accuracy": seed.meta.get("test_accuracy"),
        },
        pool_dir=Path(settings.pool_dir),
        pool_hash=pool.pool_hash(),
        state=state,
        rounds=list(pool.manifest.log),
        seed_discriminator_accuracy=discriminator.seed_accuracy,
        discriminator_accuracy_bound=discriminator.accuracy_bound,
        evaluation=evaluation,
        selection_evaluation=selection_evaluation,
        time_reference=reference,
        seed_recorded_train_seconds=seed.meta.get("train_seconds"),
        device=str(device),
        pool=pool,
    )
