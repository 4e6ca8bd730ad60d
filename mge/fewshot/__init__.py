"""Few-shot transfer to classes a seed never saw (MGE.md section 6, claim 3).

``splits`` says which classes a few-shot seed trains on; ``episodes`` draws the shared N-way
K-shot episodes; ``heads`` fits prototype and linear-probe heads on frozen features; ``groups``
labels the compared models and how each is used; ``protocol`` runs it all into a ``report``.
"""

from mge.fewshot.episodes import Episodes, sample_episodes
from mge.fewshot.groups import ModelGroup, random_init_params, stack_state_dicts
from mge.fewshot.heads import HEADS, linear_probe_head, prototype_head
from mge.fewshot.protocol import FewShotSettings, run_few_shot, run_few_shot_heads
from mge.fewshot.report import HEADERS, FewShotReport, GroupResult, ci95, plot_reports
from mge.fewshot.splits import FEW_SHOT_CLASSES, few_shot_classes

__all__ = [
    "FEW_SHOT_CLASSES",
    "HEADERS",
    "HEADS",
    "Episodes",
    "FewShotReport",
    "FewShotSettings",
    "GroupResult",
    "ModelGroup",
    "ci95",
    "few_shot_classes",
    "linear_probe_head",
    "plot_reports",
    "prototype_head",
    "random_init_params",
    "run_few_shot",
    "run_few_shot_heads",
    "sample_episodes",
    "stack_state_dicts",
]
