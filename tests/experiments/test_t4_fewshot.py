"""conf/experiment/t4_fewshot.yaml: a real Hydra multirun that ends with its table, on digits and on
mini-ImageNet in its real on-disk format (Conv-4 seeds trained by ``train``, pools from them)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

from mge.cli.fewshot_sweep import fewshot_rows, pivot
from mge.cli.sweep_report import main as sweep_report_main
from mge.cli.train import train
from mge.pool import Pool
from mge.runs import BaselineSettings, make_baseline
from mge.runs.baselines import IndependentSettings
from tests.data.fake_data import write_fake_mini_imagenet
from tests.helpers import QUIET_TRAIN, REPO_ROOT, compose_config, mge_pool_of

FAST = ["fewshot.n_episodes=30", "fewshot.random_init_models=1", "device=cpu"]


def t4_sweep(t4_root: Path, sweep: Path, dataset: str, *extra: str) -> subprocess.CompletedProcess:
    """``mge-fewshot -m experiment=t4_fewshot`` on the layout experiments/t4_fewshot.sh builds under ``t4_root``."""
    return subprocess.run(
        [sys.executable, "-m", "mge.cli.fewshot", "-m", "experiment=t4_fewshot", f"t4.dataset={dataset}",
         f"t4.dir={t4_root}/${{t4.dataset}}", *FAST, *extra, f"hydra.sweep.dir={sweep}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_t4_sweep_writes_a_row_per_setting_head_and_model_and_the_table(fewshot_pools, tmp_path) -> None:
    layout = tmp_path / "t4" / "digits"
    shutil.copytree(fewshot_pools["MGE"], layout / "mge" / "pool")
    shutil.copytree(fewshot_pools["independent"], layout / "independent")
    sweep = tmp_path / "sweep"
    result = t4_sweep(tmp_path / "t4", sweep, "digits", "fewshot.k_shot=1,2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_rows(sweep / "t4_fewshot.csv")
    models = ["random init", "seed", "MGE best", "MGE ensemble", "independent best", "independent ensemble"]
    assert len(rows) == 2 * 2 * len(models)  # k_shot x heads x models
    assert {(r["k_shot"], r["head"]) for r in rows} == {(k, h) for k in "12" for h in ("prototype", "linear_probe")}
    assert [r["model"] for r in rows[: len(models)]] == models
    table = (sweep / "t4_fewshot.md").read_text()
    assert "digits 5-way 1-shot prototype" in table and "digits 5-way 2-shot linear_probe" in table
    assert table.count("| independent ensemble") == 1
    assert (sweep / "t4_fewshot.png").stat().st_size > 0
    (sweep / "t4_fewshot.md").unlink()
    assert sweep_report_main([str(sweep)]) == 0  # mge-report rebuilds the table from the jobs
    assert (sweep / "t4_fewshot.md").read_text() == table


def test_pivot_puts_models_down_and_settings_across_and_skips_failed_jobs() -> None:
    row = {"dataset": "mnist", "n_way": 5, "head": "prototype", "features": "raw", "use": "each"}
    jobs = [
        {"job": "0", "metrics": {"fewshot": {"rows": [{**row, "k_shot": 5, "model": "seed", "accuracy": 0.5,
                                                       "ci95": 0.01}]}}},
        {"job": "1", "metrics": None},
        {"job": "2", "metrics": {"fewshot": {"rows": [
            {**row, "k_shot": 1, "model": "seed", "accuracy": 0.25, "ci95": 0.02},
            {**row, "k_shot": 1, "model": "MGE best", "accuracy": 0.3, "ci95": 0.02}]}}},
    ]  # fmt: skip
    rows = fewshot_rows(jobs)
    assert [r["job"] for r in rows] == ["0", "2", "2"]
    headers, table = pivot(rows)
    assert headers == ["model", "mnist 5-way 1-shot prototype", "mnist 5-way 5-shot prototype"]
    assert table == [["seed", "25.00 +- 2.00", "50.00 +- 1.00"], ["MGE best", "30.00 +- 2.00", ""]]


def test_mini_imagenet_t4_runs_end_to_end_on_its_real_on_disk_format(tmp_path) -> None:
    """Conv-4 seeds on the train.csv classes, an MGE and an independent pool, episodes on the test.csv classes."""
    root = tmp_path / "data"
    write_fake_mini_imagenet(root, classes={"train": 3, "val": 2, "test": 5}, per_class=8)
    layout = tmp_path / "t4" / "mini_imagenet"
    for seed in range(3):  # seed 0 is the seed; 1 and 2 the independent pool
        overrides = [*QUIET_TRAIN, "dataset=mini_imagenet", f"data.root={root}", "data.num_workers=0",
                     "data.batch_size=8", "data.discriminator_size=6", "+model.kwargs.hidden_channels=4",
                     "callbacks=none", "debug=fast", f"seed={seed}"]  # fmt: skip
        train(compose_config("train", overrides, layout / f"seed{seed}"))
    mge_pool_of(layout / "seed0", layout / "mge" / "pool", n=3, max_distance=1e6)
    runs = IndependentSettings(runs=[str(layout / "seed1"), str(layout / "seed2")])
    settings = BaselineSettings(runs, seed_model=layout / "seed0", pool_dir=layout / "independent", device="cpu")
    independent = make_baseline(settings).pool
    assert "features.0.1.running_mean" in independent.targets  # Conv-4's BatchNorm statistics travel with members
    sweep = tmp_path / "sweep"
    result = t4_sweep(tmp_path / "t4", sweep, "mini_imagenet", "fewshot.k_shot=1", "fewshot.q_query=5")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_rows(sweep / "t4_fewshot.csv")
    assert {r["dataset"] for r in rows} == {"mini_imagenet"} and len(rows) == 2 * 6
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    assert len(Pool.load(layout / "mge" / "pool")) == 3
    assert "mini_imagenet 5-way 1-shot prototype" in (sweep / "t4_fewshot.md").read_text()
