"""mge-attack: labelled pools in, T5 tables and figures out; bad input named by its config key."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from mge.cli.attack import PRINTED, attack, attack_settings, pool_paths, summary_table
from mge.errors import ConfigError
from mge.pool import load_seed
from tests.helpers import REPO_ROOT, compose_config, write_noise_pool

SMALL = ["logger=none", "eps=[0.1]", "steps=2", "examples=30", "members=2", "matrix_members=2"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pools(digits_seed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    seed = load_seed(digits_seed_dir)
    root = tmp_path_factory.mktemp("attack_pools")
    return {
        "MGE": write_noise_pool(root / "mge", seed, 3, 0.05, rng_seed=1),
        "noise": write_noise_pool(root / "noise", seed, 3, 0.15, rng_seed=2),
    }


def test_a_run_writes_the_t5_table_every_attack_and_both_figures(pools, tmp_path):
    cfg = compose_config("attack", [*SMALL, f"pools.MGE={pools['MGE']}", f"pools.noise={pools['noise']}"], tmp_path)
    metrics = attack(cfg).to_dict()
    with (tmp_path / "t5.csv").open() as f:
        t5 = list(csv.DictReader(f))
    assert [(r["eps"], r["pool"]) for r in t5] == [("0.1", "MGE"), ("0.1", "noise")]
    assert t5[0]["vote_worst_case"] == str(metrics["table"][0]["vote_worst_case"])
    assert (tmp_path / "t5.md").read_text().startswith("| dataset")
    with (tmp_path / "attacks.csv").open() as f:
        attacks = {(r["pool"], r["defence"], r["attack"]) for r in csv.DictReader(f)}
    assert ("noise", "random_member", "pgd_eot_probs") in attacks and ("seed", "seed", "pgd_seed") in attacks
    for png in ("robust_accuracy.png", "transfer_matrices.png"):
        assert (tmp_path / png).read_bytes().startswith(PNG)
    printed = summary_table(metrics)
    assert printed.splitlines()[0].count("|") == len(PRINTED) + 1 and "noise" in printed
    assert metrics["seed"]["pool"] == "MGE" and metrics["examples"] == 30


def test_a_null_pool_is_left_out_and_no_pool_or_a_bad_value_is_named_by_its_key(pools, tmp_path):
    cfg = compose_config("attack", [f"pools.MGE={pools['MGE']}", "pools.E-MGE=null"], tmp_path)
    assert pool_paths(cfg) == {"MGE": str(pools["MGE"])}
    with pytest.raises(ConfigError, match="pools is empty"):
        pool_paths(compose_config("attack", [], tmp_path))
    with pytest.raises(ConfigError, match=r"pools.MGE must be a pool folder"):
        pool_paths(compose_config("attack", ["pools.MGE=3"], tmp_path))
    with pytest.raises(ConfigError, match=r"members must be an integer >= 1 or null, got 0"):
        attack_settings(compose_config("attack", ["members=0"], tmp_path))
    with pytest.raises(ConfigError, match=r"eps must hold budgets in \[0, 1\]"):
        attack_settings(compose_config("attack", ["eps=[0.1,3]"], tmp_path))


def test_the_t5_experiment_points_at_each_datasets_pools_and_ends_in_its_table(tmp_path):
    cfg = compose_config("attack", ["experiment=t5_adversarial", "artifacts=/a/mnist"], tmp_path)
    assert pool_paths(cfg) == {
        "MGE": "/a/mnist/seed0-mge/pool",
        "E-MGE": "/a/mnist/seed0-emge/sharing-lambda4/population",
        "noise": "/a/mnist/baselines/noise_gated/pool",
        "independent": "/a/mnist/baselines/independent/pool",
    }
    settings = attack_settings(cfg)
    assert (settings.members, settings.matrix_members, settings.examples, settings.steps) == (5, 5, 500, 40)
    report = instantiate(cfg.hydra.callbacks.t5_table)
    assert report.rows_from == "metrics.attack.table" and report.x == "pool" and report.group == "panel"


def test_the_console_script_turns_a_missing_pool_folder_into_one_error_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mge.cli.attack", f"pools.MGE={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("error: No pool folder at")
    assert "Traceback" not in result.stderr
