"""Test-set evaluation of a whole pool, streamed shard by shard (spec section 6): per member, and as an ensemble."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mge.evaluation.batched import accuracy, batched_logits
from mge.evaluation.ensemble import DEFAULT_ORDERINGS, EnsembleAccumulator, EnsembleCurve, EnsembleMetrics
from mge.evaluation.metrics import novelty, pairwise_disagreement, relative_l2, summary
from mge.pool import MemberRecord, Pool

# Called with each chunk's members and their logits (k, N, classes), in pool order.
LogitsCallback = Callable[[Sequence[MemberRecord], Tensor], None]


@dataclass(frozen=True)
class PoolEvaluation:
    """Per-member test metrics of a pool against its seed."""

    member_ids: list[str]
    seed_accuracy: float
    accuracies: Tensor  # (B,)
    mistake_iou: Tensor  # (B,) max IoU of its mistake set with the seed's: 1 = the seed's mistakes, lower = more novel
    disagreement: float  # mean pairwise prediction disagreement inside the pool
    relative_l2: Tensor  # (B,) distance to the seed, over the targets

    def summary(self) -> dict[str, Any]:
        """The seed's accuracy and the pool's statistics (``None`` for an empty pool)."""
        empty = self.accuracies.numel() == 0
        return {
            "seed_accuracy": self.seed_accuracy,
            "accuracy": None if empty else summary(self.accuracies),
            "mistake_iou": None if empty else summary(self.mistake_iou),
            "pairwise_disagreement": None if empty else self.disagreement,
            "relative_l2": None if empty else summary(self.relative_l2),
        }

    def rows(self) -> list[dict[str, Any]]:
        """One row per member: id, test accuracy, mistake IoU with the seed, relative L2 to the seed."""
        return [
            {"member": member, "test_accuracy": acc, "mistake_iou_with_seed": iou, "relative_l2_to_seed": dist}
            for member, acc, iou, dist in zip(
                self.member_ids,
                self.accuracies.tolist(),
                self.mistake_iou.tolist(),
                self.relative_l2.tolist(),
                strict=True,
            )
        ]


def pool_logits(
    pool: Pool, inputs: Tensor, *, device: torch.device | str, batch_size: int, models_per_chunk: int
) -> Iterator[tuple[list[MemberRecord], dict[str, Tensor], Tensor]]:
    """Each shard's members, their tensors on ``device`` and their logits ``(k, N, classes)``, in pool order.

    Members run as one wide network per shard, each on its own base's tensors where it carries
    fewer than all: the one pass every pool-wide figure is computed from.
    """
    models = {name: base.build().to(device) for name, base in pool.bases.items()}
    for records, params in pool.chunks():
        params = {k: v.to(device) for k, v in params.items()}
        logits = torch.empty(len(records), len(inputs), pool.seed.num_classes, device=device)
        for base in sorted({r.base for r in records}):
            index = torch.tensor([i for i, r in enumerate(records) if r.base == base], device=device)
            logits[index] = batched_logits(
                models[base],
                {k: v[index] for k, v in params.items()},
                inputs,
                batch_size=batch_size,
                models_per_chunk=models_per_chunk,
            )
        yield list(records), params, logits


@torch.no_grad()
def evaluate_pool(
    pool: Pool,
    inputs: Tensor,
    labels: Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
    models_per_chunk: int = 64,
    on_logits: LogitsCallback | None = None,
) -> PoolEvaluation:
    """Accuracy, mistake IoU with the seed, disagreement and distance of every member on ``inputs``.

    The seed is the pool's first base. Members are run as one wide network per shard, each on its
    own base's tensors where it carries fewer than all. An empty pool (a budget that accepted
    nothing) still gets the seed's accuracy. ``on_logits`` sees every shard's logits before they
    are reduced to predictions (the ensemble metrics of ``mge-eval`` are computed from them), so
    a pool is run once for both.
    """
    x, y = inputs.to(device), labels.to(device)
    seed_model = pool.seed.build().to(device)
    seed_params = {k: pool.seed.state_dict[k].to(device) for k in pool.targets}
    # distance over the parameters the members carry (not BatchNorm statistics of full members)
    parameter_names = {name for name, _ in seed_model.named_parameters()} & set(pool.targets)
    seed_logits = batched_logits(
        seed_model, {k: v.unsqueeze(0) for k, v in seed_params.items()}, x, batch_size=batch_size, models_per_chunk=1
    )
    seed_preds = seed_logits[0].argmax(dim=-1)
    preds, distances = [seed_preds.new_empty(0, len(y))], [torch.empty(0, dtype=torch.float64, device=device)]
    for records, params, logits in pool_logits(
        pool, x, device=device, batch_size=batch_size, models_per_chunk=models_per_chunk
    ):
        if on_logits is not None:
            on_logits(records, logits)
        preds.append(logits.argmax(dim=-1))
        distances.append(relative_l2({k: params[k] for k in parameter_names}, seed_params))
    all_preds = torch.cat(preds)
    return PoolEvaluation(
        member_ids=[r.id for r in pool.records],
        seed_accuracy=accuracy(seed_preds.unsqueeze(0), y).item(),
        accuracies=accuracy(all_preds, y).cpu(),
        mistake_iou=novelty(all_preds, seed_preds, y).cpu(),
        disagreement=pairwise_disagreement(all_preds, pool.seed.num_classes),
        relative_l2=torch.cat(distances).float().cpu(),
    )


@torch.no_grad()
def evaluate_pool_ensemble(
    pool: Pool,
    inputs: Tensor,
    labels: Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
    models_per_chunk: int = 64,
    orderings: int = DEFAULT_ORDERINGS,
) -> tuple[EnsembleMetrics, EnsembleCurve | None]:
    """The pool as one classifier (soft and majority vote, NLL, ECE) and its accuracy against pool size.

    Streams the pool shard by shard into an :class:`~mge.evaluation.EnsembleAccumulator`, each
    member on its own base. ``orderings=0`` skips the curve (returned as ``None``).

    Raises:
        ValueError: the pool is empty.
    """
    if len(pool) == 0:
        raise ValueError(f"Pool {pool.root} is empty: an ensemble needs at least one member.")
    accumulator = EnsembleAccumulator(labels.to(device), len(pool), orderings=orderings)
    for _, _, logits in pool_logits(
        pool, inputs.to(device), device=device, batch_size=batch_size, models_per_chunk=models_per_chunk
    ):
        accumulator.update(logits)
    return accumulator.metrics(), accumulator.curve() if orderings else None
