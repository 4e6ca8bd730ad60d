"""mge-fewshot: labelled pools in, metrics.json / CSV / PNG and the printed table out, clear errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from mge.cli.fewshot import fewshot, summary_table
from mge.errors import ConfigError
from tests.helpers import REPO_ROOT, compose_config, one_thread

FAST = ["fewshot.n_episodes=30", "fewshot.random_init_models=1", "device=cpu"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def test_writes_csv_and_plot_for_the_given_pools_in_order(fewshot_pools, tmp_path) -> None:
    overrides = [*FAST, f"pools.independent={fewshot_pools['independent']}", f"+pools.copy={fewshot_pools['MGE']}",
                 f"pools.MGE={fewshot_pools['MGE']}", "logger=none"]  # fmt: skip
    metrics = json.loads(json.dumps(fewshot(compose_config("fewshot", overrides, tmp_path)).to_dict()))  # strict JSON
    assert [p["label"] for p in metrics["pools"]] == ["MGE", "independent", "copy"]  # E-MGE: null, skipped
    assert metrics["settings"]["heads"] == ["prototype", "linear_probe"] and metrics["settings"]["n_episodes"] == 30
    with (tmp_path / "fewshot.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 8 and rows[0]["model"] == "random init" and rows[0]["head"] == "prototype"
    assert {r["model"] for r in rows} >= {"seed", "MGE best", "copy ensemble", "independent best"}
    assert (tmp_path / "fewshot.png").stat().st_size > 0
    table = summary_table(metrics)
    assert "digits: 5-way 1-shot, 30 episodes, l2 features" in table and "| MGE ensemble" in table
    # the same pool under two labels: identical rows, as the shared episodes promise
    copy = {r["head"]: r["accuracy"] for r in rows if r["model"] == "copy ensemble"}
    assert copy == {r["head"]: r["accuracy"] for r in rows if r["model"] == "MGE ensemble"}


def test_the_csv_logger_gets_every_rows_accuracy(fewshot_pools, tmp_path) -> None:
    fewshot(compose_config("fewshot", [*FAST, f"pools.MGE={fewshot_pools['MGE']}"], tmp_path))
    with next((tmp_path / "csv").rglob("metrics.csv")).open() as f:
        (logged,) = list(csv.DictReader(f))
    assert float(logged["fewshot/prototype/MGE ensemble"]) > 0 and "fewshot/linear_probe/seed" in logged


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "pools: no pool given"),
        (["pools.MGE=/no/such/pool"], "/no/such/pool"),
        (["pools.MGE=x", "fewshot.heads=[knn]"], "fewshot.heads must be distinct names"),
        (["pools.MGE=x", "fewshot.k_shot=0"], "fewshot.k_shot must be an integer >= 1"),
        (["pools.MGE=x", "fewshot.features=pca"], "fewshot: Unknown features 'pca'"),
    ],
)
def test_bad_input_names_the_key(overrides, message, tmp_path) -> None:
    with pytest.raises((ConfigError, FileNotFoundError), match=message):
        fewshot(compose_config("fewshot", overrides, tmp_path))


def test_a_missing_pool_is_one_error_line_and_exit_code_2(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mge.cli.fewshot", "pools.MGE=/no/such/pool", f"hydra.run.dir={tmp_path}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("error: ") == 1 and "/no/such/pool" in result.stderr
    assert "Traceback" not in result.stderr
