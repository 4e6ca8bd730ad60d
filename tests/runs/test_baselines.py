"""mge-baseline: noise matched to an MGE pool (gated and not), the noise curve, independent and snapshot pools."""

import json

import pytest
import torch

from mge.baselines import SNAPSHOT_INDEX
from mge.cli.baseline import baseline
from mge.discriminator import Discriminator, DiscriminatorSettings
from mge.errors import ConfigError, PoolError
from mge.evaluation import relative_l2, relative_l2_per_tensor
from mge.pool import Pool, load_seed
from mge.runs import seed_datamodule
from tests.helpers import compose_config


def run(tmp_path, name, overrides):
    return baseline(compose_config("baseline", overrides, tmp_path / name))


def noise(mge_run, *extra):
    return ["baseline=noise", f"baseline.reference_pool={mge_run / 'pool'}", *extra]


def test_ungated_noise_matches_the_reference_pool_tensor_by_tensor_member_by_member(tmp_path, mge_run):
    report = run(tmp_path, "u", noise(mge_run, "baseline.gated=false"))
    reference, pool = Pool.load(mge_run / "pool"), report.pool
    assert pool.kind == "noise" and len(pool) == len(reference) and pool.targets == reference.targets
    seed = reference.seed.state_dict
    want = relative_l2_per_tensor(reference.parameters(), seed)
    got = relative_l2_per_tensor(pool.parameters(), seed)
    for name in reference.targets:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-7)
        if (want[name] > 0).all():  # noise, not a copy (a tensor MGE kept whole is the seed's in both)
            assert not torch.allclose(pool.parameters()[name], reference.parameters()[name])
    assert [r.scores["slot"] for r in pool.records] == list(range(len(reference)))
    metrics = report.to_dict()
    assert metrics["cost_seconds"] > 0 and metrics["cost"]["discriminator_seconds"] == 0
    assert metrics["acceptance_rate"] is None and not metrics["gated"]


def test_gated_noise_passes_the_reference_pools_discriminator_and_starts_from_the_ungated_draws(tmp_path, mge_run):
    gated = run(tmp_path, "g", noise(mge_run, "baseline.max_rounds=30"))
    ungated = run(tmp_path, "u", noise(mge_run, "baseline.gated=false"))
    reference = Pool.load(mge_run / "pool")
    seed = reference.seed
    datamodule = seed_datamodule(seed, None)
    datamodule.setup("fit")
    targets = {k: seed.state_dict[k] for k in reference.targets}
    settings = DiscriminatorSettings(**reference.manifest.config["discriminator"])
    discriminator = Discriminator(seed.build(), targets, *datamodule.split_tensors("discriminator"), settings)
    params = gated.pool.parameters()
    assert len(gated.pool) >= 1 and discriminator.score(params).accepted.all()
    slots = [r.scores["slot"] for r in gated.pool.records]
    want = relative_l2(reference.parameters(slots), targets)
    torch.testing.assert_close(relative_l2(params, targets), want, rtol=1e-5, atol=1e-7)
    metrics = gated.to_dict()
    assert len(gated.pool) + len(metrics["unfilled_slots"]) == len(reference)
    assert metrics["candidates"] == sum(metrics["rejected"].values()) + len(gated.pool)
    assert metrics["cost"]["discriminator_seconds"] > 0
    ungated_params = ungated.pool.parameters()
    for i, record in enumerate(gated.pool.records):
        if record.scores["attempt"] == 0:  # a slot's first draw is the ungated pool's member of that slot
            assert all(torch.equal(params[k][i], ungated_params[k][record.scores["slot"]]) for k in params)


def test_a_finished_baseline_is_reused_and_one_of_another_config_refused(tmp_path, mge_run):
    first = run(tmp_path, "u", noise(mge_run, "baseline.gated=false"))
    again = run(tmp_path, "u", noise(mge_run, "baseline.gated=false"))
    assert again.reused and not first.reused
    assert again.pool.pool_hash() == first.pool.pool_hash() and again.summary == first.summary
    with pytest.raises(PoolError, match="different config"):
        run(tmp_path, "u", noise(mge_run, "baseline.gated=false", "seed=1"))


def test_noise_curve_is_one_pool_whose_members_sit_at_their_distances(tmp_path, digits_seed_dir):
    report = run(tmp_path, "c", ["baseline=noise_curve", f"seed_model={digits_seed_dir}",
                                 "baseline.distances=[0.05,0.2]", "baseline.members_per_distance=3"])  # fmt: skip
    pool = report.pool
    assert pool.kind == "noise" and pool.manifest.config["curve"] is True and len(pool) == 6
    distances = [r.scores["target_distance"] for r in pool.records]
    assert distances == [0.05] * 3 + [0.2] * 3
    seed = load_seed(digits_seed_dir).state_dict
    achieved = relative_l2(pool.parameters(), {k: seed[k] for k in pool.targets})
    torch.testing.assert_close(achieved, torch.tensor(distances, dtype=torch.float64), rtol=1e-5, atol=1e-7)


def test_independent_pool_carries_each_trained_seeds_full_state_on_the_reference_seed(
    tmp_path, digits_seed_dir, independent_runs
):
    pattern = str(independent_runs[0].parent / "seed*")
    report = run(tmp_path, "i", ["baseline=independent", f"seed_model={digits_seed_dir}", f"baseline.runs=[{pattern}]"])
    pool = report.pool
    assert pool.kind == "independent" and len(pool) == 2
    assert torch.equal(pool.seed.state_dict["head.weight"], load_seed(digits_seed_dir).state_dict["head.weight"])
    for i, run_dir in enumerate(independent_runs):
        trained = load_seed(run_dir).state_dict
        assert set(pool.targets) == {k for k, v in trained.items() if v.is_floating_point()}
        assert all(torch.equal(pool.state_dict(i)[k], v) for k, v in trained.items())
    seconds = [json.loads((r / "metrics.json").read_text())["train"]["train_seconds"] for r in independent_runs]
    assert report.to_dict()["cost_seconds"] == pytest.approx(sum(seconds))
    assert [r.scores["training_seed"] for r in pool.records] == [1, 2]


def test_independent_pool_refuses_the_reference_seed_as_a_member(tmp_path, digits_seed_dir, independent_runs):
    with pytest.raises(ConfigError, match="identical weights"):
        run(tmp_path, "i", ["baseline=independent", f"seed_model={digits_seed_dir}",
                            f"baseline.runs=[{independent_runs[0]},{digits_seed_dir}]"])  # fmt: skip


def test_snapshot_pool_holds_the_snapshots_of_one_run_and_costs_its_training(tmp_path, digits_seed_dir, snapshot_run):
    report = run(tmp_path, "s", ["baseline=snapshot", f"seed_model={digits_seed_dir}", f"baseline.run={snapshot_run}"])
    pool = report.pool
    index = json.loads((snapshot_run / "snapshots" / SNAPSHOT_INDEX).read_text())["snapshots"]
    assert pool.kind == "snapshot"
    assert [r.scores["epoch"] for r in pool.records] == [0, 1] == [s["epoch"] for s in index]
    for i, entry in enumerate(index):
        snapshot = load_seed(snapshot_run / "snapshots" / entry["file"]).state_dict
        assert all(torch.equal(pool.state_dict(i)[k], v) for k, v in snapshot.items())
    train_seconds = json.loads((snapshot_run / "metrics.json").read_text())["train"]["train_seconds"]
    assert report.to_dict()["cost_seconds"] == train_seconds


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["baseline=noise_curve"], "seed_model is required"),
        (["baseline=noise_curve", "seed_model=x", "baseline.distances=[0.1,-1]"], r"baseline\.distances must be"),
        (["baseline=noise", "baseline.reference_pool=x", "baseline.max_rounds=0"], r"baseline\.max_rounds must be"),
        (["baseline=independent", "seed_model=x", "baseline.runs=[]"], r"baseline\.runs must be a non-empty"),
        (["baseline=noise", "baseline.reference_pool=x", "+baseline.bogus=1"], r"Unknown key\(s\) \['bogus'\]"),
    ],
)
def test_bad_baseline_settings_name_the_key(tmp_path, overrides, match):
    with pytest.raises(ConfigError, match=match):
        run(tmp_path, "bad", overrides)
