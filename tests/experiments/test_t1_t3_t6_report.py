"""experiments/t1_t3_t6_report.py: the mean ± std tables of docs/results-t1-t3-t6.md, checked by hand."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

# the noise curve of both seed indices: (distance, test accuracy, mistake IoU); the seed is at 0.99
CURVE = [(0.1, 0.985, 0.8), (0.2, 0.97, 0.6)]


def _row(label: str, accuracy: float, iou: float, distance: float | None = None) -> dict:
    return {"label": label, "kind": "x", "distance": distance, "members": 4, "accuracy_mean": accuracy,
            "accuracy_median": accuracy, "accuracy_std": 0.001, "accuracy_min": accuracy - 0.01,
            "accuracy_max": accuracy + 0.01, "mistake_iou_mean": iou, "disagreement": 0.01, "relative_l2_mean": 0.1,
            "soft_vote_accuracy": accuracy + 0.002, "majority_vote_accuracy": accuracy, "soft_vote_nll": 0.05,
            "soft_vote_ece": 0.01, "cost_seconds": 10.0, "seconds_per_member": 2.5}  # fmt: skip


def _seed_index(out: Path, s: int, mge_accuracy: float, mge_iou: float, per_model: float, recorded: float) -> None:
    folder = out / f"seed{s}"
    rows = [_row("seed", 0.99, 1.0), _row("MGE", mge_accuracy, mge_iou), _row("noise_ungated", 0.95, 0.4)]
    rows += [_row(f"noise_curve d={d:g}", a, i, d) for d, a, i in CURVE]
    (folder / "t1_accuracy").mkdir(parents=True)
    (folder / "t1_accuracy" / "metrics.json").write_text(json.dumps({"job": {}, "eval": {"table": rows}}))
    test = {"seed_accuracy": 0.99, "accuracy": {"mean": mge_accuracy, "min": 0.9, "max": 0.99},
            "mistake_iou": {"mean": mge_iou}, "pairwise_disagreement": 0.01}  # fmt: skip
    generate = {"test": test, "n_candidates": 256, "n_passed": 120, "n_kept": 100, "acceptance_rate": 120 / 256,
                "rejected": {"non_finite": 0, "distribution": 0, "spectral": 36, "accuracy": 100},
                "last_threshold": 0.99, "seconds_per_kept_model": per_model, "time_ratio_per_model": 0.02,
                "time_reference": {"seconds": 40.0}, "seed_recorded_train_seconds": recorded}  # fmt: skip
    (folder / "t1_accuracy" / "members.csv").write_text(
        "label,kind,distance,member,test_accuracy,mistake_iou_with_seed,relative_l2_to_seed\n"
        "MGE,mge,,m0,0.98,0.5,0.1\n"  # curve at 0.98: 0.733, below
        "MGE,mge,,m1,0.975,0.7,0.1\n"  # curve at 0.975: 0.667, above
        "MGE,mge,,m2,0.999,0.7,0.1\n"  # more accurate than the curve: not counted
        "noise_curve,noise,0.1,m3,0.9,0.1,0.1\n"
    )
    (folder / "mge").mkdir()
    (folder / "mge" / "metrics.json").write_text(json.dumps({"job": {}, "generate": generate}))
    (folder / "stages.tsv").write_text(
        "stage\tstarted\tseconds\tload_before\tload_after\texit\tskipped\n"
        "MGE pool\t10:00:00\t30.0\t1 1 1\t2 2 2\t0\tno\n"
        "t1_accuracy\t10:01:00\t9.0\t1 1 1\t2 2 2\t2\tno\n"  # failed, then rerun
        "MGE pool\t11:00:00\t2.5\t1 1 1\t1 1 1\t0\tyes\n"  # a rerun that skipped the finished stage
        "t1_accuracy\t11:00:03\t20.0\t1 1 1\t2 2 2\t0\tno\n"
    )


def _table(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as f:
        return {r["label"] + r.get("seed", ""): r for r in csv.DictReader(f)}


def test_tables_average_seed_indices_and_interpolate_the_noise_curve_at_each_pools_accuracy(tmp_path):
    _seed_index(tmp_path, 0, mge_accuracy=0.98, mge_iou=0.5, per_model=0.5, recorded=50.0)
    _seed_index(tmp_path, 1, mge_accuracy=0.975, mge_iou=0.7, per_model=0.3, recorded=60.0)
    (tmp_path / "seed2").mkdir()  # an unfinished seed index is left out
    result = subprocess.run(
        [sys.executable, "experiments/t1_t3_t6_report.py", str(tmp_path)],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    tables = tmp_path / "tables"

    t6 = _table(tables / "t6_per_seed.csv")
    # seed 0: 0.98 lies between (0.985, 0.8) and (0.97, 0.6): 0.8 - 0.2 * (0.005 / 0.015)
    assert float(t6["MGE0"]["curve_iou_at_accuracy"]) == pytest.approx(0.8 - 0.2 / 3)
    assert float(t6["MGE0"]["iou_minus_curve"]) == pytest.approx(0.5 - (0.8 - 0.2 / 3))
    assert float(t6["MGE1"]["curve_iou_at_accuracy"]) == pytest.approx(0.8 - 0.2 * 2 / 3)
    assert float(t6["MGE0"]["members_below_curve"]) == 0.5
    assert t6["noise_ungated0"]["curve_iou_at_accuracy"] == ""  # 0.95: below the curve's last point
    assert t6["noise_curve d=0.10"]["curve_iou_at_accuracy"] == ""
    mean6 = _table(tables / "t6.csv")["MGE"]
    assert float(mean6["curve_iou_at_accuracy"]) == pytest.approx(0.7)
    assert float(mean6["curve_iou_at_accuracy_std"]) == pytest.approx((0.2 / 3) / 2**0.5)
    assert float(mean6["mistake_iou_mean"]) == pytest.approx(0.6) and mean6["seeds"] == mean6["curve_seeds"] == "2"
    assert _table(tables / "t6.csv")["noise_ungated"]["curve_seeds"] == "0"

    t1 = _table(tables / "t1.csv")
    assert set(t1) == {"seed", "MGE", "noise_ungated"}  # curve distances are T6's
    assert float(t1["MGE"]["accuracy_mean"]) == pytest.approx(0.9775)
    assert float(t1["MGE"]["accuracy_mean_std"]) == pytest.approx(0.005 / 2**0.5)
    assert float(t1["MGE"]["soft_vote_gain"]) == pytest.approx(0.9775 + 0.002 - 0.99)
    assert t1["seed"]["soft_vote_gain"] == ""

    t3 = _table(tables / "t3.csv")["MGE"]
    assert float(t3["ratio_to_recorded_training"]) == pytest.approx((0.5 / 50 + 0.3 / 60) / 2)
    assert float(t3["rejected_accuracy"]) == 100 and float(t3["acceptance"]) == pytest.approx(120 / 256)

    with (tables / "stages.csv").open() as f:
        stages = list(csv.DictReader(f))
    timings = [(r["seed"], r["stage"], r["seconds"], r["exit"]) for r in stages]  # the last run of each, not a skip
    ran = (("MGE pool", "30.0"), ("t1_accuracy", "20.0"))
    assert timings == [(s, stage, seconds, "0") for s in "01" for stage, seconds in ran]
    assert "| MGE" in result.stdout and "± " in (tables / "t1.md").read_text()
