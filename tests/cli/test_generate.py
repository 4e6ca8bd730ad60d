"""mge-generate: reproducible pools, exact resume, metrics.json, clear errors."""

import json

import pytest
import torch

from mge.cli.generate import generate, summary_table
from mge.errors import ConfigError, PoolError
from mge.pool import Pool, load_seed, save_seed
from tests.helpers import QUIET_GENERATE, compose_config

SMALL = [*QUIET_GENERATE, "n=12", "generator.batch_size=16", "generator.max_rounds=10", "time_probe_steps=1"]


def run(tmp_path, seed_dir, name, extra=()):
    cfg = compose_config("generate", [*SMALL, f"seed_model={seed_dir}", *extra], tmp_path / name)
    return generate(cfg)


def test_generates_the_requested_pool_with_metrics(tmp_path, digits_seed_dir):
    report = run(tmp_path, digits_seed_dir, "a")
    metrics = report.to_dict()
    pool = Pool.load(tmp_path / "a" / "pool")
    assert len(pool) == metrics["n_kept"] == 12
    assert metrics["n_candidates"] == 16 * len(metrics["rounds"])
    assert metrics["n_passed"] == sum(r["passed"] for r in metrics["rounds"]) >= 12
    assert metrics["acceptance_rate"] == pytest.approx(metrics["n_passed"] / metrics["n_candidates"])
    rejected = sum(metrics["rejected"].values())
    assert rejected == metrics["n_candidates"] - metrics["n_passed"]  # each rejection has one cause
    assert metrics["seconds_per_kept_model"] > 0 and 0 < metrics["time_ratio_per_model"] < 1
    acc = metrics["test"]["accuracy"]
    assert acc["min"] <= acc["median"] <= acc["max"] and acc["min"] <= acc["mean"] <= acc["max"]
    assert metrics["test"]["mistake_iou"]["max"] <= 1.0
    assert all(m.operator == "mge" and m.parents == ("seed",) for m in pool.records)
    rows = (tmp_path / "a" / "members.csv").read_text().splitlines()
    assert rows[0].startswith("member,test_accuracy,mistake_iou_with_seed") and len(rows) == 13


def test_same_seed_gives_the_same_pool_hashes_and_another_seed_does_not(tmp_path, digits_seed_dir):
    a = run(tmp_path, digits_seed_dir, "a")
    b = run(tmp_path, digits_seed_dir, "b")
    c = run(tmp_path, digits_seed_dir, "c", ["seed=1"])
    assert a.pool_hash == b.pool_hash
    assert a.pool_hash != c.pool_hash


def test_an_interrupted_run_resumes_to_the_same_pool(tmp_path, digits_seed_dir, monkeypatch):
    reference = run(tmp_path, digits_seed_dir, "ref", ["generator.target_acceptance=0.2"])
    assert len(reference.rounds) >= 2

    import mge.pool.store as store

    real_checkpoint = store.PoolWriter.checkpoint
    calls = {"n": 0}

    def crash_after_first_round(self, *args, **kwargs):
        real_checkpoint(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # the process dies after round 0 was saved

    monkeypatch.setattr(store.PoolWriter, "checkpoint", crash_after_first_round)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, digits_seed_dir, "crash", ["generator.target_acceptance=0.2"])
    monkeypatch.setattr(store.PoolWriter, "checkpoint", real_checkpoint)

    resumed = run(tmp_path, digits_seed_dir, "crash", ["generator.target_acceptance=0.2"])
    assert resumed.pool_hash == reference.pool_hash
    assert resumed.state.candidates == reference.state.candidates


def test_a_resume_verifies_what_it_continues(tmp_path, digits_seed_dir):
    run(tmp_path, digits_seed_dir, "a", ["n=4"])
    shard = next((tmp_path / "a" / "pool").glob("shard-*.safetensors"))
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(PoolError, match="does not match its hash"):
        run(tmp_path, digits_seed_dir, "a", ["n=4"])


def test_threshold_one_pool_is_the_seed_repeated(tmp_path, digits_seed_dir):
    report = run(tmp_path, digits_seed_dir, "t1", ["generator.threshold=1.0", "generator.knob=none", "n=3"])
    seed = load_seed(digits_seed_dir)
    for member in report.pool:
        assert all(torch.equal(v, seed.state_dict[k]) for k, v in member.params.items())
    metrics = report.to_dict()
    assert metrics["test"]["mistake_iou"]["mean"] == 1.0
    assert metrics["acceptance_rate"] == 1.0


def test_the_time_ratio_does_not_depend_on_the_seeds_recorded_training_time(tmp_path, digits_seed_dir, monkeypatch):
    import mge.runs.timing as timing

    def fixed_reference(self, epochs, *, min_steps=5):  # the real one times steps; a fixed figure compares exactly
        return timing.TrainingTimeReference(seconds=40.0, seconds_per_step=0.01, steps_timed=self.steps,
                                            steps_per_epoch=100, epochs=epochs, device="cpu")  # fmt: skip

    monkeypatch.setattr(timing.TrainingStepTimer, "reference", fixed_reference)
    seed = load_seed(digits_seed_dir)
    for recorded in (85.0, 939.0):  # a quiet and a busy machine's training time for the same seed
        seed.meta["train_seconds"] = recorded
        save_seed(seed, tmp_path / f"seed-{recorded}.safetensors")
        report = run(tmp_path, tmp_path / f"seed-{recorded}.safetensors", f"r{recorded}", ["n=4", "time_probe_steps=2"])
        assert report.seed_recorded_train_seconds == recorded
        assert report.time_ratio_per_model == report.state.seconds_per_kept / 40.0  # never / recorded
        assert report.time_reference.steps_timed == 2 * report.state.rounds  # steps timed after every round


def test_the_step_timer_extrapolates_timed_steps_to_the_recipe_and_leaves_the_random_state_alone(digits_seed_dir):
    from mge.runs import TrainingStepTimer, seed_datamodule

    seed = load_seed(digits_seed_dir)
    datamodule = seed_datamodule(seed, None)
    datamodule.setup("fit")
    state = torch.get_rng_state()
    timer = TrainingStepTimer(seed, datamodule, torch.device("cpu"))
    timer.step(2)
    reference = timer.reference(epochs=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert reference.steps_timed == 5 and reference.steps_per_epoch == len(datamodule.train_dataloader())  # topped up
    assert reference.seconds == pytest.approx(reference.seconds_per_step * reference.steps_per_epoch * 3)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("generator.threshold=1.5", r"generator\.threshold is the energy fraction t in \(0, 1\]"),
        ("generator.alpha=nan", r"generator\.alpha must be a finite number"),
        ("generator.feedback_step=nan", r"generator\.feedback_step must be a finite number"),
        ("generator.batch_size=abc", "generator.batch_size must be an integer"),
        ("generator.granularity=pixel", "Valid values are"),
        ("+generator.bogus=1", r"Unknown key\(s\) \['bogus'\] under generator"),
        ("discriminator.accuracy_tolerance=5", "fraction"),
        ("discriminator.max_distribution_distance=inf", "finite"),
        ("device=tpu", "Unknown device"),
        ("seed=abc", "seed must be an integer"),
    ],
)
def test_bad_config_values_say_what_is_wrong_before_any_work(tmp_path, digits_seed_dir, override, match):
    with pytest.raises(ConfigError, match=match):
        run(tmp_path, digits_seed_dir, "bad", [override])
    assert not (tmp_path / "bad" / "pool").exists()


def test_missing_seed_names_the_path(tmp_path):
    cfg = compose_config("generate", [*SMALL, f"seed_model={tmp_path / 'nowhere'}"], tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        generate(cfg)


def test_an_absent_seed_model_says_it_is_required(tmp_path):
    cfg = compose_config("generate", SMALL, tmp_path / "x")
    with pytest.raises(ConfigError, match="seed_model is required"):
        generate(cfg)


def test_a_budget_that_accepts_nothing_reports_an_empty_pool_with_the_seed_accuracy(tmp_path, digits_seed_dir):
    report = run(
        tmp_path, digits_seed_dir, "none",
        ["generator.knob=none", "generator.max_rounds=1", "discriminator.max_distribution_distance=1e-9"],
    )  # fmt: skip
    metrics = report.to_dict()
    assert metrics["n_kept"] == 0 and len(report.pool) == 0
    assert metrics["acceptance_rate"] == 0.0 and metrics["rejected"]["distribution"] == 16
    assert 0.5 < metrics["test"]["seed_accuracy"] <= 1.0
    assert metrics["test"]["accuracy"] is None and metrics["test"]["mistake_iou"] is None
    assert metrics["seconds_per_kept_model"] is None and metrics["time_ratio_per_model"] is None
    assert "n/a" in summary_table(metrics)


def test_a_pool_started_under_another_feedback_rule_is_not_resumed(tmp_path, digits_seed_dir):
    run(tmp_path, digits_seed_dir, "old")
    manifest_path = tmp_path / "old" / "pool" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["finished"] = False  # an unfinished pool from before the rule was recorded
    del manifest["config"]["generator"]["feedback_rule"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(PoolError, match=r"generator\.feedback_rule differ"):
        run(tmp_path, digits_seed_dir, "old")


def test_main_job_refuses_a_bad_generator_value_before_training(tmp_path):
    from mge.cli.main import run as run_main

    cfg = compose_config("main", ["logger=none", "progress=false", "generator.threshold=2"], tmp_path / "m")
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        run_main(cfg)
    assert not (tmp_path / "m" / "seed.safetensors").exists()  # nothing was trained


def test_every_test_of_the_discriminator_can_be_switched_off_and_the_pool_records_null_scores(
    tmp_path, digits_seed_dir
):
    report = run(tmp_path, digits_seed_dir, "off", ["n=4", "discriminator.max_distribution_distance=null"])
    assert len(report.pool) == 4
    assert all(r.scores["distribution_distance"] is None for r in report.pool.records)
    assert report.to_dict()["rejected"]["distribution"] == 0


def test_generation_without_the_test_evaluation_keeps_the_same_pool(tmp_path, digits_seed_dir):
    from mge.discriminator import DiscriminatorSettings
    from mge.generator import GeneratorSettings
    from mge.runs import GenerateSettings, generate_pool

    def pool(name, evaluate_test):
        settings = GenerateSettings(
            generator=GeneratorSettings(n_models=6, batch_size=16, max_rounds=10),
            discriminator=DiscriminatorSettings(),
            pool_dir=tmp_path / name,
            device="cpu",
            time_probe_steps=1,
            evaluate_test=evaluate_test,
        )
        return generate_pool(settings, digits_seed_dir)

    evaluated, skipped = pool("evaluated", True), pool("skipped", False)
    assert skipped.evaluation is None and skipped.to_dict()["test"] is None
    assert evaluated.to_dict()["test"]["accuracy"] is not None
    assert skipped.pool_hash == evaluated.pool_hash and skipped.time_ratio_per_model is not None
    assert "seed test accuracy" in summary_table(skipped.to_dict())
