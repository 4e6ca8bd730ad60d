"""Few-shot transfer to classes a seed never saw (MGE.md section 6, claim 3).

``splits`` says which classes a few-shot seed trains on; ``episodes`` draws the shared N-way
K-shot episodes; ``heads`` fits prototype and linear-probe heads on frozen features.
"""

from mge.fewshot.episodes import Episodes, sample_episodes
from mge.fewshot.heads import HEADS, linear_probe_head, prototype_head
from mge.fewshot.splits import FEW_SHOT_CLASSES, few_shot_classes

__all__ = [
    "FEW_SHOT_CLASSES",
    "HEADS",
    "Episodes",
    "few_shot_classes",
    "linear_probe_head",
    "prototype_head",
    "sample_episodes",
]
