"""mge-generate: reproducible pools, exact resume, metrics.json, clear errors."""

import json

import pytest
import torch

from mge.cli.config import ConfigError
from mge.cli.generate import generate_pool, summary_table
from mge.pool import Pool
from tests.conftest import QUIET_GENERATE, compose_config

SMALL = [*QUIET_GENERATE, "n=12", "generator.batch_size=16", "generator.max_rounds=10"]


def run(tmp_path, seed_dir, name, extra=()):
    cfg = compose_config("generate", [*SMALL, f"seed_model={seed_dir}", *extra], tmp_path / name)
    return generate_pool(cfg, cfg.seed_model)


def test_generates_the_requested_pool_with_metrics(tmp_path, digits_seed_dir):
    metrics, _objects = run(tmp_path, digits_seed_dir, "a")
    pool = Pool.load(tmp_path / "a" / "pool")
    assert len(pool) == metrics["n_accepted"] == 12
    assert metrics["n_candidates"] == 16 * len(metrics["rounds"])
    passed = sum(round(r["acceptance_rate"] * r["candidates"]) for r in metrics["rounds"])
    assert passed >= 12
    assert metrics["acceptance_rate"] == pytest.approx(passed / metrics["n_candidates"])
    assert metrics["seconds_per_accepted_model"] > 0 and 0 < metrics["time_ratio_per_model"] < 1
    acc = metrics["test"]["accuracy"]
    assert acc["min"] <= acc["median"] <= acc["max"] and acc["min"] <= acc["mean"] <= acc["max"]
    assert metrics["test"]["novelty"]["max"] <= 1.0
    # every accepted member passed the discriminator's accuracy bound
    bound = metrics["seed_discriminator_accuracy"] - 0.005
    assert all(m["discriminator_accuracy"] >= bound - 1e-9 for m in pool.members)
    assert all(m["operator"] == "mge" and m["parents"] == ["seed"] for m in pool.members)


def test_same_seed_gives_the_same_pool_hashes_and_another_seed_does_not(tmp_path, digits_seed_dir):
    a, _ = run(tmp_path, digits_seed_dir, "a")
    b, _ = run(tmp_path, digits_seed_dir, "b")
    c, _ = run(tmp_path, digits_seed_dir, "c", ["seed=1"])
    assert a["pool_hash"] == b["pool_hash"]
    assert a["pool_hash"] != c["pool_hash"]


def test_an_interrupted_run_resumes_to_the_same_pool(tmp_path, digits_seed_dir, monkeypatch):
    reference, _ = run(tmp_path, digits_seed_dir, "ref", ["generator.target_acceptance=0.2"])
    assert len(reference["rounds"]) >= 2

    import mge.generator.loop as loop

    real_append = loop.PoolWriter.append
    calls = {"n": 0}

    def crash_after_first_round(self, *args, **kwargs):
        real_append(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # the process dies after round 0 was saved

    monkeypatch.setattr(loop.PoolWriter, "append", crash_after_first_round)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, digits_seed_dir, "crash", ["generator.target_acceptance=0.2"])
    monkeypatch.setattr(loop.PoolWriter, "append", real_append)

    resumed, _ = run(tmp_path, digits_seed_dir, "crash", ["generator.target_acceptance=0.2"])
    assert resumed["pool_hash"] == reference["pool_hash"]
    assert resumed["n_candidates"] == reference["n_candidates"]


def test_threshold_one_pool_is_the_seed_repeated(tmp_path, digits_seed_dir):
    metrics, objects = run(tmp_path, digits_seed_dir, "t1", ["generator.threshold=1.0", "generator.knob=none", "n=3"])
    pool, seed = objects["pool"], objects["seed"]
    for member in pool:
        assert all(torch.equal(v, seed.state_dict[k]) for k, v in member.params.items())
    assert metrics["test"]["novelty"]["mean"] == 1.0
    assert metrics["acceptance_rate"] == 1.0


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("generator.threshold=1.5", r"\(0, 1\]"),
        ("generator.batch_size=abc", "must be an integer"),
        ("generator.granularity=pixel", "Valid values are"),
        ("+generator.bogus=1", r"Unknown key\(s\) \['bogus'\] under generator"),
        ("discriminator.accuracy_tolerance=5", "fraction"),
        ("device=tpu", "Unknown device"),
    ],
)
def test_bad_config_values_say_what_is_wrong(tmp_path, digits_seed_dir, override, match):
    with pytest.raises(ConfigError, match=match):
        run(tmp_path, digits_seed_dir, "bad", [override])


def test_missing_seed_names_the_path(tmp_path):
    cfg = compose_config("generate", [*SMALL, f"seed_model={tmp_path / 'nowhere'}"], tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        generate_pool(cfg, cfg.seed_model)


def test_a_budget_that_accepts_nothing_reports_an_empty_pool_with_the_seed_accuracy(tmp_path, digits_seed_dir):
    metrics, objects = run(
        tmp_path, digits_seed_dir, "none",
        ["generator.knob=none", "generator.max_rounds=1", "discriminator.max_distribution_distance=1e-9"],
    )  # fmt: skip
    assert metrics["n_accepted"] == 0 and len(objects["pool"]) == 0
    assert metrics["acceptance_rate"] == 0.0
    assert 0.5 < metrics["test"]["seed_accuracy"] <= 1.0
    assert metrics["test"]["accuracy"] is None and metrics["test"]["novelty"] is None
    assert metrics["seconds_per_accepted_model"] is None and metrics["time_ratio_per_model"] is None
    assert "n/a" in summary_table(metrics)


def test_a_pool_started_under_another_feedback_rule_is_not_resumed(tmp_path, digits_seed_dir):
    run(tmp_path, digits_seed_dir, "old")
    manifest_path = tmp_path / "old" / "pool" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["finished"] = False  # an unfinished pool from before the rule was recorded
    del manifest["config"]["generator"]["feedback_rule"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"generator\.feedback_rule differ"):
        run(tmp_path, digits_seed_dir, "old")


def test_main_job_refuses_a_bad_generator_value_before_training(tmp_path):
    from mge.cli.main import run as run_main

    cfg = compose_config("main", ["logger=none", "progress=false", "generator.threshold=2"], tmp_path / "m")
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        run_main(cfg)
    assert not (tmp_path / "m" / "seed.safetensors").exists()  # nothing was trained
