"""experiments/evolution_study.py: a held-out search picks a variant by its rule; the final run uses the test set."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import QUIET_GENERATE, REPO_ROOT, compose_config


@pytest.fixture(scope="module")
def mge_pool(digits_seed_dir, tmp_path_factory):
    from mge.cli.generate import generate

    out = tmp_path_factory.mktemp("mge")
    overrides = [*QUIET_GENERATE, "n=6", "generator.batch_size=16", "generator.max_rounds=10"]
    generate(compose_config("generate", [*overrides, f"seed_model={digits_seed_dir}"], out))
    return out / "pool"


def study(*args):
    small = ["--holdout", "100", "--generations", "1", "--children", "4"]
    result = subprocess.run(
        [sys.executable, "experiments/evolution_study.py", *args, *small],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_search_then_final_on_digits(tmp_path, mge_pool):
    study("search", "--pool", str(mge_pool), "--out", str(tmp_path / "search"), "--variants", "default", "lambda0")
    search = json.loads((tmp_path / "search" / "search.json").read_text())
    assert search["chosen"] in {"default", "lambda0"} and len(search["variants"]) == 2
    assert [c["distance"] for c in search["references"]["noise"]] == sorted(
        c["distance"] for c in search["references"]["noise"]
    )
    assert (tmp_path / "search" / "search.png").is_file()
    again = study("search", "--pool", str(mge_pool), "--out", str(tmp_path / "search"), "--variants", "default")
    assert '"variant": "default"' in again.stdout  # read back from its metrics.json, not rerun

    figure = tmp_path / "figure.png"
    study("final", "--pool", str(mge_pool), "--out", str(tmp_path / "final"), "--variant", search["chosen"],
          "--figure", str(figure))  # fmt: skip
    final = json.loads((tmp_path / "final" / f"final-{search['chosen']}.json").read_text())
    emge, refs = final["test"]["emge"], final["test"]["references"]
    assert emge["members"] >= 6 and 0.5 < emge["accuracy"] <= 1 and 0 <= emge["mistake_iou"] <= 1
    assert refs["mge"]["members"] == 6 and len(refs["noise"]) >= 5
    assert final["evolution"]["generations"] == 1 and final["evolution"]["time_ratio"] > 0
    assert figure.read_bytes()[:4] == b"\x89PNG"
