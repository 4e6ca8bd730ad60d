"""benchmarks/bench_mge.py --quick runs end to end and writes the JSON the docs read."""

import json
import math
import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_quick_benchmark_writes_every_measurement_and_target(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_mge.py", "--quick", "--synthetic", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and report["machine"]["matmul_fp32_gflops"] > 0
    targets = report["targets"]
    assert set(targets) == {
        "time_per_accepted_model_vs_seed_training",
        "batched_vs_loop_speedup",
        "generation_memory_1000_vs_100",
    }
    ratio = targets["time_per_accepted_model_vs_seed_training"]["ratio"]
    assert math.isfinite(ratio) and ratio > 0
    assert all(math.isfinite(v) and v > 0 for v in targets["batched_vs_loop_speedup"]["speedup_by_n"].values())
    assert targets["generation_memory_1000_vs_100"]["peak_rss_ratio"] > 0

    rendered = subprocess.run(
        [sys.executable, "benchmarks/report.py", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    for heading in ("### Targets", "### Seed training", "### Generation + discriminator", "### Pool evaluation"):
        assert heading in rendered.stdout
