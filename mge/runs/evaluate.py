"""The evaluation stage: labelled pools compared on the test set, member by member and as ensembles (spec section 6).

Every pool (MGE, E-MGE, a baseline) is run once, shard by shard, as one wide network
(:func:`mge.evaluation.pool_eval.evaluate_pool`); its logits feed the ensemble metrics on the way, so
nothing is evaluated twice and no pool is held in memory whole. A pool becomes one *group* of the
report, except a noise curve (a ``noise`` pool whose config says ``curve: true``), which becomes
one group per ``target_distance`` of its members: the points of the curve. The seed itself is the
first row of every table.

Novelty is the spec's: the IoU of a member's set of misclassified test examples with the seed's
(1 = the seed's mistakes, lower = more novel). It is measured against each pool's first base, so
the pools compared must share that seed, which :func:`evaluate_pools` checks. The figures of a
pool that ``mge-generate`` made are computed by the same function as that run's own
``metrics.json``, on the same test set, so they are the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mge.errors import ConfigError
from mge.evaluation import EnsembleAccumulator, batched_logits, pairwise_disagreement
from mge.evaluation.ensemble import DEFAULT_ORDERINGS, EnsembleCurve, EnsembleMetrics
from mge.evaluation.pool_eval import PoolEvaluation, evaluate_pool
from mge.pool import MemberRecord, Pool
from mge.pool.files import tensor_hash
from mge.runs.device import resolve_device
from mge.runs.pools import comparison_datamodule, load_pools

SEED_LABEL = "seed"
CURVE_SCORE = "target_distance"  # the member score a noise curve groups its members by

# Every column of the tables: key -> header. The headers say which way is better.
COLUMNS: dict[str, str] = {
    "label": "pool",
    "kind": "kind",
    "distance": "noise distance (relative L2)",
    "members": "members",
    "accuracy_mean": "test accuracy, mean",
    "accuracy_median": "median",
    "accuracy_std": "std",
    "accuracy_min": "min",
    "accuracy_max": "max",
    "mistake_iou_mean": "mistake IoU with the seed, mean (lower = more novel)",
    "disagreement": "pairwise disagreement (higher = more diverse)",
    "relative_l2_mean": "relative L2 to the seed, mean",
    "soft_vote_accuracy": "soft-vote accuracy",
    "majority_vote_accuracy": "majority-vote accuracy",
    "soft_vote_nll": "soft-vote NLL (lower = better)",
    "soft_vote_ece": "soft-vote ECE (lower = better)",
    "cost_seconds": "cost (s)",
    "seconds_per_member": "cost per member (s)",
}


@dataclass(frozen=True)
class EvalOptions:
    """How the pools are run (``conf/eval/``); the batch sizes are mge-generate's, so that the tiles, and the
    numbers, are the same as that run's own evaluation."""

    batch_size: int = 1000  # examples per vectorised pass
    models_per_chunk: int = 64  # members per vectorised pass
    orderings: int = DEFAULT_ORDERINGS  # random member orderings for ensemble accuracy against pool size
    seed: int = 0  # seed of those orderings

    def __post_init__(self) -> None:
        for key in ("batch_size", "models_per_chunk", "orderings"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}.")


@dataclass(frozen=True)
class EvalSettings:
    """Everything :func:`evaluate_pools` needs."""

    pools: Mapping[str, str]  # label -> pool folder, in table order
    options: EvalOptions = field(default_factory=EvalOptions)
    data_root: str | None = None  # where the seeds' dataset lives; None: where it was trained
    device: str = "auto"  # auto | cpu | cuda

    def __post_init__(self) -> None:
        resolve_device(self.device)
        if not self.pools:
            raise ValueError("pools is empty: give at least one labelled pool, e.g. pools.MGE=<run>/pool.")
        if SEED_LABEL in self.pools:
            raise ValueError(f"pools: the label {SEED_LABEL!r} is the seed's own row; give that pool another label.")


@dataclass(frozen=True)
class GroupReport:
    """One row of the tables: a pool, one distance of a noise curve, or the seed."""

    label: str
    kind: str
    evaluation: PoolEvaluation  # per-member figures against the seed
    ensemble: EnsembleMetrics | None  # None for an empty group
    curve: EnsembleCurve | None  # ensemble accuracy against pool size (whole pools only)
    distance: float | None = None  # a noise-curve group's target distance
    cost_seconds: float | None = None  # what making the pool cost (None: unknown, or a curve's single distance)

    def summary(self) -> dict[str, Any]:
        """The group's figures, JSON-serialisable (``test`` is the evaluation summary ``mge-generate`` writes)."""
        return {
            "label": self.label,
            "kind": self.kind,
            "distance": self.distance,
            "members": len(self.evaluation.member_ids),
            "test": self.evaluation.summary(),
            "ensemble": None if self.ensemble is None else self.ensemble.to_dict(),
            "ensemble_curve": None if self.curve is None else self.curve.to_dict(),
            "cost_seconds": self.cost_seconds,
        }

    def row(self) -> dict[str, Any]:
        """One table row, keyed by :data:`COLUMNS`."""
        test = self.evaluation.summary()
        acc, iou, dist = test["accuracy"] or {}, test["mistake_iou"] or {}, test["relative_l2"] or {}
        ens = {} if self.ensemble is None else self.ensemble.to_dict()
        members = len(self.evaluation.member_ids)
        return {
            "label": self.label,
            "kind": self.kind,
            "distance": self.distance,
            "members": members,
            **{f"accuracy_{k}": acc.get(k) for k in ("mean", "median", "std", "min", "max")},
            "mistake_iou_mean": iou.get("mean"),
            "disagreement": test["pairwise_disagreement"],
            "relative_l2_mean": dist.get("mean"),
            **{
                k: ens.get(k)
                for k in ("soft_vote_accuracy", "majority_vote_accuracy", "soft_vote_nll", "soft_vote_ece")
            },
            "cost_seconds": self.cost_seconds,
            "seconds_per_member": None if self.cost_seconds is None or not members else self.cost_seconds / members,
        }


@dataclass
class EvalReport:
    """What an evaluation produced; :meth:`to_dict` is its ``metrics.json``."""

    dataset: str | None
    model: str
    device: str
    test_examples: int
    seed: GroupReport
    pools: dict[str, list[GroupReport]]  # label -> its groups (one, or one per curve distance)
    pool_meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> kind, folder, hash, size, cost

    @property
    def groups(self) -> list[GroupReport]:
        """Every row, the seed first, in pool order."""
        return [self.seed, *(g for groups in self.pools.values() for g in groups)]

    def rows(self) -> list[dict[str, Any]]:
        return [g.row() for g in self.groups]

    def member_rows(self) -> list[dict[str, Any]]:
        """One row per member of every pool: label, kind, its curve distance, id and test figures."""
        return [
            {"label": label, "kind": g.kind, "distance": g.distance, **row}
            for label, groups in self.pools.items()
            for g in groups
            for row in g.evaluation.rows()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "device": self.device,
            "test_examples": self.test_examples,
            "seed": self.seed.summary(),
            "pools": {
                label: {**self.pool_meta[label], "groups": [g.summary() for g in groups]}
                for label, groups in self.pools.items()
            },
            "table": self.rows(),
        }


def pool_cost_seconds(pool: Pool) -> float | None:
    """What making the pool cost: its summary's ``cost_seconds`` (baselines), or MGE's generation plus
    discriminator seconds from its run state; None when the pool does not say."""
    cost = pool.manifest.summary.get("cost_seconds")
    if isinstance(cost, (int, float)):
        return float(cost)
    state = pool.manifest.state or {}
    generation, discriminator = state.get("generation_seconds"), state.get("discriminator_seconds")
    if isinstance(generation, (int, float)) and isinstance(discriminator, (int, float)):
        return float(generation + discriminator)
    return None


def is_curve(pool: Pool) -> bool:
    """Is this a noise curve (members at several distances, reported distance by distance)?"""
    return pool.kind == "noise" and pool.manifest.config.get("curve") is True


def _groups(pool: Pool) -> list[tuple[float | None, list[int]]]:
    """``(distance, member positions)`` per group: the whole pool, or one per curve distance (ascending)."""
    if not is_curve(pool):
        return [(None, list(range(len(pool))))]
    by_distance: dict[float, list[int]] = {}
    for i, record in enumerate(pool.records):
        d = record.scores.get(CURVE_SCORE)
        if not isinstance(d, (int, float)):
            raise ConfigError(f"Noise curve {pool.root}: member {record.id} records no {CURVE_SCORE}.")
        by_distance.setdefault(float(d), []).append(i)
    return sorted(by_distance.items())


def _subset(evaluation: PoolEvaluation, index: list[int], predictions: Tensor, num_classes: int) -> PoolEvaluation:
    """The evaluation of the members at ``index`` (their disagreement recomputed among themselves)."""
    i = torch.tensor(index, dtype=torch.long)
    return PoolEvaluation(
        member_ids=[evaluation.member_ids[j] for j in index],
        seed_accuracy=evaluation.seed_accuracy,
        accuracies=evaluation.accuracies[i],
        mistake_iou=evaluation.mistake_iou[i],
        disagreement=pairwise_disagreement(predictions[i.to(predictions.device)], num_classes),
        relative_l2=evaluation.relative_l2[i],
    )


def _check_one_seed(pools: Mapping[str, Pool]) -> None:
    """Novelty and distance are measured against each pool's first base: it must be the same seed everywhere."""
    (first_label, first), *others = pools.items()
    reference = tensor_hash(first.seed.state_dict)
    for label, pool in others:
        if tensor_hash(pool.seed.state_dict) != reference:
            raise ConfigError(
                f"Pools {first_label!r} ({first.root}) and {label!r} ({pool.root}) were made from different seeds, so "
                "their mistake IoU and distance to 'the seed' measure different things. Compare pools of one seed "
                "(mge-baseline puts the seed it is given as every pool's base)."
            )


def _evaluate_one(
    label: str, pool: Pool, x: Tensor, y: Tensor, settings: EvalSettings, device: torch.device
) -> list[GroupReport]:
    """The groups of one pool, run once through :func:`evaluate_pool` with the ensemble metrics fed on the way."""
    groups = _groups(pool)
    member_group = {i: g for g, (_, index) in enumerate(groups) for i in index}
    options = settings.options
    accumulators = [  # a curve distance gets no accuracy-against-size curve (memory for no table)
        EnsembleAccumulator(y, len(index), orderings=0 if d is not None else options.orderings, seed=options.seed)
        if index
        else None
        for d, index in groups
    ]
    predictions: list[Tensor] = []
    position = [0]

    def on_logits(records: Sequence[MemberRecord], logits: Tensor) -> None:
        start = position[0]
        for g, accumulator in enumerate(accumulators):
            rows = [j for j in range(len(records)) if member_group[start + j] == g]
            if rows and accumulator is not None:
                accumulator.update(logits[torch.tensor(rows, device=logits.device)])
        predictions.append(logits.argmax(dim=-1))
        position[0] += len(records)

    evaluation = evaluate_pool(
        pool, x, y, device=device, batch_size=options.batch_size, models_per_chunk=options.models_per_chunk,
        on_logits=on_logits,
    )  # fmt: skip
    preds = torch.cat(predictions) if predictions else torch.empty(0, len(y), dtype=torch.long, device=device)
    cost = pool_cost_seconds(pool)
    reports = []
    for (distance, index), accumulator in zip(groups, accumulators, strict=True):
        whole = distance is None
        reports.append(
            GroupReport(
                label=label if whole else f"{label} d={distance:g}",
                kind=pool.kind,
                evaluation=evaluation if whole else _subset(evaluation, index, preds, pool.seed.num_classes),
                ensemble=None if accumulator is None else accumulator.metrics(),
                curve=accumulator.curve() if accumulator is not None and whole else None,
                distance=distance,
                cost_seconds=cost if whole else None,
            )
        )
    return reports


def _seed_report(pool: Pool, x: Tensor, y: Tensor, settings: EvalSettings, device: torch.device) -> GroupReport:
    """The seed alone, as a pool of one: its accuracy, and its NLL and ECE as a one-member ensemble."""
    seed = pool.seed
    model = seed.build().to(device)
    # the seed's tensors stacked as evaluate_pool stacks them, so that both give the same predictions
    params = {k: seed.state_dict[k].to(device).unsqueeze(0) for k in pool.targets}
    with torch.no_grad():
        logits = batched_logits(
            model, params, x, batch_size=settings.options.batch_size, models_per_chunk=settings.options.models_per_chunk
        )  # (1, N, classes)
    accumulator = EnsembleAccumulator(y, 1, orderings=0)
    accumulator.update(logits)
    predictions = logits.argmax(dim=-1)
    accuracy = (predictions == y).float().mean(dim=-1).cpu()
    evaluation = PoolEvaluation(
        member_ids=[SEED_LABEL],
        seed_accuracy=float(accuracy[0]),
        accuracies=accuracy,
        mistake_iou=torch.ones(1, dtype=torch.float64),
        disagreement=0.0,
        relative_l2=torch.zeros(1),
    )
    train_seconds = seed.meta.get("train_seconds")
    return GroupReport(
        label=SEED_LABEL,
        kind=SEED_LABEL,
        evaluation=evaluation,
        ensemble=accumulator.metrics(),
        curve=None,
        cost_seconds=float(train_seconds) if isinstance(train_seconds, (int, float)) else None,
    )


def evaluate_pools(settings: EvalSettings) -> EvalReport:
    """Load, check and evaluate the labelled pools on their seed's test set.

    Raises:
        ConfigError: the pools cannot be compared (architectures, dataset splits or seeds differ).
    """
    device = resolve_device(settings.device)
    pools = load_pools(settings.pools)
    _check_one_seed(pools)
    datamodule = comparison_datamodule(pools, settings.data_root)
    x, y = (t.to(device) for t in datamodule.split_tensors("test"))
    first = next(iter(pools.values()))
    seed = _seed_report(first, x, y, settings, device)
    reports = {label: _evaluate_one(label, pool, x, y, settings, device) for label, pool in pools.items()}
    meta = {
        label: {
            "kind": pool.kind,
            "pool_dir": str(pool.root.resolve()),
            "pool_hash": pool.pool_hash(),
            "members": len(pool),
            "cost_seconds": pool_cost_seconds(pool),
            "curve": is_curve(pool),
        }
        for label, pool in pools.items()
    }
    return EvalReport(
        dataset=first.seed.meta.get("dataset"),
        model=first.manifest.architecture["arch"],
        device=str(device),
        test_examples=len(y),
        seed=seed,
        pools=reports,
        pool_meta=meta,
    )
