"""Test-set evaluation of a whole pool, streamed shard by shard (spec section 6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mge.evaluation.batched import accuracy, predict_batched
from mge.evaluation.metrics import novelty, pairwise_disagreement, relative_l2, summary
from mge.pool import Pool


@dataclass(frozen=True)
class PoolEvaluation:
    """Per-member test metrics of a pool against its seed."""

    seed_accuracy: float
    accuracies: Tensor  # (B,)
    novelty: Tensor  # (B,) max IoU of mistake sets with the seed's; 1 = the seed's mistakes
    disagreement: float  # mean pairwise prediction disagreement inside the pool
    relative_l2: Tensor  # (B,) distance to the seed

    def summary(self) -> dict[str, object]:
        """The seed's accuracy and the pool's statistics (``None`` for an empty pool)."""
        empty = self.accuracies.numel() == 0
        return {
            "seed_accuracy": self.seed_accuracy,
            "accuracy": None if empty else summary(self.accuracies),
            "novelty": None if empty else summary(self.novelty),
            "pairwise_disagreement": None if empty else self.disagreement,
            "relative_l2": None if empty else summary(self.relative_l2),
        }


@torch.no_grad()
def evaluate_pool(
    pool: Pool,
    inputs: Tensor,
    labels: Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
    models_per_chunk: int = 64,
) -> PoolEvaluation:
    """Accuracy, novelty, disagreement and distance of every member on ``inputs``.

    An empty pool (a budget that accepted nothing) still gets the seed's accuracy.
    """
    model = pool.seed.build().to(device)
    x, y = inputs.to(device), labels.to(device)
    seed_params = {k: pool.seed.state_dict[k].to(device) for k in pool.targets}

    def predict(params: dict[str, Tensor]) -> Tensor:
        return predict_batched(model, params, x, batch_size=batch_size, models_per_chunk=models_per_chunk)

    seed_preds = predict({k: v.unsqueeze(0) for k, v in seed_params.items()})[0]
    preds, distances = [seed_preds.new_empty(0, len(y))], [torch.empty(0, dtype=torch.float64, device=device)]
    for _, params in pool.chunks():
        params = {k: v.to(device) for k, v in params.items()}
        preds.append(predict(params))
        distances.append(relative_l2(params, seed_params))
    all_preds = torch.cat(preds)
    return PoolEvaluation(
        seed_accuracy=accuracy(seed_preds.unsqueeze(0), y).item(),
        accuracies=accuracy(all_preds, y).cpu(),
        novelty=novelty(all_preds, seed_preds, y).cpu(),
        disagreement=pairwise_disagreement(all_preds, pool.seed.num_classes),
        relative_l2=torch.cat(distances).float().cpu(),
    )
