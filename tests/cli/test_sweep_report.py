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


def test_a_seeded_report_writes_the_aggregate_and_the_per_seed_table_and_mge_report_rebuilds_them(tmp_path):
    from mge.cli.sweep_report import main as mge_report

    columns = {"t": "override.generator.threshold", "seed": "override.seed", "acc": "metrics.acc"}
    for num, (t, seed, acc) in enumerate([(0.9, 0, 0.5), (0.9, 1, 0.7), (0.99, 0, 0.9)]):
        (tmp_path / str(num) / ".hydra").mkdir(parents=True)
        (tmp_path / str(num) / ".hydra" / "overrides.yaml").write_text(f"- generator.threshold={t}\n- seed={seed}\n")
        (tmp_path / str(num) / "metrics.json").write_text(json.dumps({"acc": acc}))
    settings = {"name": "t3", "columns": columns, "x": "t", "plots": ["acc"], "seed": "seed"}
    SweepReport(**settings).report(tmp_path)
    with (tmp_path / "t3.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["t"], float(r["acc"]), r["seeds"]) for r in rows] == [("0.9", 0.6, "2"), ("0.99", 0.9, "1")]
    assert (tmp_path / "t3_per_seed.csv").read_text().count("\n") == 4
    (tmp_path / "t3.csv").unlink()
    (tmp_path / "multirun.yaml").write_text(
        json.dumps({"hydra": {"callbacks": {"t3": {"_target_": "mge.cli.sweep_report.SweepReport", **settings}}}})
    )
    assert mge_report([str(tmp_path)]) == 0
    assert (tmp_path / "t3.csv").is_file()
    assert mge_report([str(tmp_path / "nowhere")]) == 2
