"""experiments/discriminator_ablation.py measures what docs/discriminator.md reports."""

import json
import os
import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_every_combination_accounts_for_every_candidate(digits_seed_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "experiments/discriminator_ablation.py", str(digits_seed_dir), "--threshold", "0.99",
         "--rounds", "1", "--batch", "8", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    ablation = json.loads((tmp_path / "ablation.json").read_text())
    assert ablation["candidates"] == 8
    combinations = {row["combination"]: row for row in ablation["combinations"]}
    assert combinations["no test"]["mge"]["accepted"] == 8
    for row in ablation["combinations"]:
        for pool in ("mge", "noise"):
            r = row[pool]
            assert r["accepted"] + sum(v["count"] for v in r["removed"].values()) == 8
            assert set(r["removed"]) <= {"non_finite", "distribution", "spectral", "accuracy"}
    assert set(combinations["W1 only"]["noise"]["removed"]) <= {"distribution"}
    assert 0.0 <= ablation["separation"]["spectral"]["auc"] <= 1.0
    assert "| spectral only" in result.stdout
