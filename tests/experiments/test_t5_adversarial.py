"""conf/experiment/t5_adversarial.yaml: a real Hydra multirun over two pool folders that ends with its table."""

import csv
import json
import os
import subprocess
import sys

from mge.pool import load_seed
from tests.helpers import REPO_ROOT, write_noise_pool


def test_the_sweep_over_pool_folders_writes_one_row_per_dataset_eps_and_pool(digits_seed_dir, tmp_path):
    seed = load_seed(digits_seed_dir)
    folders = []
    for i in range(2):  # two "datasets": the experiment's layout of pools in a folder each
        folder = tmp_path / f"artifacts{i}"
        write_noise_pool(folder / "seed0-mge" / "pool", seed, 3, 0.05, rng_seed=10 * i + 1)
        write_noise_pool(folder / "baselines" / "noise_gated" / "pool", seed, 3, 0.1, rng_seed=10 * i + 2)
        folders.append(str(folder))
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [sys.executable, "-m", "mge.cli.attack", "-m", "experiment=t5_adversarial", f"artifacts={','.join(folders)}",
         "pools.E-MGE=null", "pools.independent=null", "eps=[0.1,0.2]", "steps=2", "examples=20", "members=2",
         "matrix_members=2", f"hydra.sweep.dir={sweep}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with (sweep / "t5_adversarial.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2  # jobs x eps x pools
    assert {(r["pool"], r["eps"]) for r in rows} == {(p, e) for p in ("MGE", "noise") for e in ("0.1", "0.2")}
    assert all(r["dataset"] == "digits" and r["members"] == "2" and r["examples"] == "20" for r in rows)
    assert all(float(r["vote_worst_case"]) <= float(r["vote_transfer"]) for r in rows)
    assert (sweep / "t5_adversarial.png").stat().st_size > 0 and (sweep / "t5_adversarial.md").is_file()
    assert (sweep / "0" / "transfer_matrices.png").is_file() and (sweep / "1" / "t5.md").is_file()
    metrics = json.loads((sweep / "1" / "metrics.json").read_text())["attack"]  # what each job's main() wrote
    assert metrics["pools"]["noise"]["path"].startswith(folders[1]) and metrics["seed"]["pool"] == "MGE"
    assert result.stdout.count("run folder:") == 2 and "vote, worst case" in result.stdout
