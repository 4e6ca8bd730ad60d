"""Evaluation of pools: batched predictions and the metrics of spec section 6."""

from mge.evaluation.batched import accuracy, predict_batched, predict_one_by_one, stacked_size
from mge.evaluation.metrics import mistake_iou, novelty, pairwise_disagreement, relative_l2, summary

__all__ = [
    "accuracy",
    "mistake_iou",
    "novelty",
    "pairwise_disagreement",
    "predict_batched",
    "predict_one_by_one",
    "relative_l2",
    "stacked_size",
    "summary",
]
