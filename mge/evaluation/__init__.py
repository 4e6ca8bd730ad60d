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
from mge.evaluation.calibration import expected_calibration_error
from mge.evaluation.ensemble import (
    EnsembleAccumulator,
    EnsembleCurve,
    EnsembleMetrics,
    ensemble_metrics,
    majority_vote,
    majority_vote_of_logits,
    pool_size_grid,
)
from mge.evaluation.metrics import (
    disagreement_with_rest,
    mistake_iou,
    novelty,
    pairwise_disagreement,
    relative_l2,
    relative_l2_per_tensor,
    summary,
)

__all__ = [
    "EnsembleAccumulator",
    "EnsembleCurve",
    "EnsembleMetrics",
    "accuracy",
    "batched_features",
    "batched_logits",
    "disagreement_with_rest",
    "ensemble_metrics",
    "expected_calibration_error",
    "majority_vote",
    "majority_vote_of_logits",
    "mistake_iou",
    "novelty",
    "pairwise_disagreement",
    "pool_size_grid",
    "predict_batched",
    "predict_one_by_one",
    "relative_l2",
    "relative_l2_per_tensor",
    "stacked_size",
    "summary",
    "wide_path_failure",
]
