"""PNG figures of an adversarial report."""

import torch

from mge.adversarial import (
    AdversarialSettings,
    evaluate_adversarial,
    plot_robust_accuracy,
    plot_transfer_matrices,
    plot_transfer_matrix,
)
from tests.adversarial.conftest import MEAN, STD, noisy_members

PNG = b"\x89PNG\r\n\x1a\n"


def test_robust_accuracy_and_transfer_matrix_plots_are_written_as_png(trained, tmp_path):
    settings = AdversarialSettings(eps=(0.05, 0.1), pgd_steps=2, matrix_members=2)
    pools = {"noise": noisy_members(trained.seed, 3), "wide": noisy_members(trained.seed, 2, scale=0.2)}
    report = evaluate_adversarial(
        trained.model, trained.seed, pools, trained.x[:60], trained.y[:60], MEAN, STD, settings
    )
    curve = plot_robust_accuracy(report, tmp_path / "robust.png")
    matrix = report.transfer_matrices["noise"][0.1]
    heatmap = plot_transfer_matrix(matrix, tmp_path / "matrix.png", title="noise, eps 0.1", members=[4, 7])
    grid = plot_transfer_matrices(report, tmp_path / "matrices.png")  # a row per eps, a column per pool
    for path in (curve, heatmap, grid):
        assert path.read_bytes().startswith(PNG)
    big = plot_transfer_matrix(torch.rand(20, 20), tmp_path / "big.png")  # too many cells to annotate
    assert big.stat().st_size > 0
