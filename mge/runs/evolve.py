"""The E-MGE stage: evolve an MGE pool (or one generated from a seed first) into a population of E-MGE seeds.

Three pools, all format 2 and built on the seed as their one base:

- ``history_dir`` (kind ``"evolved"``): every member that ever joined the population, with its
  lineage -- the initial members (operator ``"initial"``, parent ``"source:<id>"``: the MGE pool's
  member), then, after every generation, the children that survived it (operator, generation,
  threshold, parents as ids of this pool). Each generation is one :meth:`PoolWriter.append` +
  :meth:`PoolWriter.checkpoint`, with the evolution state as the run state (counters, RNG, the
  current members' ids, discriminator-split accuracies and probe predictions), so a killed run
  resumes from its last generation and ends with the same pools, bit for bit. Children that never
  survived a selection are not kept: no later member descends from them.
- ``population_dir`` (kind ``"evolved"``): **the final population**, in selection order (fittest
  first under elitist selection), written once the last generation is done. This is the pool the
  evaluations consume (``pools.E-MGE=<run>/population``): its members are exactly the E-MGE seeds.
  Each member's record copies its history record (operator, generation, threshold, scores); its
  parents are references into the history pool (``"history:<id>"``) or the MGE pool
  (``"source:<id>"``), both declared in the manifest's ``lineage`` with their pool hashes
  (:meth:`mge.pool.Pool.lineage_pool` opens and checks them), and ``summary["history_ids"]`` gives
  each member's own id in the history pool. Cross-pool parents are the one change this stage made
  to the pool format (``mge/pool/manifest.py``).
- ``source``: the MGE pool the initial population comes from. With :class:`FromSeed` it is
  generated first by :func:`mge.runs.generate_pool` (into its ``pool_dir``; resumed like any pool).

What evolution sees: the seed's discriminator split, minus ``holdout`` examples (a fixed random
subset, the same for every run) that evolution never sees. The rest gates every child (the
discriminator), gives the quality term and is the probe set of the diversity term. The held-out
examples score the final population for choosing settings, so that the test set is never used for
that. The budget is counted in generations and in member x example forward passes; both are in
every history entry.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor

from mge.discriminator import Discriminator, DiscriminatorSettings
from mge.errors import PoolError
from mge.evaluation import EnsembleCurve, EnsembleMetrics, pairwise_disagreement
from mge.evaluation.pool_eval import PoolEvaluation, evaluate_pool, evaluate_pool_ensemble
from mge.evolution import (
    EvolutionSettings,
    EvolutionState,
    FitnessKind,
    GenerationLog,
    Population,
    Probe,
    evolve,
    fitness,
    initial_population,
)
from mge.latent import GRANULARITIES, LatentCodec
from mge.pool import SEED_BASE, LineageRecord, NewMember, Pool, PoolWriter, lineage_parent
from mge.runs.device import resolve_device
from mge.runs.generate import GenerateReport, GenerateSettings, generate_pool, seed_datamodule
from mge.runs.timing import TrainingStepTimer, TrainingTimeReference

log = logging.getLogger("mge")

SOURCE = "source"  # lineage name of the MGE pool the population started from
HISTORY = "history"  # lineage name of the history pool, in the final population's manifest
HOLDOUT_SEED = 0  # the held-out examples are the same for every run, whatever its seed

GenerationCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class FromPool:
    """Start from an MGE pool: its members are the initial population."""

    path: Path


@dataclass(frozen=True)
class FromSeed:
    """Start from a seed: an MGE pool is generated first (``generate.pool_dir``), then evolved."""

    path: Path
    generate: GenerateSettings


@dataclass(frozen=True)
class EvolveSettings:
    """Everything :func:`evolve_population` needs besides its source."""

    evolution: EvolutionSettings = field(default_factory=EvolutionSettings)
    discriminator: DiscriminatorSettings = field(default_factory=DiscriminatorSettings)
    seed: int = 0  # fixes every draw of the run: the same seed, source and settings give the same pools
    population_dir: Path = Path("population")  # the final population (what evaluations consume)
    history_dir: Path = Path("history")  # every member that joined the population; the resume point
    granularity: str = "kernel"  # DCT granularity of fusion and mutation (mge.latent.LatentCodec)
    holdout: int = 0  # discriminator-split examples evolution never sees; they score the result for choosing settings
    evaluate_test: bool = True  # false keeps the test set unseen (settings searches)
    device: str = "auto"  # auto | cpu | cuda
    data_root: str | None = None  # where the seed's dataset lives; None: where it was trained
    time_probe_steps: int = 3  # training steps timed after each generation for the time reference (mge.runs.timing)

    def __post_init__(self) -> None:
        resolve_device(self.device)
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"Unknown granularity {self.granularity!r}. Valid values are {list(GRANULARITIES)}; "
                "set granularity=<one of them>."
            )
        if isinstance(self.holdout, bool) or not isinstance(self.holdout, int) or self.holdout < 0:
            raise ValueError(f"holdout must be an integer >= 0 (examples), got {self.holdout!r}. Set holdout=0.")
        if isinstance(self.time_probe_steps, bool) or not isinstance(self.time_probe_steps, int):
            raise ValueError(f"time_probe_steps must be an integer >= 1, got {self.time_probe_steps!r}.")
        if self.time_probe_steps < 1:
            raise ValueError(f"time_probe_steps must be >= 1, got {self.time_probe_steps}.")
        if Path(self.population_dir).resolve() == Path(self.history_dir).resolve():
            raise ValueError(
                f"population_dir and history_dir are both {self.population_dir}; give the two pools two folders."
            )

    def pool_config(self, source_hash: str) -> dict[str, Any]:
        """What decides the pools' members; a pool is resumed only under the same."""
        return {
            "seed": self.seed,
            "evolution": asdict(self.evolution),
            "discriminator": asdict(self.discriminator),
            "granularity": self.granularity,
            "holdout": self.holdout,
            "source_pool_hash": source_hash,
        }


@dataclass(frozen=True)
class HeldOutEvaluation:
    """The final population on the held-out discriminator examples: what settings are chosen by."""

    examples: int
    members: PoolEvaluation
    ensemble: EnsembleMetrics

    def to_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, **self.members.summary(), "ensemble": self.ensemble.to_dict()}


@dataclass
class EvolveReport:
    """What an evolution run produced; :meth:`to_dict` is its ``metrics.json``."""

    dataset: str | None
    model: str
    source_dir: Path
    source_hash: str
    population_dir: Path
    population_hash: str
    history_dir: Path
    history_hash: str
    state: EvolutionState
    history: list[dict[str, Any]]  # generation 0 (the initial population) and every generation's log
    seed_discriminator_accuracy: float  # on the examples evolution sees
    discriminator_accuracy_bound: float | None  # None: no performance test
    evolution_examples: int
    stage_seconds: float  # wall-clock of the stage: data, discriminator, evolution, pools (not evaluation)
    test: PoolEvaluation | None
    test_ensemble: EnsembleMetrics | None
    test_ensemble_curve: EnsembleCurve | None
    held_out: HeldOutEvaluation | None
    time_reference: TrainingTimeReference | None
    device: str
    generation: GenerateReport | None  # the initial MGE pool's run, when started from a seed
    population: Pool = field(repr=False)

    def _ratio(self, seconds: float | None) -> float | None:
        return None if seconds is None or self.time_reference is None else seconds / self.time_reference.seconds

    def to_dict(self) -> dict[str, Any]:
        s = self.state
        mge_seconds = None
        if self.generation is not None:
            mge_seconds = self.generation.state.generation_seconds + self.generation.state.discriminator_seconds
        return {
            "dataset": self.dataset,
            "model": self.model,
            "source_pool": str(self.source_dir.resolve()),
            "source_pool_hash": self.source_hash,
            "population_dir": str(self.population_dir.resolve()),
            "pool_hash": self.population_hash,
            "history_dir": str(self.history_dir.resolve()),
            "history_hash": self.history_hash,
            "population_size": len(self.population),
            "generations": s.generation,
            "forward_passes": s.forward_passes,
            "candidates": s.candidates,
            "accepted": s.accepted,
            "acceptance_rate": s.accepted / s.candidates if s.candidates else None,
            "survivors_by_operator": _count(m.operator for m in s.members),
            "seed_discriminator_accuracy": self.seed_discriminator_accuracy,
            "discriminator_accuracy_bound": self.discriminator_accuracy_bound,
            "evolution_examples": self.evolution_examples,
            "held_out_examples": None if self.held_out is None else self.held_out.examples,
            "final_mean_discriminator_accuracy": self.history[-1]["mean_accuracy"],
            "test": None if self.test is None else self.test.summary(),
            "test_ensemble": None if self.test_ensemble is None else self.test_ensemble.to_dict(),
            "test_ensemble_curve": None if self.test_ensemble_curve is None else self.test_ensemble_curve.to_dict(),
            "held_out": None if self.held_out is None else self.held_out.to_dict(),
            "evolution_seconds": s.seconds,
            "stage_seconds": self.stage_seconds,
            "time_reference": None if self.time_reference is None else self.time_reference.to_dict(),
            "time_ratio": self._ratio(self.stage_seconds),
            "time_ratio_evolution_only": self._ratio(s.seconds),
            "mge_seconds": mge_seconds,
            "time_ratio_with_mge": self._ratio(None if mge_seconds is None else mge_seconds + self.stage_seconds),
            "device": self.device,
        }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return dict(sorted(counts.items()))


def split_holdout(inputs: Tensor, labels: Tensor, holdout: int) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """``(evolution part, held-out part)`` of the discriminator split: a fixed random subset is held out."""
    n = labels.shape[0]
    if holdout >= n:
        raise ValueError(
            f"holdout={holdout} leaves no discriminator example for evolution (the split has {n}); "
            f"set holdout below {n}."
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    keep, held = order[holdout:].sort().values, order[:holdout].sort().values
    return (inputs[keep], labels[keep]), (inputs[held], labels[held])


def _encode_predictions(predictions: Tensor) -> dict[str, Any]:
    rows = predictions.to(torch.int16).cpu().contiguous()
    return {"shape": list(rows.shape), "int16_base64": base64.b64encode(rows.numpy().tobytes()).decode()}


def _decode_predictions(data: dict[str, Any], device: torch.device) -> Tensor:
    raw = bytearray(base64.b64decode(data["int16_base64"]))
    return torch.frombuffer(raw, dtype=torch.int16).reshape(data["shape"]).long().to(device)


def _run_state(state: EvolutionState, population: Population, ids: dict[str, str]) -> dict[str, Any]:
    """The history pool's run state: all a resumed run needs besides the members' tensors."""
    return {
        "evolution": state.to_dict(),
        "pool_ids": ids,  # state member id -> id in the history pool, for the current members
        "accuracy": population.accuracy.double().tolist(),  # exact: JSON floats read back bit for bit
        "predictions": _encode_predictions(population.predictions),
    }


def _initial_log(
    population: Population, state: EvolutionState, probe: Probe, settings: EvolutionSettings
) -> dict[str, Any]:
    """History entry 0: the initial population, in the units of the generations' logs."""
    fit = fitness(
        population.accuracy,
        population.predictions,
        probe.labels,
        kind=cast(FitnessKind, settings.fitness),
        weight=settings.diversity_weight,
        num_classes=probe.num_classes,
    )
    return {
        "generation": 0,
        "candidates": 0,
        "accepted": 0,
        "acceptance": None,
        "members": len(population),
        "best_fitness": float(fit.max()),
        "mean_fitness": float(fit.mean()),
        "mean_accuracy": float(population.accuracy.double().mean()),
        "diversity": pairwise_disagreement(population.predictions, probe.num_classes),
        "mean_threshold": sum(m.threshold for m in state.members) / len(state.members),
        "forward_passes": state.forward_passes,
        "total_forward_passes": state.forward_passes,
        "seconds": state.seconds,
    }


def _source_pool(source: FromPool | FromSeed) -> tuple[Pool, GenerateReport | None]:
    if isinstance(source, FromSeed):
        report = generate_pool(source.generate, source.path)
        return report.pool, report
    return Pool.load(source.path), None


def _check_source(pool: Pool) -> None:
    if len(pool) == 0:
        raise PoolError(f"Pool {pool.root} is empty: evolution needs an initial population.")
    if len(pool.bases) != 1 or any(r.base != next(iter(pool.bases)) for r in pool.records):
        raise PoolError(
            f"Pool {pool.root} builds on several bases ({sorted(pool.bases)}); evolution runs on the pool "
            "of one seed (an MGE pool). Give an mge-generate pool."
        )
    odd = [k for k in pool.targets if pool.seed.state_dict[k].dtype != torch.float32]
    if odd:
        raise PoolError(f"Pool {pool.root}: targets {odd} are not float32; evolution works on float32 weights.")


def _stored(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """Tensors as a pool shard holds them: float32 on the CPU (what the population holds, bit for bit)."""
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in params.items()}


class _History:
    """Writes the history pool: the initial members, then each generation's survivors and the run state."""

    def __init__(self, writer: PoolWriter, on_generation: GenerationCallback | None) -> None:
        self.writer = writer
        self.on_generation = on_generation
        self.ids: dict[str, str] = {}  # state member id -> history pool id, for the current members

    def _commit(self, state: EvolutionState, population: Population, entry: dict[str, Any]) -> None:
        self.writer.checkpoint(_run_state(state, population, self.ids), entry)
        if self.on_generation is not None:
            self.on_generation(entry)

    def start(
        self, population: Population, state: EvolutionState, source_ids: list[str], entry: dict[str, Any]
    ) -> None:
        """Generation 0: the initial members, each naming its member of the source pool."""
        new = [
            NewMember(
                operator="initial",
                parents=(lineage_parent(SOURCE, source_id),),
                generation=0,
                threshold=m.threshold,
                scores={"discriminator_accuracy": a},
            )
            for source_id, m, a in zip(source_ids, state.members, population.accuracy.tolist(), strict=True)
        ]
        stored = self.writer.append(_stored(population.params), new)
        self.ids = {m.id: i for m, i in zip(state.members, stored, strict=True)}
        self._commit(state, population, entry)

    def save(self, state: EvolutionState, population: Population, log: GenerationLog) -> None:
        """After a generation: its surviving children (their parents are the previous generation's members)."""
        born = [i for i, m in enumerate(state.members) if m.generation == state.generation]
        new = [
            NewMember(
                operator=state.members[i].operator,
                parents=tuple(self.ids[parent] for parent in state.members[i].parents),
                generation=state.generation,
                threshold=state.members[i].threshold,
                scores={"discriminator_accuracy": float(population.accuracy[i])},
            )
            for i in born
        ]
        index = torch.tensor(born, dtype=torch.long, device=population.accuracy.device)
        stored = self.writer.append(_stored(population.take(index).params), new)
        new_ids = dict(zip([state.members[i].id for i in born], stored, strict=True))
        self.ids = {m.id: new_ids[m.id] if m.id in new_ids else self.ids[m.id] for m in state.members}
        self._commit(state, population, {**asdict(log), "members": len(population)})

    def resume(self, device: torch.device) -> tuple[Population, EvolutionState]:
        """The population and state of the last checkpointed generation."""
        saved = cast(dict[str, Any], self.writer.state)
        state = EvolutionState.from_dict(saved["evolution"])
        self.ids = dict(saved["pool_ids"])
        history = Pool.load(self.writer.root, verify=False)  # what the writer has just verified
        row = {r.id: i for i, r in enumerate(history.records)}
        params = history.parameters([row[self.ids[m.id]] for m in state.members])
        population = Population(
            {k: v.to(device) for k, v in params.items()},
            torch.tensor(saved["accuracy"], dtype=torch.float64, device=device),
            _decode_predictions(saved["predictions"], device),
        )
        return population, state


def _write_population(
    settings: EvolveSettings,
    history: Pool,
    population: Population,
    state: EvolutionState,
    ids: dict[str, str],
    config: dict[str, Any],
    source_lineage: LineageRecord,
) -> Pool:
    """The final population as its own pool, its lineage pointing into the history and source pools."""
    here = Path(settings.population_dir).resolve()
    lineage = {
        HISTORY: LineageRecord(
            path=os.path.relpath(Path(settings.history_dir).resolve(), here), pool_hash=history.pool_hash()
        ),
        SOURCE: source_lineage,
    }
    with PoolWriter.open(
        settings.population_dir,
        kind="evolved",
        bases={SEED_BASE: history.seed},
        targets=history.targets,
        config={**config, "history_pool_hash": history.pool_hash()},
        sources={SEED_BASE: dict(history.manifest.bases[SEED_BASE].source)},
        lineage=lineage,
    ) as writer:
        if writer.manifest.finished:
            return Pool.load(settings.population_dir)
        records = {r.id: r for r in history.records}
        own = [ids[m.id] for m in state.members]
        known = set(records)
        members = [
            NewMember(
                operator=records[i].operator,
                parents=tuple(lineage_parent(HISTORY, p) if p in known else p for p in records[i].parents),
                generation=records[i].generation,
                threshold=records[i].threshold,
                scores=records[i].scores,
            )
            for i in own
        ]
        writer.append(_stored(population.params), members)
        return writer.finish({"history_ids": own, "generations": state.generation})


def evolve_population(
    settings: EvolveSettings, source: FromPool | FromSeed, *, on_generation: GenerationCallback | None = None
) -> EvolveReport:
    """Evolve, store (history and final population) and evaluate; resumes an interrupted run.

    Args:
        settings: evolution, discriminator, seed, folders, holdout, device.
        source: the MGE pool to start from, or a seed to generate it from.
        on_generation: called with each history entry (generation 0 included) after it is checkpointed.
    """
    device = resolve_device(settings.device)
    source_pool, generation = _source_pool(source)
    start = time.perf_counter()  # the stage's own time: the MGE pool's is in its report
    _check_source(source_pool)
    seed = source_pool.seed
    datamodule = seed_datamodule(seed, settings.data_root)
    datamodule.setup("fit")
    x_disc, y_disc = datamodule.split_tensors("discriminator")
    (x_evo, y_evo), (x_held, y_held) = split_holdout(x_disc, y_disc, settings.holdout)

    model = seed.build().to(device)
    targets = list(source_pool.targets)
    seed_targets = {k: seed.state_dict[k].to(device) for k in targets}
    discriminator = Discriminator(model, seed_targets, x_evo.to(device), y_evo.to(device), settings.discriminator)
    probe = Probe.discriminator_split(discriminator, seed.num_classes)
    codec = LatentCodec(settings.granularity)  # type: ignore[arg-type]
    evo = settings.evolution

    # the time reference: training steps timed between generations, under the run's own load
    epochs = seed.meta.get("epochs")
    timer = TrainingStepTimer(seed, datamodule, device) if isinstance(epochs, int) and epochs >= 1 else None
    timing_seconds = 0.0  # spent timing training steps: not part of the stage's own time

    def generation_done(entry: dict[str, Any]) -> None:
        nonlocal timing_seconds
        if timer is not None:
            before = time.perf_counter()
            timer.step(settings.time_probe_steps)
            timing_seconds += time.perf_counter() - before
        if on_generation is not None:
            on_generation(entry)

    source_hash = source_pool.pool_hash()
    config = settings.pool_config(source_hash)
    source_lineage = LineageRecord(path=str(source_pool.root.resolve()), pool_hash=source_hash)
    base_source = dict(next(iter(source_pool.manifest.bases.values())).source)
    with PoolWriter.open(
        settings.history_dir,
        kind="evolved",
        bases={SEED_BASE: seed},
        targets=targets,
        config=config,
        sources={SEED_BASE: base_source},
        lineage={SOURCE: source_lineage},
    ) as writer:
        history = _History(writer, generation_done)
        if writer.state is not None:
            population, state = history.resume(device)
        else:
            params = {k: v.to(device) for k, v in source_pool.parameters().items()}
            thresholds = [
                r.threshold if r.threshold is not None else evo.initial_threshold for r in source_pool.records
            ]
            population, state = initial_population(
                params,
                discriminator=discriminator,
                probe=probe,
                settings=evo,
                rng_seed=settings.seed,
                thresholds=thresholds,
            )
            history.start(
                population, state, [r.id for r in source_pool.records], _initial_log(population, state, probe, evo)
            )
        population, state = evolve(
            population,
            state,
            settings=evo,
            codec=codec,
            discriminator=discriminator,
            probe=probe,
            on_generation=history.save,
        )
        history_pool = writer.finish({"generations": state.generation, "forward_passes": state.forward_passes})

    final = _write_population(settings, history_pool, population, state, history.ids, config, source_lineage)
    stage_seconds = time.perf_counter() - start - timing_seconds
    log.info(
        "evolution: %d generations, %d forward passes, %.1f s", state.generation, state.forward_passes, stage_seconds
    )

    batch, chunk = settings.discriminator.eval_batch_size, settings.discriminator.models_per_chunk
    test = test_ensemble = curve = None
    if settings.evaluate_test:
        x_test, y_test = datamodule.split_tensors("test")
        test = evaluate_pool(final, x_test, y_test, device=device, batch_size=batch, models_per_chunk=chunk)
        test_ensemble, curve = evaluate_pool_ensemble(
            final, x_test, y_test, device=device, batch_size=batch, models_per_chunk=chunk
        )
    held_out = None
    if settings.holdout:
        held_out = HeldOutEvaluation(
            examples=settings.holdout,
            members=evaluate_pool(final, x_held, y_held, device=device, batch_size=batch, models_per_chunk=chunk),
            ensemble=evaluate_pool_ensemble(
                final, x_held, y_held, device=device, batch_size=batch, models_per_chunk=chunk, orderings=0
            )[0],
        )
    reference = None if timer is None else timer.reference(int(epochs))  # type: ignore[arg-type]
    return EvolveReport(
        dataset=seed.meta.get("dataset"),
        model=seed.arch,
        source_dir=source_pool.root,
        source_hash=source_hash,
        population_dir=Path(settings.population_dir),
        population_hash=final.pool_hash(),
        history_dir=Path(settings.history_dir),
        history_hash=history_pool.pool_hash(),
        state=state,
        history=list(history_pool.manifest.log),
        seed_discriminator_accuracy=discriminator.seed_accuracy,
        discriminator_accuracy_bound=discriminator.accuracy_bound,
        evolution_examples=len(y_evo),
        stage_seconds=stage_seconds,
        test=test,
        test_ensemble=test_ensemble,
        test_ensemble_curve=curve,
        held_out=held_out,
        time_reference=reference,
        device=str(device),
        generation=generation,
        population=final,
    )
