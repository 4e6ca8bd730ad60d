"""What a sweeper optimises: a named figure, NaN under the floor."""

import math

import pytest

from mge.cli.objective import Objective, figure

METRICS = {"generate": {"test": {"seed_accuracy": 0.99, "accuracy": {"mean": 0.987}, "mistake_iou": {"mean": 0.6}}}}


def test_the_objective_is_the_named_figure():
    assert Objective("generate.test.mistake_iou.mean")(METRICS) == 0.6
    assert Objective()(METRICS) is None
    assert math.isnan(figure(METRICS, "generate.test.absent.mean"))
    assert math.isnan(figure({"generate": {"test": {"accuracy": None}}}, "generate.test.accuracy.mean"))


def test_a_run_under_the_floor_is_a_failed_trial():
    at_floor = Objective(
        "generate.test.mistake_iou.mean", "generate.test.accuracy.mean", -0.005, "generate.test.seed_accuracy"
    )
    assert at_floor(METRICS) == 0.6  # 0.987 >= 0.99 - 0.005
    stricter = Objective(
        "generate.test.mistake_iou.mean", "generate.test.accuracy.mean", -0.001, "generate.test.seed_accuracy"
    )
    assert math.isnan(stricter(METRICS))
    assert math.isnan(Objective("generate.test.mistake_iou.mean", "generate.test.accuracy.mean", 0.5)({"generate": {}}))


def test_a_floor_needs_its_figure():
    with pytest.raises(ValueError, match="floor_metric"):
        Objective("a.b", floor_relative_to="c")
    with pytest.raises(ValueError, match="finite"):
        Objective("a.b", "c", float("nan"))
