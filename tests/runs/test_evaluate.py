"""mge-eval: an MGE pool's own figures reproduced exactly, ensembles checked against members run one by one,
a noise curve reported distance by distance, pools of different seeds refused."""

import csv
import json

import pytest
import torch

from mge.cli.baseline import baseline
from mge.cli.evaluate import evaluate
from mge.errors import ConfigError
from mge.evaluation import ensemble_metrics
from mge.pool import Pool
from mge.runs import seed_datamodule
from tests.helpers import compose_config


def run_eval(tmp_path, name, pools, *extra):
    overrides = [f"pools.{label}={path}" for label, path in pools.items()]
    return evaluate(compose_config("eval", [*overrides, *extra], tmp_path / name))


@pytest.fixture(scope="module")
def curve_pool(tmp_path_factory, digits_seed_dir):
    out = tmp_path_factory.mktemp("curve")
    overrides = ["baseline=noise_curve", f"seed_model={digits_seed_dir}", "baseline.distances=[0.05,0.3]",
                 "baseline.members_per_distance=4"]  # fmt: skip
    return baseline(compose_config("baseline", overrides, out)).pool.root


def test_mge_eval_reproduces_the_figures_of_the_generate_run_exactly(tmp_path, mge_run):
    metrics = run_eval(tmp_path, "e", {"MGE": mge_run / "pool"})
    generated = json.loads((mge_run / "metrics.json").read_text())["generate"]
    (group,) = metrics["pools"]["MGE"]["groups"]
    assert group["test"] == generated["test"]  # every figure, bit for bit
    assert metrics["seed"]["test"]["accuracy"]["mean"] == generated["test"]["seed_accuracy"]
    with (tmp_path / "e" / "members.csv").open() as f:
        ours = [(r["member"], float(r["test_accuracy"])) for r in csv.DictReader(f)]
    with (mge_run / "members.csv").open() as f:
        theirs = [(r["member"], float(r["test_accuracy"])) for r in csv.DictReader(f)]
    assert ours == theirs
    assert metrics["pools"]["MGE"]["cost_seconds"] == pytest.approx(
        generated["generation_seconds"] + generated["discriminator_seconds"]
    )


def test_ensemble_figures_equal_those_of_the_members_run_one_by_one(tmp_path, mge_run):
    metrics = run_eval(tmp_path, "e", {"MGE": mge_run / "pool"})
    pool = Pool.load(mge_run / "pool")
    datamodule = seed_datamodule(pool.seed, None)
    datamodule.setup("fit")
    x, y = datamodule.split_tensors("test")
    with torch.no_grad():
        logits = torch.stack([pool.model(i)(x) for i in range(len(pool))])  # (B, N, classes), no batching trick
    want, _ = ensemble_metrics(logits, y, orderings=0)
    got = metrics["pools"]["MGE"]["groups"][0]["ensemble"]
    assert got["soft_vote_accuracy"] == pytest.approx(want.soft_vote_accuracy, abs=1e-12)
    assert got["majority_vote_accuracy"] == pytest.approx(want.majority_vote_accuracy, abs=1e-12)
    assert got["soft_vote_nll"] == pytest.approx(want.soft_vote_nll, rel=1e-5)
    assert got["soft_vote_ece"] == pytest.approx(want.soft_vote_ece, abs=1e-5)
    sizes = metrics["pools"]["MGE"]["groups"][0]["ensemble_curve"]["sizes"]
    assert sizes == list(range(1, len(pool) + 1))


def test_a_noise_curve_is_reported_distance_by_distance_in_the_table_and_the_plots(tmp_path, mge_run, curve_pool):
    metrics = run_eval(tmp_path, "e", {"MGE": mge_run / "pool", "noise_curve": curve_pool},
                       "table.name=t6", "table.columns=[label,distance,members,mistake_iou_mean]")  # fmt: skip
    labels = [row["label"] for row in metrics["table"]]
    assert labels == ["seed", "MGE", "noise_curve d=0.05", "noise_curve d=0.3"]
    curve = metrics["pools"]["noise_curve"]["groups"]
    assert [g["distance"] for g in curve] == [0.05, 0.3] and [g["members"] for g in curve] == [4, 4]
    assert all(g["test"]["relative_l2"]["mean"] == pytest.approx(g["distance"], rel=1e-5) for g in curve)
    out = tmp_path / "e"
    header = [cell.strip() for cell in (out / "t6.md").read_text().splitlines()[0].strip("|").split("|")]
    iou = "mistake IoU with the seed, mean (lower = more novel)"
    assert header == ["pool", "noise distance (relative L2)", "members", iou]
    assert len((out / "t6.csv").read_text().splitlines()) == 5
    assert (out / "novelty.png").stat().st_size > 10_000 and (out / "ensemble_size.png").is_file()
    with (out / "members.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 + 8 and {r["distance"] for r in rows if r["label"] == "noise_curve"} == {"0.05", "0.3"}


def test_pools_made_from_different_seeds_are_refused(tmp_path, mge_run, independent_runs):
    overrides = ["baseline=noise_curve", f"seed_model={independent_runs[0]}", "baseline.distances=[0.1]",
                 "baseline.members_per_distance=2"]  # fmt: skip
    other = baseline(compose_config("baseline", overrides, tmp_path / "other")).pool.root
    with pytest.raises(ConfigError, match="different seeds"):
        run_eval(tmp_path, "e", {"MGE": mge_run / "pool", "noise_curve": other})


def test_an_unknown_table_column_lists_the_valid_ones(tmp_path, mge_run):
    with pytest.raises(ConfigError, match="Valid columns are"):
        run_eval(tmp_path, "e", {"MGE": mge_run / "pool"}, "table.columns=[label,accuracy]")
