"""benchmarks/bench_mge.py --quick runs end to end on the run layer and writes the JSON the docs read."""

import json
import math
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, script_module

TARGETS = {
    "fashion_time_per_kept_model_vs_seed_training",
    "mnist_time_per_kept_model_vs_seed_training",
    "batched_evaluation_fraction_of_matmul_peak",
    "generation_memory_1000_vs_100",
}


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def bench():
    with script_module("benchmarks/bench_mge.py") as module:
        yield module


def test_synthetic_idx_files_are_read_by_the_real_datamodules(bench, tmp_path):
    from mge.data import build_datamodule

    for name in ("mnist", "fashion_mnist"):
        bench.write_synthetic_idx(tmp_path, name, n_train=120, n_test=30)
        dm = build_datamodule(name, root=str(tmp_path), download=False, discriminator_size=20)
        dm.setup("fit")
        x, y = dm.split_tensors("discriminator")
        assert x.shape == (20, 1, 28, 28) and y.min() >= 0 and y.max() <= 9
        assert dm.split_tensors("test")[0].shape[0] == 30


def test_recipes_are_read_from_the_dataset_configs(bench):
    mnist, fashion = bench.recipe("mnist"), bench.recipe("fashion_mnist")
    assert (mnist["max_epochs"], fashion["max_epochs"]) == (8, 15)
    assert mnist["arch"] == fashion["arch"] == "lenet5" and mnist["optim"]["lr"] == 0.002


def test_quick_benchmark_writes_every_measurement_and_target(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_mge.py", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "quick" and positive(report["matmul_fp32"]["peak_gflops"])
    assert all(d["synthetic"] for d in report["data"].values())  # --quick never reads the real data
    assert set(report["targets"]) == TARGETS
    targets = report["targets"]
    for key in ("fashion_time_per_kept_model_vs_seed_training", "mnist_time_per_kept_model_vs_seed_training"):
        assert positive(targets[key]["ratio"]) and positive(targets[key]["probe_ratio"])
    assert targets["fashion_time_per_kept_model_vs_seed_training"]["accepted_set_unchanged"] is True
    assert positive(targets["batched_evaluation_fraction_of_matmul_peak"]["fraction"])
    assert positive(targets["generation_memory_1000_vs_100"]["peak_rss_ratio"])

    results = report["results"]
    assert set(results["train"]) == {"mnist", "fashion_mnist"}
    for train in results["train"].values():
        assert positive(train["one_seed_training_seconds"]) and train["device"] == "cpu"
    for gens in results["generate"].values():
        for g in gens:
            assert g["kept"] == g["n_requested"] and positive(g["seconds_per_kept"]) and g["device"] == "cpu"
    for es in results["early_stopping"].values():
        assert es["members_identical_across_variants"] is True
        assert "off" in es["variants"] and len(es["variants"]) >= 2  # early stopping off, and on at some chunk
        assert all(positive(v["discriminator_seconds"]) for v in es["variants"].values())
    for rows in results["evaluate"].values():
        for row in rows:
            assert row["prediction_mismatches"] == 0 and positive(row["speedup"])
            assert positive(row["batched"]["fraction_of_matmul_peak"]) and row["batched"]["device"] == "cpu"

    rendered = subprocess.run(
        [sys.executable, "benchmarks/report.py", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    for heading in ("### Targets", "### Seed training", "### Generation", "### The discriminator's early stopping",
                    "### Pool evaluation"):  # fmt: skip
        assert heading in rendered.stdout
