"""benchmarks/bench_cifar10.py: the real datamodule reads its synthetic CIFAR-10; --quick writes its figures."""

import json
import math
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, script_module


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def bench_cifar10():
    with script_module("benchmarks/bench_cifar10.py") as module:
        yield module


def test_synthetic_batches_are_read_by_the_real_cifar10_datamodule(bench_cifar10, tmp_path, no_cifar_md5):
    from mge.data import build_datamodule

    bench_cifar10.write_synthetic_cifar10(tmp_path, n_train=100, n_test=30)
    dm = build_datamodule("cifar10", root=str(tmp_path), download=False, discriminator_size=20)
    dm.setup("fit")
    x, y = dm.split_tensors("discriminator")
    assert x.shape == (20, 3, 32, 32) and int(y.min()) >= 0 and int(y.max()) <= 9
    x_test, y_test = dm.split_tensors("test")
    assert x_test.shape[0] == 30 and len(set(y_test.tolist())) > 1  # several classes, not one label


def test_recipe_is_the_cifar10_config(bench_cifar10):
    assert bench_cifar10.RECIPE_EPOCHS == 100
    assert bench_cifar10.bench.recipe("cifar10")["arch"] == "resnet18"


def test_quick_run_trains_generates_and_writes_its_figures(tmp_path):
    out = tmp_path / "cifar10.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_cifar10.py", "--quick", "--device", "cpu", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    figures = report["figures"]
    assert report["mode"] == "quick" and report["data"]["synthetic"] is True
    assert report["machine"]["device"] == "cpu" and report["results"]["train"]["device"] == "cpu"
    assert figures["pool_size"] == 2 and figures["candidates"] >= 2
    for key in ("seconds_per_epoch", "one_seed_training_seconds", "seconds_per_kept", "ratio_to_seed_training"):
        assert positive(figures[key]), key
    # The ratio is the two measured figures' quotient, not a separate estimate.
    assert figures["ratio_to_seed_training"] == pytest.approx(
        figures["seconds_per_kept"] / figures["one_seed_training_seconds"]
    )


def test_training_figures_are_written_before_generation_starts(bench_cifar10, tmp_path, monkeypatch, no_cifar_md5):
    """A generation that fails (or runs out of device time) leaves the seed-training figures on disk."""
    real_run_case = bench_cifar10.bench.run_case

    def run_case(name, *args, **kwargs):
        if name == "generate":
            raise RuntimeError("generation failed")
        return real_run_case(name, *args, **kwargs)

    monkeypatch.setattr(bench_cifar10.bench, "run_case", run_case)
    out = tmp_path / "cifar10.json"
    with pytest.raises(RuntimeError, match="generation failed"):
        bench_cifar10.main(["--quick", "--device", "cpu", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["results"]["generate"] is None and "seconds_per_kept" not in report["figures"]
    assert positive(report["figures"]["seconds_per_epoch"]) and len(report["figures"]["epoch_seconds"]) == 1
