"""Sweep tables: one row per Hydra job, from its overrides and metrics.json."""

import csv
import json

import pytest

from mge.reporting.sweep import aggregate, collect_jobs, order_key, plot_sweep, sweep_rows, write_table

COLUMNS = {"t": "override.generator.threshold", "acc": "metrics.test.accuracy.mean", "name": "metrics.dataset"}


def write_job(sweep, num, overrides, metrics=None):
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def sweep(tmp_path):
    write_job(
        tmp_path,
        0,
        ["generator.threshold=0.99", "seed_model=a"],
        {"dataset": "mnist", "test": {"accuracy": {"mean": 0.97}}},
    )
    write_job(tmp_path, 10, ["generator.threshold=0.999"], {"dataset": "mnist", "test": {"accuracy": None}})
    write_job(tmp_path, 2, ["generator.threshold=0.9"])  # a failed job: no metrics.json
    (tmp_path / "multirun.yaml").write_text("{}")
    return tmp_path


def test_rows_follow_job_order_with_typed_overrides_and_missing_values_as_none(sweep):
    rows = sweep_rows(collect_jobs(sweep), COLUMNS)
    assert rows == [
        {"t": 0.99, "acc": 0.97, "name": "mnist"},
        {"t": 0.9, "acc": None, "name": None},
        {"t": 0.999, "acc": None, "name": "mnist"},
    ]


def test_markdown_and_csv_hold_the_same_rows(sweep, tmp_path):
    rows = sweep_rows(collect_jobs(sweep), COLUMNS)
    md, csv_path = write_table(rows, tmp_path / "out", "t3")
    with csv_path.open() as f:
        read = list(csv.DictReader(f))
    assert [r["t"] for r in read] == ["0.99", "0.9", "0.999"]
    assert read[1]["acc"] == ""
    lines = md.read_text().splitlines()
    assert lines[0].split("|")[1].strip() == "t" and len(lines) == 2 + len(rows)


def test_plot_writes_a_png_even_where_values_are_missing(sweep, tmp_path):
    rows = sweep_rows(collect_jobs(sweep), COLUMNS)
    png = plot_sweep(rows, "t", ["acc"], tmp_path / "t3.png", group="name", x_scale="logit")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_folder_without_jobs_or_a_bad_column_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Hydra job folders"):
        collect_jobs(tmp_path)
    with pytest.raises(FileNotFoundError, match="No sweep folder"):
        collect_jobs(tmp_path / "absent")
    write_job(tmp_path, 0, ["a=1"], {})
    with pytest.raises(ValueError, match="must start with"):
        sweep_rows(collect_jobs(tmp_path), {"a": "config.a"})


def test_a_corrupt_metrics_file_is_named(tmp_path):
    write_job(tmp_path, 0, ["a=1"])
    (tmp_path / "0" / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"0/metrics.json is not valid JSON"):
        collect_jobs(tmp_path)


def test_override_values_get_the_types_hydra_gave_the_job(tmp_path):
    write_job(tmp_path, 0, ["generator.threshold=1e-3", "tag=on", "+extra=2", "seed_model=outputs/results/mnist"], {})
    override = collect_jobs(tmp_path)[0]["override"]
    assert override == {"generator.threshold": 0.001, "tag": "on", "extra": 2, "seed_model": "outputs/results/mnist"}


def test_cells_of_mixed_types_sort_numbers_first_then_text_then_missing():
    assert sorted([None, "b", 0.5, "a", 2, None, 0.1], key=order_key) == [0.1, 0.5, 2, "a", "b", None, None]


def seeded_sweep(tmp_path):
    """Two datasets x two thresholds x two seeds, with made-up accuracies."""
    accuracy = {("mnist", 0.99): (0.98, 0.96), ("mnist", 0.9): (0.90, 0.94), ("fmnist", 0.99): (0.88, 0.86)}
    num = 0
    for (dataset, t), values in accuracy.items():
        for seed, acc in enumerate(values):
            write_job(tmp_path, num, [f"generator.threshold={t}", f"seed={seed}"],
                      {"generate": {"dataset": dataset, "acc": acc, "note": "same"}})  # fmt: skip
            num += 1
    return tmp_path


SEEDED = {"dataset": "metrics.generate.dataset", "t": "override.generator.threshold", "seed": "override.seed",
          "acc": "metrics.generate.acc", "note": "metrics.generate.note"}  # fmt: skip


def test_aggregated_rows_are_the_mean_std_and_count_over_seeds(tmp_path):
    rows = sweep_rows(collect_jobs(seeded_sweep(tmp_path)), SEEDED)
    table = {(r["dataset"], r["t"]): r for r in aggregate(rows, ["dataset", "t"], "seed")}
    mnist = table[("mnist", 0.99)]
    assert mnist["acc"] == pytest.approx(0.97) and mnist["seeds"] == 2
    assert mnist["acc_std"] == pytest.approx(((0.98 - 0.97) ** 2 + (0.96 - 0.97) ** 2) ** 0.5)  # ddof 1
    assert table[("mnist", 0.9)]["acc"] == pytest.approx(0.92) and table[("fmnist", 0.99)]["note"] == "same"
    md, _ = write_table(list(table.values()), tmp_path / "out", "t")
    assert "0.97 ± 0.014" in md.read_text()


def test_rows_can_come_from_each_entry_of_a_job(tmp_path):
    write_job(tmp_path, 0, ["seed=0"], {"evaluate": {"pools": {"MGE": {"acc": 0.9}, "noise": {"acc": 0.8}}}})
    write_job(tmp_path, 1, ["seed=1"], {"evaluate": {"pools": [{"label": "MGE", "acc": 0.7}]}})
    columns = {"pool": "row.label", "acc": "row.acc", "seed": "override.seed"}
    rows = sweep_rows(collect_jobs(tmp_path), columns, rows_from="metrics.evaluate.pools")
    assert rows == [
        {"pool": "MGE", "acc": 0.9, "seed": 0},
        {"pool": "noise", "acc": 0.8, "seed": 0},
        {"pool": "MGE", "acc": 0.7, "seed": 1},
    ]
    png = plot_sweep(rows, "pool", ["acc"], tmp_path / "bars.png", seed="seed", labels={"acc": "test accuracy"})
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_seeded_plots_keep_groups_apart_and_draw_the_reference(tmp_path):
    rows = sweep_rows(collect_jobs(seeded_sweep(tmp_path)), SEEDED)
    for row in rows:
        row["seed_acc"] = 0.99
    png = plot_sweep(rows, "t", ["acc"], tmp_path / "p.png", group="dataset", seed="seed", x_scale="logit",
                     references={"acc": "seed_acc"}, labels={"t": "energy threshold t"})  # fmt: skip
    assert png.stat().st_size > 0
