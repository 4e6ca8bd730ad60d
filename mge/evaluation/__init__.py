"""Evaluation of pools: batched logits, features and predictions, and the metrics of spec section 6."""

from mge.evaluation.batched import (
    accuracy,
    batched_features,
    batched_logits,
    predict_batched,
    predict_one_by_one,
    stacked_size,
    wide_path_failure,
)
from mge.evaluation.metrics import (
    disagreement_with_rest,
    mistake_iou,
    novelty,
    pairwise_disagreement,
    relative_l2,
    summary,
)

__all__ = [
    "accuracy",
    "batched_features",
    "batched_logits",
    "disagreement_with_rest",
    "mistake_iou",
    "novelty",
    "pairwise_disagreement",
    "predict_batched",
    "predict_one_by_one",
    "relative_l2",
    "stacked_size",
    "summary",
    "wide_path_failure",
]
