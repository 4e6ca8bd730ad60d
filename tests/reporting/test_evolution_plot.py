"""The history figure of an E-MGE run: one labelled panel per quantity against the generation."""

from mge.reporting import plot_history


def test_history_curves_are_labelled_in_words_and_skip_what_generation_0_lacks():
    history = [
        {"generation": g, "best_fitness": 1.0 + g, "mean_fitness": 0.9 + g, "mean_accuracy": 0.9,
         "diversity": 0.01, "acceptance": None if g == 0 else 0.5, "total_forward_passes": 1000 * (g + 1)}
        for g in range(4)
    ]  # fmt: skip
    fig = plot_history(history, title="E-MGE")
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["Fitness", "Quality", "Diversity", "Gating"]
    assert all(ax.get_xlabel() == "generation" and len(ax.get_ylabel().split()) >= 3 for ax in axes)
    fitness_lines = axes[0].get_lines()
    assert [line.get_label() for line in fitness_lines] == ["best", "mean"]
    assert list(fitness_lines[0].get_xdata()) == [0, 1, 2, 3]
    assert list(axes[3].get_lines()[0].get_xdata()) == [1, 2, 3]  # no acceptance for the initial population
    assert "4,000 forward passes" in fig._suptitle.get_text()
