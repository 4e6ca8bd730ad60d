"""The few-shot stage on class-split digits seeds: its rows, the best member chosen on the discriminator split,
shared episodes, pools of other bases with their own tensors, and the independent pool."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import torch

from mge.errors import ConfigError
from mge.evaluation.pool_eval import evaluate_pool
from mge.pool import Pool, load_seed
from mge.runs import FewShotRunSettings, comparison_datamodule, load_pools, run_fewshot
from mge.runs.fewshot import pool_params
from tests.helpers import one_thread, small_seed, write_pool

FAST = FewShotRunSettings(n_episodes=40, random_init_models=2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="module")
def report(fewshot_pools):
    return run_fewshot(FAST, {"MGE": fewshot_pools["MGE"], "independent": fewshot_pools["independent"]}, device="cpu")


def test_rows_are_random_init_seed_and_each_pools_best_member_and_ensemble_for_every_head(report) -> None:
    expected = ["random init", "seed", "MGE best", "MGE ensemble", "independent best", "independent ensemble"]
    for head in ("prototype", "linear_probe"):
        assert [g.name for g in report.reports[head].groups] == expected
        assert report.reports[head].settings.head == head
    rows = report.rows()
    assert len(rows) == 12 and {r["dataset"] for r in rows} == {"digits"}
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["ci95"] > 0 for r in rows)
    members = {r["model"]: r["members"] for r in rows}
    assert members == {"random init": 2, "seed": 1, "MGE best": 6, "MGE ensemble": 6, "independent best": 2,
                       "independent ensemble": 2}  # fmt: skip
    assert report.train_classes == [0, 1, 2, 3, 4]
    assert report.reports["prototype"].n_classes == 5  # digits 5-9
    metrics = json.loads(json.dumps(report.to_dict()))  # strict JSON
    assert metrics["accuracy"]["prototype"]["MGE ensemble"]["mean"] == report.reports["prototype"].groups[3].mean


def test_best_member_is_the_highest_discriminator_split_accuracy_never_the_episodes(report, fewshot_pools) -> None:
    pools = load_pools({"MGE": fewshot_pools["MGE"], "independent": fewshot_pools["independent"]})
    x_disc, y_disc = comparison_datamodule(pools).split_tensors("discriminator")
    assert set(y_disc.tolist()) <= set(range(5))  # the discriminator split holds the train classes only
    for summary in report.pools:
        pool = pools[summary.label]
        accuracies = evaluate_pool(pool, x_disc, y_disc).accuracies
        best = int(accuracies.argmax())
        assert summary.best_member == pool.records[best].id
        assert summary.best_discriminator_accuracy == pytest.approx(float(accuracies.max()))
        for head, result in report.reports.items():
            group = next(g for g in result.groups if g.name == f"{summary.label} best")
            assert group.chosen == best, head
            ensemble = next(g for g in result.groups if g.name == f"{summary.label} ensemble")
            # its head's accuracy is that member's own in the ensemble's evaluation: same episodes, same features
            torch.testing.assert_close(group.member_accuracy[0], ensemble.member_accuracy[best])


def test_seed_row_is_the_first_pools_seed_and_episodes_do_not_depend_on_the_rows(report, fewshot_pools) -> None:
    seed_state = load_seed(fewshot_pools["seed"]).state_dict
    assert torch.equal(Pool.load(fewshot_pools["MGE"]).seed.state_dict["head.weight"], seed_state["head.weight"])
    assert report.seed_pool == "MGE"
    alone = run_fewshot(FAST, {"MGE": fewshot_pools["MGE"]}, device="cpu")
    for head in report.reports:
        for i in (0, 1, 2, 3):  # random init, seed, MGE best, MGE ensemble: the same with or without another pool
            torch.testing.assert_close(
                alone.reports[head].groups[i].episode_accuracy, report.reports[head].groups[i].episode_accuracy
            )


def test_normalised_features_change_the_prototype_head_only_where_the_probe_normalises_itself(fewshot_pools) -> None:
    pools = {"MGE": fewshot_pools["MGE"]}
    raw = run_fewshot(FewShotRunSettings(**{**vars(FAST), "features": "raw"}), pools, device="cpu")
    l2 = run_fewshot(FAST, pools, device="cpu")  # the default
    centred = run_fewshot(FewShotRunSettings(**{**vars(FAST), "features": "centred_l2"}), pools, device="cpu")
    seed = {name: r.reports["prototype"].groups[1].episode_accuracy for name, r in (("raw", raw), ("l2", l2))}
    assert not torch.equal(seed["raw"], seed["l2"])
    probe = {name: r.reports["linear_probe"].groups for name, r in (("raw", raw), ("l2", l2), ("centred", centred))}
    for i in range(4):  # the probe L2-normalises its input: "l2" changes nothing there
        torch.testing.assert_close(probe["raw"][i].episode_accuracy, probe["l2"][i].episode_accuracy)
    assert not torch.equal(probe["raw"][1].episode_accuracy, probe["centred"][1].episode_accuracy)
    assert all(r["features"] == "centred_l2" for r in centred.rows())


def test_labels_that_are_rows_or_an_unknown_seed_pool_are_refused(fewshot_pools) -> None:
    with pytest.raises(ConfigError, match="row of its own"):
        run_fewshot(FAST, {"seed": fewshot_pools["MGE"]}, device="cpu")
    with pytest.raises(ConfigError, match="seed_pool 'E-MGE' is not one of"):
        run_fewshot(FAST, {"MGE": fewshot_pools["MGE"]}, seed_pool="E-MGE", device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"heads": ()}, "heads must be distinct"),
        ({"heads": ("prototype", "knn")}, "heads must be distinct"),
        ({"n_episodes": 1}, "n_episodes must be an integer >= 2"),
        ({"random_init_models": 0}, "random_init_models must be an integer >= 1"),
        ({"features": "pca"}, "Unknown features"),
    ],
)
def test_settings_are_checked(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        FewShotRunSettings(**kwargs)


def test_pool_params_add_the_tensors_a_members_base_holds_differently_from_the_reference(tmp_path) -> None:
    """Members on two bases whose BatchNorm statistics differ get their own; equal ones are left to the model."""
    a, b = small_seed("resnet18", seed=0), small_seed("resnet18", seed=1)
    b.state_dict["bn1.running_mean"] = torch.full_like(b.state_dict["bn1.running_mean"], 3.0)
    writer = write_pool(tmp_path / "one", a, rounds=1, per_round=2)
    pool = writer.finish({})
    params = pool_params(pool, a.state_dict)
    assert set(params) == set(pool.targets)  # one base equal to the reference: the targets only
    assert "bn1.running_mean" not in pool.targets
    other = pool_params(pool, b.state_dict)
    assert torch.equal(other["bn1.running_mean"], a.state_dict["bn1.running_mean"].expand(2, -1))
