"""The few-shot report: mean accuracy and 95% confidence interval per group, as a dict, table rows or a plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mge.fewshot.protocol import FewShotSettings

# The 97.5% quantile of the standard normal: mean +- 1.96 standard errors covers 95%.
Z_95 = 1.96
HEADERS = ("model", "use", "members", "accuracy (%)", "95% CI (+-, %)")


def ci95(episode_accuracy: Tensor) -> float:
    """Half-width of the 95% confidence interval of the mean over episodes: ``1.96 * std / sqrt(E)``.

    ``std`` is the sample standard deviation over the ``E`` episodes (Bessel-corrected, divisor
    ``E - 1``), the normal approximation that few-shot papers report (e.g. Snell et al., 2017). It
    covers the episode draw only, not the choice of held-out images or of the seed: on a small
    image set, a model's accuracy can sit further from its expectation than the interval says.

    Args:
        episode_accuracy: ``(E,)`` accuracy per episode, ``E >= 2``.

    Raises:
        ValueError: Fewer than two episodes.
    """
    n = episode_accuracy.numel()
    if n < 2:
        raise ValueError(f"A confidence interval needs at least 2 episodes, got {n}.")
    return Z_95 * float(episode_accuracy.double().std()) / math.sqrt(n)


@dataclass(frozen=True, eq=False)
class GroupResult:
    """One group's accuracies on the shared episodes.

    Attributes:
        name: The group's label.
        use: ``"each"``, ``"best"`` or ``"ensemble"`` (see :class:`~mge.fewshot.ModelGroup`).
        n_members: Members in the group (before choosing the best).
        chosen: The member ``use="best"`` picked; ``None`` otherwise.
        episode_accuracy: ``(E,)`` the group's accuracy per episode (for ``"each"``, the mean over members).
        member_accuracy: ``(M,)`` each evaluated member's own head's accuracy, averaged over episodes.
    """

    name: str
    use: str
    n_members: int
    chosen: int | None
    episode_accuracy: Tensor
    member_accuracy: Tensor

    @property
    def mean(self) -> float:
        """Mean accuracy over episodes, in [0, 1]."""
        return float(self.episode_accuracy.double().mean())

    @property
    def ci95(self) -> float:
        """Half-width of the 95% confidence interval of :attr:`mean` (see :func:`ci95`)."""
        return ci95(self.episode_accuracy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "use": self.use,
            "n_members": self.n_members,
            "chosen": self.chosen,
            "accuracy": self.mean,
            "ci95": self.ci95,
            "std": float(self.episode_accuracy.double().std()),
            "member_accuracy": self.member_accuracy.tolist(),
        }


@dataclass(frozen=True, eq=False)
class FewShotReport:
    """What :func:`~mge.fewshot.run_few_shot` measured: the settings, the held-out data and every group.

    Attributes:
        settings: The episode settings.
        n_classes: Held-out classes the episodes were drawn from.
        n_images: Held-out images those classes have.
        groups: One result per group, in the order given.
    """

    settings: FewShotSettings
    n_classes: int
    n_images: int
    groups: tuple[GroupResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: settings, data sizes and per group accuracy, CI and std (fractions in [0, 1])."""
        return {
            "settings": asdict(self.settings),
            "n_classes": self.n_classes,
            "n_images": self.n_images,
            "groups": [g.to_dict() for g in self.groups],
        }

    def rows(self) -> list[list[object]]:
        """Table rows under :data:`HEADERS`, accuracies in percent, e.g. for :func:`mge.reporting.markdown_table`."""
        return [[g.name, g.use, g.n_members, round(100 * g.mean, 2), round(100 * g.ci95, 2)] for g in self.groups]

    def plot(self) -> Figure:
        """Bars of mean accuracy with 95% CI whiskers per group, and the chance level."""
        return plot_reports([self])


def plot_reports(reports: Sequence[FewShotReport], title: str = "") -> Figure:
    """One panel per report (e.g. per head) side by side: bars of mean accuracy with 95% CI whiskers, chance level.

    Raises:
        ValueError: No report.
    """
    from matplotlib.figure import Figure  # not pyplot: leaves the caller's backend alone

    if not reports:
        raise ValueError("plot_reports needs at least one FewShotReport.")
    width = max(4.0, 1.2 + 1.1 * max(len(r.groups) for r in reports))
    fig = Figure(figsize=(width * len(reports), 3.8 if not title else 4.1))
    for i, report in enumerate(reports):
        s = report.settings
        ax = fig.add_subplot(1, len(reports), i + 1)
        positions = range(len(report.groups))
        means = [100 * g.mean for g in report.groups]
        ax.bar(positions, means, yerr=[100 * g.ci95 for g in report.groups], capsize=4, color="tab:blue")
        ax.axhline(100 / s.n_way, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(list(positions), [g.name for g in report.groups], rotation=30, ha="right")
        ax.set_xlabel("model")
        ax.set_ylabel("accuracy on novel classes (%)")
        ax.set_ylim(0, 100)
        ax.set_title(
            f"{s.n_way}-way {s.k_shot}-shot, {s.head.replace('_', ' ')} head\n{s.n_episodes} episodes, mean and 95% CI",
            fontsize="medium",
        )
        ax.legend(fontsize="small")
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
