"""The baseline stage: the cheap pools every table compares MGE with (spec section 5), in the pool format.

Four baselines, each one pool folder that ``mge-eval`` reads like any other:

- ``noise`` (kind ``noise``): Gaussian weight noise around the seed at a reference pool's distances,
  member by member and tensor by tensor (member b of the noise pool is as far from the seed, in
  every target tensor, as member b of the reference pool). Gated (every member passes the
  discriminator the reference pool was made with, each slot redrawn until one does) or ungated (the
  first draw of every slot, i.e. the candidates the gated pool starts from).
- ``noise_curve`` (kind ``noise``): one pool holding ``members_per_distance`` noise members at each
  of several relative L2 distances; every member records its ``target_distance`` among its scores
  and the pool's config says ``curve: true``, so ``mge-eval`` reports it distance by distance: the
  noise curve of accuracy against novelty that a generated pool is placed against.
- ``independent`` (kind ``independent``): K ``mge-train`` runs of the seed's recipe with other
  seeds, each member carrying its full state (BatchNorm statistics included).
- ``snapshot`` (kind ``snapshot``): the snapshots one ``mge-train`` run saved with
  ``callbacks=snapshots`` (warm-restart cycle ends or the last K epochs), full state likewise.

Every pool has one base, the reference seed (``seed_model``, or the reference pool's seed for
``noise``): ``mge-eval`` measures mistake IoU and distance against a pool's first base, so every
pool of a table is measured against the same seed. Members of ``independent`` and ``snapshot``
pools replace all of the base's floating tensors; the base only supplies integer buffers.

Each pool records what it cost in its manifest summary: ``cost_seconds`` (generation plus
discriminator for noise; the trainings, as their runs recorded them, for independent and
snapshot pools) and the load average around the work. A stage is keyed by its config: run again
into the same ``pool_dir``, a finished pool of the same config is reused as it is, an unfinished
noise pool resumes after its last completed chunk (every draw is keyed by seed, slot and attempt,
so the result is the same), and a pool of another config is refused.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mge.baselines import NoiseTargets, draw_noise, gated_noise, load_snapshots, stack_seeds
from mge.baselines.noise import Gate, NoiseMember
from mge.discriminator import Discriminator, DiscriminatorSettings
from mge.errors import ConfigError
from mge.evaluation.metrics import relative_l2
from mge.generator import select_targets
from mge.pool import SEED_BASE, NewMember, Pool, PoolWriter, SeedModel, load_seed, resolve_seed_path
from mge.pool.files import file_hash, tensor_hash
from mge.runs.device import resolve_device
from mge.runs.generate import seed_datamodule

log = logging.getLogger("mge")

BASELINES = ("noise", "noise_curve", "independent", "snapshot")
REJECTION_CAUSES = ("non_finite", "distribution", "accuracy")  # the discriminator's tests, in order
SNAPSHOT_DIR = "snapshots"  # where conf/callbacks/snapshots.yaml puts a run's snapshots
# Relative L2 distances of the default noise curve: around MGE's LeNet-5 pools (0.06-0.32 on the
# artifacts' MNIST and Fashion-MNIST seeds) and far enough beyond for accuracy to fall.
DEFAULT_CURVE_DISTANCES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6)


def _positive_int(key: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}.")


@dataclass(frozen=True)
class NoiseSettings:
    """Noise matched member by member to a reference pool (``baseline=noise``)."""

    reference_pool: str  # the pool whose per-tensor distances to the seed are matched (an MGE pool's folder)
    gated: bool = True  # keep only members the reference pool's discriminator accepts
    max_rounds: int = 20  # gated: draws per slot at most (draws_per_slot each round); then the slot stays empty
    draws_per_slot: int = 1  # gated: candidates per open slot and round

    def __post_init__(self) -> None:
        _positive_int("max_rounds", self.max_rounds)
        _positive_int("draws_per_slot", self.draws_per_slot)


@dataclass(frozen=True)
class NoiseCurveSettings:
    """Noise at a range of relative L2 distances, one group of members per distance (``baseline=noise_curve``)."""

    distances: Sequence[float] = DEFAULT_CURVE_DISTANCES  # relative L2 distances to the seed, every tensor alike
    members_per_distance: int = 20
    gated: bool = False  # the curve traces what noise does to a model, so by default nothing is filtered
    max_rounds: int = 20
    draws_per_slot: int = 1
    discriminator: DiscriminatorSettings = field(default_factory=DiscriminatorSettings)  # used when gated

    def __post_init__(self) -> None:
        object.__setattr__(self, "distances", tuple(self.distances))  # frozen: hashable, and lists from configs
        if not self.distances:
            raise ValueError("distances is empty: give the relative L2 distances of the curve, e.g. [0.05, 0.1, 0.2].")
        bad = [d for d in self.distances if not (isinstance(d, (int, float)) and math.isfinite(d) and d > 0)]
        if bad or len(set(self.distances)) != len(self.distances):
            raise ValueError(f"distances must be distinct finite numbers > 0, got {list(self.distances)}.")
        _positive_int("members_per_distance", self.members_per_distance)
        _positive_int("max_rounds", self.max_rounds)
        _positive_int("draws_per_slot", self.draws_per_slot)


@dataclass(frozen=True)
class IndependentSettings:
    """K independently trained seeds as one pool (``baseline=independent``)."""

    runs: Sequence[str]  # mge-train run folders or seed files; glob patterns (outputs/indep/seed*) are expanded

    def __post_init__(self) -> None:
        object.__setattr__(self, "runs", tuple(self.runs))
        if not self.runs or not all(isinstance(r, str) for r in self.runs):
            raise ValueError(
                f"runs must be a non-empty list of mge-train run folders (or glob patterns), got {list(self.runs)}."
            )


@dataclass(frozen=True)
class SnapshotSettings:
    """The snapshots of one training run as one pool (``baseline=snapshot``)."""

    run: str  # an mge-train run folder trained with callbacks=snapshots (its snapshots/ and metrics.json)


Baseline = NoiseSettings | NoiseCurveSettings | IndependentSettings | SnapshotSettings


@dataclass(frozen=True)
class BaselineSettings:
    """Everything :func:`make_baseline` needs."""

    baseline: Baseline
    seed_model: Path | None = None  # the reference seed (an mge-train run or seed file); noise: its reference pool's
    seed: int = 0  # seed of the noise draws
    pool_dir: Path = Path("pool")
    device: str = "auto"  # auto | cpu | cuda: where the discriminator runs
    data_root: str | None = None  # where the seed's dataset lives (gated noise); None: where it was trained

    def __post_init__(self) -> None:
        resolve_device(self.device)
        if not isinstance(self.baseline, NoiseSettings) and self.seed_model is None:
            raise ValueError(
                "seed_model is required for this baseline: point it at the seed the pools are compared with "
                "(an mge-train run folder or seed file)."
            )
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}.")

    @property
    def name(self) -> str:
        """The baseline's name, one of ``BASELINES``."""
        return {
            NoiseSettings: "noise",
            NoiseCurveSettings: "noise_curve",
            IndependentSettings: "independent",
            SnapshotSettings: "snapshot",
        }[type(self.baseline)]


@dataclass
class BaselineReport:
    """What a baseline run produced; :meth:`to_dict` is its ``metrics.json``."""

    baseline: str
    pool: Pool = field(repr=False)
    summary: dict[str, Any]  # the pool's manifest summary: cost_seconds, cost, and the baseline's own figures
    reused: bool  # the pool was already finished in pool_dir (same config) and was not made again

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "kind": self.pool.kind,
            "pool_dir": str(self.pool.root.resolve()),
            "pool_hash": self.pool.pool_hash(),
            "members": len(self.pool),
            "reused": self.reused,
            **self.summary,
        }


def _seed_model(settings: BaselineSettings) -> Path:
    """The reference seed's path (BaselineSettings makes sure every baseline but matched noise has one)."""
    if settings.seed_model is None:
        raise ConfigError(f"seed_model is required for the {settings.name} baseline.")
    return Path(settings.seed_model)


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _seed_source(path: str | Path) -> dict[str, Any]:
    file = resolve_seed_path(path)
    return {"path": str(file.resolve()), "file_sha256": file_hash(file)}


def _finished(writer: PoolWriter, baseline: str) -> BaselineReport | None:
    """The report of a pool already finished in the writer's folder (its writer closed), else None."""
    if not writer.manifest.finished:
        return None
    writer.close()
    pool = Pool.load(writer.root)
    log.info("reusing the finished %s pool in %s (same config)", baseline, writer.root)
    return BaselineReport(baseline, pool, dict(pool.manifest.summary), reused=True)


# --------------------------------------------------------------------------- noise


@dataclass
class _NoiseCost:
    """Seconds and candidates of a noise pool so far (the run state a resume continues from)."""

    chunks_done: int = 0
    generation_seconds: float = 0.0
    discriminator_seconds: float = 0.0
    candidates: int = 0
    accepted: int = 0
    unfilled: list[int] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECTION_CAUSES, 0))

    @property
    def seconds(self) -> float:
        return self.generation_seconds + self.discriminator_seconds


def _noise_loop(
    writer: PoolWriter,
    cost: _NoiseCost,
    seed_params: Mapping[str, Tensor],
    chunks: Iterator[tuple[NoiseTargets, float | None]],
    gate: Gate | None,
    *,
    seed: int,
    max_rounds: int,
    draws_per_slot: int,
) -> None:
    """Fill the pool chunk by chunk, checkpointing after each with ``cost`` (the run state a resume starts from).

    Chunks before ``cost.chunks_done`` were finished before a resume and are skipped. A chunk's
    distance, when given, is recorded as its members' ``target_distance`` (a curve's configured
    distance exactly, not as recomputed from the norms).
    """
    disc_seconds = [0.0]  # of the current chunk

    def timed(gate: Gate) -> Gate:
        def timed_gate(candidates: Mapping[str, Tensor]) -> Tensor:
            start = time.perf_counter()
            accepted = gate(candidates)
            disc_seconds[0] += time.perf_counter() - start
            return accepted

        return timed_gate

    for i, (targets, distance) in enumerate(chunks):
        if i < cost.chunks_done:
            continue
        disc_seconds[0] = 0.0
        start = time.perf_counter()
        if gate is None:
            params = draw_noise(seed_params, targets, seed=seed)
            achieved = relative_l2(params, seed_params).tolist()
            members = [
                NoiseMember(
                    slot=int(s), attempt=0, target_distance=float(t), achieved_distance=float(a), rounds=1, candidates=1
                )
                for s, t, a in zip(targets.slots.tolist(), targets.distances.tolist(), achieved, strict=True)
            ]
            candidates, unfilled = len(targets), []
        else:
            result = gated_noise(
                seed_params, targets, timed(gate), seed=seed, max_rounds=max_rounds, draws_per_slot=draws_per_slot
            )
            params, members, candidates, unfilled = result.params, result.members, result.candidates, result.unfilled
        elapsed = time.perf_counter() - start
        writer.append(
            params,
            [
                NewMember(
                    operator="noise",
                    parents=(SEED_BASE,),
                    scores={
                        "slot": m.slot,
                        "attempt": m.attempt,
                        "target_distance": m.target_distance if distance is None else distance,
                        "achieved_distance": m.achieved_distance,
                        "candidates": m.candidates,
                    },
                )
                for m in members
            ],
        )
        cost.chunks_done = i + 1
        cost.discriminator_seconds += disc_seconds[0]
        cost.generation_seconds += elapsed - disc_seconds[0]
        cost.candidates += candidates
        cost.accepted += len(members)
        cost.unfilled += unfilled
        writer.checkpoint(
            asdict(cost),
            {"chunk": i, "candidates": candidates, "accepted": len(members), "unfilled": len(unfilled),
             "seconds": elapsed},
        )  # fmt: skip


def _gate(
    seed: SeedModel,
    targets: list[str],
    settings: DiscriminatorSettings,
    data_root: str | None,
    device: torch.device,
    rejected: dict[str, int],
) -> Gate:
    """MGE's discriminator on the seed's own discriminator split, as ``candidates -> accepted``.

    ``rejected`` counts the candidates each test rejected (``non_finite``, ``distribution``, ``accuracy``).
    """
    datamodule = seed_datamodule(seed, data_root)
    datamodule.setup("fit")
    x_disc, y_disc = (t.to(device) for t in datamodule.split_tensors("discriminator"))
    model = seed.build().to(device)
    discriminator = Discriminator(model, {k: seed.state_dict[k].to(device) for k in targets}, x_disc, y_disc, settings)

    def gate(candidates: Mapping[str, Tensor]) -> Tensor:
        scores = discriminator.score(candidates)
        for cause in rejected:
            rejected[cause] += int(getattr(scores, f"rejected_{cause}").sum())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return scores.accepted

    return gate


def _gate_config(max_rounds: int, draws_per_slot: int, disc: DiscriminatorSettings) -> dict[str, Any]:
    """What decides a gated pool's members besides the draws (an ungated pool ignores all of it)."""
    return {"max_rounds": max_rounds, "draws_per_slot": draws_per_slot, "discriminator": asdict(disc)}


def _noise_summary(cost: _NoiseCost, gated: bool, load_before: list[float]) -> dict[str, Any]:
    return {
        "cost_seconds": cost.seconds,
        "cost": {
            "what": "noise generation + discriminator" if gated else "noise generation",
            "generation_seconds": cost.generation_seconds,
            "discriminator_seconds": cost.discriminator_seconds,
            "load_average_before": load_before,
            "load_average_after": _load_average(),
        },
        "gated": gated,
        "candidates": cost.candidates,
        "acceptance_rate": cost.accepted / cost.candidates if gated and cost.candidates else None,
        "rejected": cost.rejected if gated else None,
        "unfilled_slots": cost.unfilled,
    }


def _noise_pool(settings: BaselineSettings, noise: NoiseSettings) -> BaselineReport:
    device = resolve_device(settings.device)
    reference = Pool.load(noise.reference_pool)
    seed = reference.seed
    if settings.seed_model is not None:
        given = load_seed(settings.seed_model)
        if tensor_hash(given.state_dict) != tensor_hash(seed.state_dict):
            raise ConfigError(
                f"seed_model {settings.seed_model} is not the seed of reference_pool {noise.reference_pool}; noise "
                "is drawn around the reference pool's seed. Drop seed_model or give that pool's seed."
            )
    recorded = reference.manifest.config.get("discriminator")
    if noise.gated and not isinstance(recorded, dict):
        raise ConfigError(
            f"reference_pool {noise.reference_pool} does not record the discriminator it was made with "
            "(config.discriminator), so gated noise cannot use the same one. Match an mge-generate pool."
        )
    disc = DiscriminatorSettings(**recorded) if noise.gated and isinstance(recorded, dict) else None
    targets = list(reference.targets)
    seed_params = {k: seed.state_dict[k].to(device) for k in targets}
    config = {
        "baseline": "noise",
        "seed": settings.seed,
        "reference_pool_hash": reference.pool_hash(),
        "gated": noise.gated,
        **(_gate_config(noise.max_rounds, noise.draws_per_slot, disc) if disc is not None else {}),
    }
    load_before = _load_average()
    with PoolWriter.open(
        settings.pool_dir,
        kind="noise",
        bases={SEED_BASE: seed},
        targets=targets,
        config=config,
        sources={SEED_BASE: dict(reference.manifest.bases[next(iter(reference.bases))].source)},
    ) as writer:
        done = _finished(writer, "noise")
        if done is not None:
            return done
        cost = _NoiseCost(**(writer.state or {}))
        gate = None if disc is None else _gate(seed, targets, disc, settings.data_root, device, cost.rejected)

        def chunks() -> Iterator[tuple[NoiseTargets, None]]:
            offset = 0
            for records, params in reference.chunks():
                reference_params = {k: v.to(device) for k, v in params.items()}
                yield NoiseTargets.matching(seed_params, reference_params, first_slot=offset), None
                offset += len(records)

        _noise_loop(
            writer,
            cost,
            seed_params,
            chunks(),
            gate,
            seed=settings.seed,
            max_rounds=noise.max_rounds,
            draws_per_slot=noise.draws_per_slot,
        )
        summary = _noise_summary(cost, noise.gated, load_before) | {
            "reference_pool": str(Path(noise.reference_pool).resolve()),
            "reference_members": len(reference),
        }
        pool = writer.finish(summary)
    return BaselineReport("noise", pool, summary, reused=False)


def _noise_curve_pool(settings: BaselineSettings, curve: NoiseCurveSettings) -> BaselineReport:
    device = resolve_device(settings.device)
    seed_model = _seed_model(settings)
    seed = load_seed(seed_model)
    targets = select_targets(seed.build())
    seed_params = {k: seed.state_dict[k].to(device) for k in targets}
    config = {
        "baseline": "noise_curve",
        "curve": True,
        "seed": settings.seed,
        "distances": list(curve.distances),
        "members_per_distance": curve.members_per_distance,
        "gated": curve.gated,
        **(_gate_config(curve.max_rounds, curve.draws_per_slot, curve.discriminator) if curve.gated else {}),
    }
    load_before = _load_average()
    with PoolWriter.open(
        settings.pool_dir,
        kind="noise",
        bases={SEED_BASE: seed},
        targets=targets,
        config=config,
        sources={SEED_BASE: _seed_source(seed_model)},
    ) as writer:
        done = _finished(writer, "noise_curve")
        if done is not None:
            return done
        cost = _NoiseCost(**(writer.state or {}))
        gate = None
        if curve.gated:
            gate = _gate(seed, targets, curve.discriminator, settings.data_root, device, cost.rejected)
        m = curve.members_per_distance
        chunks = (
            (NoiseTargets.at_distances(seed_params, [d] * m, first_slot=j * m), float(d))
            for j, d in enumerate(curve.distances)
        )
        _noise_loop(
            writer,
            cost,
            seed_params,
            chunks,
            gate,
            seed=settings.seed,
            max_rounds=curve.max_rounds,
            draws_per_slot=curve.draws_per_slot,
        )
        summary = _noise_summary(cost, curve.gated, load_before) | {"distances": list(curve.distances)}
        pool = writer.finish(summary)
    return BaselineReport("noise_curve", pool, summary, reused=False)


# --------------------------------------------------------------------------- trained members


def _expand_runs(patterns: Sequence[str]) -> list[Path]:
    """Run folders and seed files, glob patterns expanded (sorted); a pattern matching nothing is an error."""
    paths: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matched = sorted(glob.glob(pattern))
            if not matched:
                raise FileNotFoundError(f"runs: the pattern {pattern!r} matches nothing.")
            paths += [Path(p) for p in matched if Path(p).is_dir() or Path(p).is_file()]
        else:
            paths.append(Path(pattern))
    return paths


def _recorded_train_seconds(run: Path) -> float:
    """The training seconds an mge-train run folder recorded in its seed file (written when it finished)."""
    seconds = load_seed(run).meta.get("train_seconds")
    if not isinstance(seconds, (int, float)):
        raise ConfigError(f"{run}: its seed records no train_seconds; give a run folder written by mge-train.")
    return float(seconds)


def _full_state_targets(seed: SeedModel) -> list[str]:
    """Every floating tensor, parameters and buffers (BatchNorm statistics): a trained member's whole state."""
    return [k for k, v in seed.state_dict.items() if v.is_floating_point()]


def _trained_pool(
    settings: BaselineSettings,
    baseline: str,
    member_paths: list[Path],
    members: list[NewMember],
    cost: dict[str, Any],
    extra: dict[str, Any],
) -> BaselineReport:
    """A pool of trained models (full floating state each) on the reference seed as its one base."""
    reference_path = resolve_seed_path(_seed_model(settings))
    try:  # one architecture and dataset split with the reference seed, and no member identical to it or another
        stack = stack_seeds([reference_path, *member_paths])
    except ValueError as err:
        raise ConfigError(f"{baseline} pool: {err}") from err
    reference = stack.seed
    targets = _full_state_targets(reference)
    params = {k: stack.tensors[k][1:] for k in targets}  # (K, *shape): the members, reference left out
    config = {"baseline": baseline, "members": [tensor_hash({k: v[i] for k, v in params.items()})
                                                for i in range(len(member_paths))]}  # fmt: skip
    with PoolWriter.open(
        settings.pool_dir,
        kind=baseline,
        bases={SEED_BASE: reference},
        targets=targets,
        config=config,
        sources={SEED_BASE: _seed_source(reference_path)},
    ) as writer:
        done = _finished(writer, baseline)
        if done is not None:
            return done
        writer.append(params, members)
        summary = {**cost, **extra, "sources": [str(p.resolve()) for p in member_paths]}
        pool = writer.finish(summary)
    return BaselineReport(baseline, pool, summary, reused=False)


def _independent_pool(settings: BaselineSettings, independent: IndependentSettings) -> BaselineReport:
    paths = [resolve_seed_path(p) for p in _expand_runs(independent.runs)]
    seeds = [load_seed(p) for p in paths]
    missing = [
        str(p) for p, s in zip(paths, seeds, strict=True) if not isinstance(s.meta.get("train_seconds"), (int, float))
    ]
    if missing:
        raise ConfigError(f"runs: {missing} record no train_seconds; collect seeds written by mge-train.")
    seconds = [float(s.meta["train_seconds"]) for s in seeds]
    members = [
        NewMember(
            operator="independent",
            parents=(),
            scores={
                "training_seed": s.meta.get("seed"),
                "recorded_test_accuracy": s.meta.get("test_accuracy"),
                "train_seconds": s.meta["train_seconds"],
            },
        )
        for s in seeds
    ]
    cost = {
        "cost_seconds": sum(seconds),
        "cost": {"what": f"{len(seeds)} trainings, as each run recorded it", "train_seconds": seconds},
    }
    extra = {"training_seeds": [s.meta.get("seed") for s in seeds]}
    return _trained_pool(settings, "independent", paths, members, cost, extra)


def _snapshot_pool(settings: BaselineSettings, snapshot: SnapshotSettings) -> BaselineReport:
    run = Path(snapshot.run)
    folder = run / SNAPSHOT_DIR
    stack = load_snapshots(folder)  # every snapshot checked against the index's hash
    index = [m["snapshot"] for m in stack.metas]
    seconds = _recorded_train_seconds(run)
    members = [
        NewMember(
            operator="snapshot",
            parents=(),
            generation=entry["epoch"],
            scores={"epoch": entry["epoch"], "step": entry["step"], "lr": entry["lr"]},
        )
        for entry in index
    ]
    cost = {"cost_seconds": seconds, "cost": {"what": "one training, as its run recorded it", "train_seconds": seconds}}
    extra = {"run": str(run.resolve()), "epochs": [entry["epoch"] for entry in index]}
    return _trained_pool(settings, "snapshot", [Path(p) for p in stack.sources], members, cost, extra)


def make_baseline(settings: BaselineSettings) -> BaselineReport:
    """Make (or reuse, or resume) the baseline pool of ``settings`` in ``settings.pool_dir``."""
    baseline = settings.baseline
    if isinstance(baseline, NoiseSettings):
        return _noise_pool(settings, baseline)
    if isinstance(baseline, NoiseCurveSettings):
        return _noise_curve_pool(settings, baseline)
    if isinstance(baseline, IndependentSettings):
        return _independent_pool(settings, baseline)
    return _snapshot_pool(settings, baseline)
