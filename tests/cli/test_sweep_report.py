"""The multirun-end callback: its table is ordered by group then x, and it checks its columns."""

import csv
import json

import pytest

from mge.cli.sweep_report import SweepReport

COLUMNS = {"dataset": "metrics.dataset", "t": "override.generator.threshold", "acc": "metrics.acc"}


def test_report_orders_rows_by_group_then_x(tmp_path):
    jobs = [("mnist", 0.99), ("fmnist", 0.9), ("mnist", 0.9), ("fmnist", 0.99)]
    for num, (dataset, t) in enumerate(jobs):
        (tmp_path / str(num) / ".hydra").mkdir(parents=True)
        (tmp_path / str(num) / ".hydra" / "overrides.yaml").write_text(f"- generator.threshold={t}\n")
        (tmp_path / str(num) / "metrics.json").write_text(json.dumps({"dataset": dataset, "acc": t / 2}))
    report = SweepReport("t3", COLUMNS, x="t", plots=["acc"], group="dataset")
    report.report(tmp_path)
    with (tmp_path / "t3.csv").open() as f:
        order = [(r["dataset"], r["t"]) for r in csv.DictReader(f)]
    assert order == [("fmnist", "0.9"), ("fmnist", "0.99"), ("mnist", "0.9"), ("mnist", "0.99")]
    assert (tmp_path / "t3.png").is_file() and (tmp_path / "t3.md").is_file()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"plots": ["novelty"]}, "not among its columns"),
        ({"x_scale": "logarithmic"}, "unknown x_scale 'logarithmic'"),
        ({"columns": {**COLUMNS, "bad": "config.n"}}, "must start with"),
    ],
)
def test_bad_report_settings_are_refused_when_the_callback_is_built(kwargs, match):
    settings = {"name": "t3", "columns": COLUMNS, "x": "t", "plots": ["acc"], **kwargs}
    with pytest.raises(ValueError, match=match):
        SweepReport(**settings)
