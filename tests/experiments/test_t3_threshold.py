"""conf/experiment/t3_threshold.yaml: a real Hydra multirun that ends with its table and plot."""

import csv
import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_threshold_sweep_writes_one_row_per_t_with_its_acceptance_and_mistake_iou(digits_seed_dir, tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "mge.cli.generate", "-m", "experiment=t3_threshold", f"seed_model={digits_seed_dir}",
         "generator.threshold=0.99,1.0", "generator.batch_size=8", "time_probe_steps=1",
         f"hydra.sweep.dir={sweep}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (sweep / "t3_threshold_per_seed.csv").open() as f:
        rows = {float(r["t"]): r for r in csv.DictReader(f)}
    with (sweep / "t3_threshold.csv").open() as f:
        assert [r["seeds"] for r in csv.DictReader(f)] == ["1", "1"]  # one seed model: its own mean
    assert set(rows) == {0.99, 1.0}
    assert all(r["dataset"] == "digits" and r["candidates"] == "8" for r in rows.values())
    exact = rows[1.0]  # t = 1 copies the seed: all accepted, the seed's mistakes exactly
    assert float(exact["acceptance"]) == 1.0 and float(exact["mistake_iou_mean"]) == 1.0
    assert float(exact["accuracy_mean"]) == float(exact["seed_accuracy"])
    lossy = rows[0.99]
    assert int(lossy["passed"]) == round(float(lossy["acceptance"]) * 8) >= int(lossy["kept"])
    assert (sweep / "t3_threshold.png").stat().st_size > 0 and (sweep / "t3_threshold.md").is_file()
