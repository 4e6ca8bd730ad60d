"""The report: the 95% CI as computed by hand, table rows, the dict, the plot; settings and groups validated."""

from __future__ import annotations

import json
import math

import pytest
import torch
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from mge.fewshot import HEADERS, FewShotReport, FewShotSettings, GroupResult, ModelGroup, ci95
from mge.reporting import markdown_table


def result(name: str, accuracies: list[float], use: str = "each") -> GroupResult:
    as64 = torch.tensor(accuracies, dtype=torch.float64)  # exact decimal-ish values for the hand computation
    return GroupResult(name, use, 2, None, as64, torch.tensor([0.5, 0.6], dtype=torch.float64))


def test_ci95_is_1_96_sample_std_over_sqrt_episodes() -> None:
    accuracies = [0.5, 0.7, 0.9, 0.6]
    mean = sum(accuracies) / 4
    sample_std = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / (4 - 1))
    assert ci95(torch.tensor(accuracies, dtype=torch.float64)) == pytest.approx(
        1.96 * sample_std / math.sqrt(4), rel=1e-12
    )
    assert result("a", accuracies).mean == pytest.approx(mean)
    assert ci95(torch.full((600,), 0.8)) == 0.0
    with pytest.raises(ValueError, match="at least 2 episodes, got 1"):
        ci95(torch.tensor([0.5]))


def report() -> FewShotReport:
    settings = FewShotSettings(n_way=5, k_shot=1, n_episodes=4)
    groups = (result("seed", [0.5, 0.7, 0.9, 0.6]), result("MGE ensemble", [0.6, 0.8, 1.0, 0.7], "ensemble"))
    return FewShotReport(settings=settings, n_classes=5, n_images=100, groups=groups)


def test_rows_and_dict() -> None:
    rows = report().rows()
    assert rows[0][:3] == ["seed", "each", 2]
    assert rows[1][3] == pytest.approx(77.5) and rows[1][4] == pytest.approx(100 * report().groups[1].ci95, abs=0.01)
    assert "| MGE ensemble | ensemble |" in markdown_table(HEADERS, rows)
    d = json.loads(json.dumps(report().to_dict()))
    assert d["settings"] == {
        "n_way": 5, "k_shot": 1, "q_query": 15, "n_episodes": 4, "seed": 0, "head": "prototype", "features": "raw"
    }  # fmt: skip
    assert d["groups"][0]["accuracy"] == pytest.approx(0.675) and d["groups"][0]["member_accuracy"] == [0.5, 0.6]
    assert d["groups"][1]["ci95"] == pytest.approx(report().groups[1].ci95)


def test_plot_has_a_bar_and_a_whisker_per_group_and_worded_axes() -> None:
    fig = report().plot()
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert [p.get_height() for p in ax.patches] == pytest.approx([67.5, 77.5])
    assert ax.get_xlabel() == "model" and ax.get_ylabel() == "accuracy on novel classes (%)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["seed", "MGE ensemble"]
    assert "5-way 1-shot" in ax.get_title() and "95% CI" in ax.get_title()
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    whiskers = bars.errorbar.lines[2][0].get_segments()  # one vertical segment per bar
    assert [round(float(s[1][1] - s[0][1]) / 2, 6) for s in whiskers] == [
        round(100 * g.ci95, 6) for g in report().groups
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_way": 1}, "n_way must be an integer >= 2, got 1"),
        ({"k_shot": 0}, "k_shot must be an integer >= 1, got 0"),
        ({"q_query": 2.0}, "q_query must be an integer >= 1, got 2.0"),
        ({"n_episodes": 1}, "n_episodes must be an integer >= 2, got 1"),
        ({"seed": True}, "seed must be an integer >= 0, got True"),
        ({"head": "svm"}, r"Unknown head 'svm'. Valid values are \['linear_probe', 'prototype'\]"),
    ],
)
def test_settings_are_validated(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        FewShotSettings(**kwargs)


def test_settings_defaults_are_the_standard_protocol() -> None:
    s = FewShotSettings()
    assert (s.n_way, s.k_shot, s.q_query, s.n_episodes, s.head) == (5, 1, 15, 600, "prototype")


PARAMS = {"w": torch.zeros(3, 2)}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "non-empty name"),
        ({"use": "vote"}, r"Unknown use 'vote' for group 'g'. Valid values are \['each', 'best', 'ensemble'\]"),
        ({"params": {}}, "has no parameters"),
        ({"params": {"w": torch.zeros(3, 2), "b": torch.zeros(2)}}, "disagree on the number of models"),
        ({"use": "best"}, "uses its best member but has no scores.*discriminator split"),
        ({"use": "best", "scores": torch.tensor([1.0, 2.0])}, r"3 finite values, one per member; got shape \(2,\)"),
        ({"use": "best", "scores": torch.tensor([1.0, float("nan"), 0.0])}, "finite values"),
        ({"scores": torch.ones(3)}, "only used with use='best'"),
    ],
)
def test_groups_are_validated(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ModelGroup(**({"name": "g", "params": PARAMS} | kwargs))
