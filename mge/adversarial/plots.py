"""PNG figures of an :class:`~mge.adversarial.evaluate.AdversarialReport` (table T5)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

from mge.adversarial.evaluate import SEED, AdversarialReport

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn, not with mge.adversarial
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

EPS_LABEL = "perturbation budget eps (L-inf, pixels in [0, 1])"
# (defence, attack, panel title): the pool's robust accuracy as a single member and as each defence
PANELS = (
    ("member", "pgd_seed", "each member, PGD transferred from the seed (mean)"),
    ("majority_vote", "worst_case", "majority vote, worst case over attacks"),
    ("random_member", "worst_case", "random member per query, worst case over attacks"),
)


def plot_robust_accuracy(report: AdversarialReport, path: str | Path) -> Path:
    """Robust accuracy against eps, one line per pool kind, one panel per defence.

    Every panel repeats the seed's white-box PGD accuracy (dashed): what an attacker who knows
    the single seed achieves, the reference a pool defence has to beat.
    """
    from matplotlib.figure import Figure  # not pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(4.4 * len(PANELS), 3.6))
    seed_curve = report.accuracy(SEED, "seed", "pgd_seed")
    for i, (defence, attack, title) in enumerate(PANELS):
        ax = fig.add_subplot(1, len(PANELS), i + 1)
        ax.plot(*zip(*seed_curve, strict=True), "k--", marker="x", label="seed, white-box PGD")
        for pool in report.pools:
            curve = report.accuracy(pool, defence, attack)
            ax.plot(*zip(*curve, strict=True), marker="o", label=pool)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(EPS_LABEL)
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{report.n_evaluated} test examples that every model classifies correctly")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def _draw_matrix(ax: Axes, matrix: Tensor, members: list[int] | None) -> AxesImage:
    """One heatmap of accuracies on ``ax``, values written in when they stay readable."""
    s = matrix.shape[0]
    labels = [str(m) for m in (members if members is not None else range(s))]
    image = ax.imshow(matrix.double().cpu().numpy(), vmin=0.0, vmax=1.0, cmap="viridis")
    if s <= 12:  # the values stay readable
        for i in range(s):
            for j in range(s):
                value = float(matrix[i, j])
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < 0.6 else "k")
    ax.set_xticks(range(s), labels)
    ax.set_yticks(range(s), labels)
    return image


def plot_transfer_matrix(
    matrix: Tensor, path: str | Path, *, title: str = "", members: list[int] | None = None
) -> Path:
    """Heatmap of a member-to-member transfer matrix ``(S, S)`` of accuracies.

    Args:
        matrix: row i, column j: accuracy of member j on the PGD examples made on member i.
        path: the PNG to write.
        title: e.g. the pool and eps.
        members: the members' indices in their pool, to label the axes (default 0..S-1).
    """
    from matplotlib.figure import Figure

    s = matrix.shape[0]
    fig = Figure(figsize=(1.2 + 0.45 * s, 0.8 + 0.45 * s))
    ax = fig.add_subplot(1, 1, 1)
    image = _draw_matrix(ax, matrix, members)
    ax.set_xlabel("member evaluated on the examples")
    ax.set_ylabel("member the PGD examples were made on")
    fig.colorbar(image, ax=ax, label="accuracy")
    if title:
        ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def plot_transfer_matrices(report: AdversarialReport, path: str | Path, *, title: str = "") -> Path:
    """Every pool's transfer matrix at every eps in one figure: a row per eps, a column per pool.

    Member indices label the axes (their positions in the stacks the report was given). Low
    off-diagonal values mean the members share their vulnerabilities (examples made on one fool
    the others); high ones, that they do not.
    """
    from matplotlib.figure import Figure

    eps = list(report.settings.eps)
    pools = [p for p in report.pools if report.transfer_matrices.get(p)]
    s = max(report.transfer_matrices[p][e].shape[0] for p in pools for e in eps)
    side = 1.2 + 0.4 * s
    fig = Figure(figsize=(side * len(pools) + 1.2, side * len(eps) + 0.8), layout="constrained")
    axes = fig.subplots(len(eps), len(pools), squeeze=False)
    image = None
    for i, e in enumerate(eps):
        for j, pool in enumerate(pools):
            ax = axes[i][j]
            image = _draw_matrix(ax, report.transfer_matrices[pool][e], report.matrix_members[pool])
            ax.set_title(f"{pool}, eps = {e:g}", fontsize="medium")
            if i == len(eps) - 1:
                ax.set_xlabel("evaluated member")
            if j == 0:
                ax.set_ylabel("member attacked (PGD)")
    if image is not None:
        fig.colorbar(image, ax=axes, label="accuracy", shrink=0.6)
    fig.suptitle(title or f"member-to-member PGD transfer ({report.n_evaluated} examples)")
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
