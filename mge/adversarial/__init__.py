"""Adversarial robustness of seeds and pools (spec section 6, table T5): attacks, evaluation, plots.

Everything works on pixels in [0, 1]; datamodule tensors are normalised, so convert them first:

>>> import torch
>>> from mge.adversarial import normalise, to_pixels
>>> x = torch.zeros(2, 1, 8, 8)
>>> pixels = to_pixels(x, (0.3053,), (0.3760,))
>>> bool(torch.allclose(normalise(pixels, (0.3053,), (0.3760,)), x, atol=1e-6))
True
"""

from mge.adversarial.attacks import (
    DEFAULT_LOSS,
    ENSEMBLE_DEFENCES,
    ENSEMBLE_LOSSES,
    AttackSettings,
    EnsembleDefence,
    EnsembleLoss,
    attack_ensemble,
    attack_members,
)
from mge.adversarial.defences import MAJORITY_VOTE_TIES, majority_vote_correct, random_member_accuracy
from mge.adversarial.evaluate import (
    DEFAULT_EPS,
    ENSEMBLE_ATTACKS,
    AdversarialReport,
    AdversarialSettings,
    correct_by_all,
    default_eps,
    evaluate_adversarial,
)
from mge.adversarial.pixels import check_pixels, normalise, to_pixels
from mge.adversarial.plots import plot_robust_accuracy, plot_transfer_matrices, plot_transfer_matrix

__all__ = [
    "DEFAULT_EPS",
    "DEFAULT_LOSS",
    "ENSEMBLE_ATTACKS",
    "ENSEMBLE_DEFENCES",
    "ENSEMBLE_LOSSES",
    "MAJORITY_VOTE_TIES",
    "AdversarialReport",
    "AdversarialSettings",
    "AttackSettings",
    "EnsembleDefence",
    "EnsembleLoss",
    "attack_ensemble",
    "attack_members",
    "check_pixels",
    "correct_by_all",
    "default_eps",
    "evaluate_adversarial",
    "majority_vote_correct",
    "normalise",
    "plot_robust_accuracy",
    "plot_transfer_matrices",
    "plot_transfer_matrix",
    "random_member_accuracy",
    "to_pixels",
]
