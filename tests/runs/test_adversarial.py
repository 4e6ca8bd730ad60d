"""The adversarial stage: labelled pools on disk, the seed attacked, each pool as a defence (T5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mge.adversarial import attack_members, correct_by_all, normalise, to_pixels
from mge.evaluation import predict_batched
from mge.pool import Pool, load_seed
from mge.runs import AdversarialRunSettings, attack_pools, comparison_datamodule
from mge.runs.adversarial import attackable_examples, member_stack, sample_members
from tests.helpers import write_noise_pool

SMALL = AdversarialRunSettings(eps=(0.1, 0.2), steps=3, examples=40, members=3, matrix_members=2)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors on 2 shared cores: intra-op threads cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pools(digits_seed_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two pools around a trained digits seed: close members (6) and wider ones (4)."""
    seed = load_seed(digits_seed_dir)
    root = tmp_path_factory.mktemp("pools")
    return {
        "close": write_noise_pool(root / "close", seed, 6, 0.05, rng_seed=1),
        "wide": write_noise_pool(root / "wide", seed, 4, 0.15, rng_seed=2),
    }


@pytest.fixture(scope="module")
def report(pools):
    return attack_pools(pools, SMALL)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"eps": []}, "eps"),
        ({"eps": [0.1, 2.0]}, "eps"),
        ({"eps": "0.1"}, "eps"),
        ({"steps": 0}, "steps"),
        ({"relative_step": float("nan")}, "relative_step"),
        ({"restarts": 1.5}, "restarts"),
        ({"examples": 0}, "examples"),
        ({"members": 0}, "members"),
        ({"matrix_members": True}, "matrix_members"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_settings_refuse_bad_values_naming_the_field_and_value(kwargs, field):
    (value,) = kwargs.values()
    with pytest.raises(ValueError, match=field) as error:
        AdversarialRunSettings(**kwargs)
    assert str(value) in str(error.value) or repr(value) in str(error.value)


def test_eps_defaults_to_the_datasets_sweep_and_a_dataset_without_one_needs_eps():
    assert AdversarialRunSettings().adversarial("mnist").eps == (0.05, 0.1, 0.2, 0.3)
    assert AdversarialRunSettings(eps=[0.3, 0.1]).adversarial("cifar10").eps == (0.1, 0.3)
    with pytest.raises(ValueError, match="eps is null and dataset 'cifar10' has no default"):
        AdversarialRunSettings().adversarial("cifar10")


# --------------------------------------------------------------------------- members and examples


def test_the_draw_of_members_depends_on_the_pools_length_and_seed_only_and_too_small_a_pool_is_refused(pools):
    close, wide = Pool.load(pools["close"]), Pool.load(pools["wide"])
    first = sample_members(close, 3, seed=0, label="close")
    assert first == sorted(set(first)) and len(first) == 3
    assert first == sorted(torch.randperm(6, generator=torch.Generator().manual_seed(0))[:3].tolist())
    assert sample_members(close, None, seed=0, label="close") == list(range(6))
    with pytest.raises(ValueError, match=r"members=5 but pool 'wide' .* has only 4.*members=4"):
        sample_members(wide, 5, seed=0, label="wide")


def test_a_member_runs_with_its_own_bases_tensors_where_they_differ_from_the_attacked_seed(digits_seed_dir, tmp_path):
    seed = load_seed(digits_seed_dir)
    other = replace(seed, state_dict={k: v + 0.01 for k, v in seed.state_dict.items()})  # another seed's base
    head = [k for k in seed.state_dict if k.startswith("head")]
    pool = Pool.load(write_noise_pool(tmp_path / "p", other, 3, 0.1, rng_seed=3, targets=head))
    params = member_stack(pool, [0, 2], seed)
    assert set(params) > set(head)  # the base's other tensors are stacked: they are not the seed's
    for j, i in enumerate([0, 2]):
        full = pool.state_dict(i)
        for name, value in params.items():
            assert torch.equal(value[j], full[name])
    same_base = Pool.load(write_noise_pool(tmp_path / "q", seed, 2, 0.1, rng_seed=4, targets=head))
    assert set(member_stack(same_base, [0, 1], seed)) == set(head)  # the model already holds the rest


def test_the_attacked_examples_are_the_first_in_a_seeded_order_that_every_model_classifies_correctly(pools):
    loaded = {label: Pool.load(path) for label, path in pools.items()}
    seed = loaded["close"].seed
    datamodule = comparison_datamodule(loaded)
    x, y = datamodule.split_tensors("test")
    x = to_pixels(x, datamodule.mean, datamodule.std)
    model = seed.build()
    stacks = [{k: v.unsqueeze(0) for k, v in seed.state_dict.items()}, *(p.parameters() for p in loaded.values())]
    index, scanned, agreeing = attackable_examples(model, stacks, x, y, datamodule.mean, datamodule.std, 25, seed=3)
    every = correct_by_all(model, stacks, x, y, datamodule.mean, datamodule.std)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(3))
    expected = order[every[order]][:25]
    assert torch.equal(index, expected.sort().values)
    assert scanned % 25 == 0 or scanned == len(y)  # whole chunks of 25
    assert agreeing == int(every[order[:scanned]].sum()) >= 25
    with pytest.raises(ValueError, match=r"examples=400 but only \d+ of the 360 test examples"):
        attackable_examples(model, stacks, x, y, datamodule.mean, datamodule.std, 400, seed=3)


# --------------------------------------------------------------------------- the stage


def test_the_first_pools_seed_is_attacked_on_examples_every_evaluated_member_gets_right(pools, report):
    assert report.dataset == "digits" and report.seed["pool"] == "close" and report.seed["base"] == "seed"
    assert report.adversarial.n_evaluated == SMALL.examples == 40
    assert {label: len(p.members) for label, p in report.pools.items()} == {"close": 3, "wide": 3}
    # every compared model is right on every attacked example (eps 0 would leave them all at 1.0)
    for row in report.table():
        assert 0 <= row["vote_worst_case"] <= row["vote_transfer"] <= 1
        assert row["random_worst_case"] <= row["random_whole_pool"] <= 1
        assert row["vote_worst_case"] <= row["vote_whole_pool"]
        assert row["members"] == 3 and row["examples"] == 40


def test_the_t5_table_has_one_row_per_eps_and_pool_and_the_report_is_json(report):
    table = report.table()
    assert [(r["eps"], r["pool"]) for r in table] == [(0.1, "close"), (0.1, "wide"), (0.2, "close"), (0.2, "wide")]
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["table"] == json.loads(json.dumps(table))
    assert data["settings"]["eps"] == [0.1, 0.2] and data["eps"] == [0.1, 0.2]
    assert "tie" in data["majority_vote_ties"]
    assert data["adversarial"]["n_evaluated"] == 40 and data["scanned"] >= data["agreeing"] >= 40


def test_table_cells_are_the_evaluations_figures(report):
    rows = report.adversarial.rows()

    def figure(eps, pool, defence, attack):
        ((value,),) = [[r["accuracy"]] for r in rows if (r["eps"], r["pool"], r["defence"], r["attack"]) == (
            eps, pool, defence, attack)]  # fmt: skip
        return value

    row = report.table()[3]  # eps 0.2, wide
    assert row["seed_white_box"] == figure(0.2, "seed", "seed", "pgd_seed")
    assert row["member_transfer_pgd"] == figure(0.2, "wide", "member", "pgd_seed")
    assert row["vote_worst_case"] == figure(0.2, "wide", "majority_vote", "worst_case")
    assert row["vote_whole_pool"] == figure(0.2, "wide", "majority_vote", row["vote_strongest"])
    matrix = report.adversarial.transfer_matrices["wide"][0.2]
    off_diagonal = (matrix.sum() - matrix.diagonal().sum()) / 2
    assert row["matrix_off_diagonal"] == pytest.approx(off_diagonal.item())


def test_the_seeds_white_box_figure_recomputed_from_the_pools_on_disk(pools, report):
    """An independent path to one cell: load the pools, pick the examples, attack the seed, score it."""
    loaded = {label: Pool.load(path) for label, path in pools.items()}
    seed = loaded["close"].seed
    datamodule = comparison_datamodule(loaded)
    mean, std = datamodule.mean, datamodule.std
    x, y = datamodule.split_tensors("test")
    x = to_pixels(x, mean, std)
    model = seed.build()
    seed_stack = {k: v.unsqueeze(0) for k, v in seed.state_dict.items()}
    stacks = [seed_stack, *(p.parameters(report.pools[label].members) for label, p in loaded.items())]
    index, _, _ = attackable_examples(model, stacks, x, y, mean, std, SMALL.examples, SMALL.seed)
    x_adv = attack_members(model, seed_stack, x[index], y[index], mean, std, SMALL.adversarial("digits").pgd(0.1))
    accuracy = (predict_batched(model, seed_stack, normalise(x_adv[0], mean, std))[0] == y[index]).double().mean()
    assert report.table()[0]["seed_white_box"] == pytest.approx(accuracy.item())
    assert accuracy < 1.0  # the attack does something at eps 0.1


def test_a_pool_labelled_seed_or_larger_than_its_pool_members_is_refused(pools):
    with pytest.raises(ValueError, match="may not be labelled 'seed'"):
        attack_pools({"seed": pools["close"]}, SMALL)
    with pytest.raises(ValueError, match="members=5 but pool 'wide'"):
        attack_pools(pools, replace(SMALL, members=5))
