"""A table as a sweep: T2 on digits, 2 seeds x 2 architectures, with each launcher; a rerun skips finished jobs."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

TINY = ["debug=fast", "trainer.enable_progress_bar=false", "time_probe_steps=1"]


def sweep(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mge.cli.main", "-m", "experiment=t2_time", "seed=0,1", "model=digits_cnn,mlp",
         *TINY, f"hydra.sweep.dir={folder}", *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "WANDB_SILENT": "true"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("t2") / "sweep"
    result = sweep(folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


def test_the_report_equals_a_hand_computation_from_the_jobs_metrics(basic):
    folder, _ = basic
    jobs = [json.loads((folder / str(i) / "metrics.json").read_text()) for i in range(4)]
    with (folder / "t2_time.csv").open() as f:
        table = {(r["dataset"], r["model"]): r for r in csv.DictReader(f)}
    assert set(table) == {("digits", "digits_cnn"), ("digits", "mlp")}
    for (_, model), row in table.items():
        ratios = [j["time"]["ratio_to_training_in_this_run"] for j in jobs if j["train"]["model"] == model]
        mean = sum(ratios) / 2
        std = (sum((r - mean) ** 2 for r in ratios) / 1) ** 0.5
        assert float(row["ratio_in_this_run"]) == pytest.approx(mean) and row["seeds"] == "2"
        assert float(row["ratio_in_this_run_std"]) == pytest.approx(std)
    with (folder / "t2_time_per_seed.csv").open() as f:
        assert sorted((r["model"], r["seed"]) for r in csv.DictReader(f)) == [
            ("digits_cnn", "0"), ("digits_cnn", "1"), ("mlp", "0"), ("mlp", "1")]  # fmt: skip
    assert (folder / "t2_time.png").stat().st_size > 0


def test_starting_the_sweep_again_skips_the_finished_jobs_and_rebuilds_the_report(basic):
    folder, _ = basic
    before = {i: (folder / str(i) / "metrics.json").read_text() for i in range(4)}
    again = sweep(folder)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("finished before:") == 4
    assert {i: (folder / str(i) / "metrics.json").read_text() for i in range(4)} == before


def test_the_joblib_launcher_gives_the_same_table_and_wandb_logs_the_report(basic, tmp_path):
    folder, _ = basic
    result = sweep(tmp_path / "joblib", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "logger=wandb")
    assert result.returncode == 0, result.stderr[-3000:]
    with (folder / "t2_time_per_seed.csv").open() as a, (tmp_path / "joblib" / "t2_time_per_seed.csv").open() as b:
        accuracy = [[r["seed_test_accuracy"] for r in csv.DictReader(f)] for f in (a, b)]
    assert accuracy[0] == accuracy[1]  # the same seeds train the same models under either launcher
    reports = [
        p
        for p in (tmp_path / "joblib" / "wandb").glob("offline-run-*")
        if b"t2_time-report" in next(p.glob("run-*.wandb")).read_bytes()
    ]
    assert len(reports) == 1 and b"t2_time.csv" in next(reports[0].glob("run-*.wandb")).read_bytes()
