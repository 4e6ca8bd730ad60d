"""The adversarial evaluation of a seed and its pools: protocol, defences, transfer matrix, report."""

from __future__ import annotations

import json

import pytest
import torch

from mge.adversarial import (
    ENSEMBLE_ATTACKS,
    AdversarialSettings,
    attack_members,
    correct_by_all,
    default_eps,
    evaluate_adversarial,
    normalise,
)
from mge.evaluation import predict_batched
from mge.reporting.sweep import write_table
from tests.adversarial.conftest import MEAN, STD, noisy_members, stack

SETTINGS = AdversarialSettings(eps=(0.15, 0.05), pgd_steps=5, matrix_members=3, batch_size=64)
N = 150  # test examples given to the evaluation


@pytest.fixture(scope="module")
def pools(trained):
    return {"wide": noisy_members(trained.seed, 6, scale=0.2), "narrow": noisy_members(trained.seed, 4, 0.05, 2)}


@pytest.fixture(scope="module")
def report(trained, pools):
    return evaluate_adversarial(trained.model, trained.seed, pools, trained.x[:N], trained.y[:N], MEAN, STD, SETTINGS)


def lookup(report, eps, pool, defence, attack):
    (row,) = [
        r for r in report.rows() if (r["eps"], r["pool"], r["defence"], r["attack"]) == (eps, pool, defence, attack)
    ]
    return row


def test_only_examples_that_every_model_classifies_correctly_are_attacked(trained, pools, report):
    x, y = trained.x[:N], trained.y[:N]
    stacks = [stack(trained.seed), *pools.values()]
    keep = correct_by_all(trained.model, stacks, x, y, MEAN, STD)
    every = torch.cat([predict_batched(trained.model, p, normalise(x, MEAN, STD)) == y for p in stacks]).all(dim=0)
    assert torch.equal(keep, every)
    assert 0 < keep.sum() < N  # the noisy members do drop some examples
    assert (report.n_test, report.n_evaluated) == (N, int(keep.sum()))


def test_the_worst_case_of_a_defence_is_no_better_than_any_of_its_attacks(report):
    attacks = ("fgsm_seed", "pgd_seed", *ENSEMBLE_ATTACKS)
    for eps in SETTINGS.eps:
        for pool in report.pools:
            for defence in ("majority_vote", "random_member"):
                worst = lookup(report, eps, pool, defence, "worst_case")["accuracy"]
                assert worst <= min(lookup(report, eps, pool, defence, a)["accuracy"] for a in attacks)


def test_the_random_member_defence_reports_the_exact_mean_over_members(report):
    for eps in SETTINGS.eps:
        for pool in report.pools:
            for attack in ("fgsm_seed", "pgd_seed"):
                member = lookup(report, eps, pool, "member", attack)
                per_member = report.transfer[pool][eps][attack]
                assert lookup(report, eps, pool, "random_member", attack)["accuracy"] == pytest.approx(
                    member["accuracy"]
                )
                assert (member["min"], member["max"]) == (per_member.min().item(), per_member.max().item())


def test_a_larger_budget_breaks_more(report):
    for pool in report.pools:
        for defence in ("majority_vote", "random_member"):
            small, large = (lookup(report, eps, pool, defence, "worst_case")["accuracy"] for eps in (0.05, 0.15))
            assert large < small


def test_transfer_matrix_row_i_holds_every_sampled_member_on_member_is_own_pgd_examples(trained, pools, report):
    x, y = trained.x[:N], trained.y[:N]
    keep = correct_by_all(trained.model, [stack(trained.seed), *pools.values()], x, y, MEAN, STD)
    x, y = x[keep], y[keep]
    members = report.matrix_members["wide"]
    assert len(members) == 3 and members == sorted(set(members))
    sample = {k: v[members] for k, v in pools["wide"].items()}
    i = 1
    alone = {k: v[i : i + 1] for k, v in sample.items()}
    x_adv = attack_members(trained.model, alone, x, y, MEAN, STD, SETTINGS.pgd(0.15))[0]  # member i's own examples
    row = (predict_batched(trained.model, sample, normalise(x_adv, MEAN, STD)) == y).double().mean(dim=1)
    torch.testing.assert_close(report.transfer_matrices["wide"][0.15][i], row)
    diagonal = report.transfer_matrices["wide"][0.15].diagonal()
    assert lookup(report, 0.15, "wide", "member", "pgd_white_box")["accuracy"] == pytest.approx(diagonal.mean().item())


def test_the_report_is_json_and_its_rows_make_a_table(report, tmp_path):
    data = json.loads(json.dumps(report.to_dict()))
    assert data["settings"]["eps"] == [0.05, 0.15]
    assert len(data["transfer_matrices"]["narrow"]["0.05"]) == 3
    assert len(data["transfer"]["wide"]["0.15"]["pgd_seed"]) == 6
    md, csv_path = write_table(report.rows(), tmp_path, "t5")
    header = md.read_text().splitlines()[0]
    assert [cell.strip() for cell in header.strip("|").split("|")] == [*report.rows()[0]]
    assert [*report.rows()[0]] == ["eps", "pool", "defence", "attack", "accuracy", "min", "max"]
    assert len(csv_path.read_text().splitlines()) == 1 + len(report.rows())


def test_default_eps_per_dataset_and_a_clear_error_elsewhere():
    assert default_eps("mnist") == (0.05, 0.1, 0.2, 0.3)
    assert default_eps("fashion_mnist") == (0.02, 0.05, 0.1, 0.2)
    with pytest.raises(ValueError, match="cifar10.*AdversarialSettings"):
        default_eps("cifar10")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"eps": ()}, "eps"),
        ({"eps": (0.1, 2.0)}, "eps"),
        ({"eps": (0.1, float("nan"))}, "eps"),
        ({"eps": (0.1, 0.1)}, "eps"),
        ({"pgd_steps": 0}, "pgd_steps"),
        ({"pgd_restarts": 1.5}, "pgd_restarts"),
        ({"pgd_relative_step": float("inf")}, "pgd_relative_step"),
        ({"matrix_members": 0}, "matrix_members"),
        ({"batch_size": False}, "batch_size"),
        ({"seed": -3}, "seed"),
    ],
)
def test_settings_refuse_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"AdversarialSettings\.{field} "):
        AdversarialSettings(**kwargs)


def test_a_config_list_of_budgets_becomes_a_sorted_tuple():
    assert AdversarialSettings(eps=[0.3, 0.1]).eps == (0.1, 0.3)


def test_a_pool_named_seed_and_an_unattackable_set_are_refused(trained, pools):
    x, y = trained.x[:N], trained.y[:N]
    with pytest.raises(ValueError, match="Rename the pool"):
        evaluate_adversarial(trained.model, trained.seed, {"seed": pools["wide"]}, x, y, MEAN, STD, SETTINGS)
    with pytest.raises(ValueError, match="No test example"):
        evaluate_adversarial(trained.model, trained.seed, pools, x, (y + 1) % 10, MEAN, STD, SETTINGS)
