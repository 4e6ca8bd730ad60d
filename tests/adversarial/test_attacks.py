"""FGSM, PGD and the whole-ensemble attacks on a small trained digits CNN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mge.adversarial import (
    ENSEMBLE_LOSSES,
    AttackSettings,
    attack_ensemble,
    attack_members,
    majority_vote_correct,
    normalise,
    random_member_accuracy,
)
from mge.evaluation import batched_logits, predict_batched
from tests.adversarial.conftest import MEAN, STD, noisy_members, stack

PGD = AttackSettings.pgd(0.1, steps=10)


def accuracy(trained, params, x_adv):
    """Per member (B,): accuracy on shared ``(N, ...)`` or per-member ``(B, N, ...)`` adversarial inputs."""
    inputs = normalise(x_adv, MEAN, STD)
    predictions = predict_batched(trained.model, params, inputs, inputs_per_member=x_adv.dim() == 5)
    return (predictions == trained.y).double().mean(dim=-1)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"eps": float("nan"), "step_size": 0.01}, "eps"),
        ({"eps": -0.1, "step_size": 0.01}, "eps"),
        ({"eps": 1.5, "step_size": 0.01}, "eps"),
        ({"eps": 0.1, "step_size": float("inf")}, "step_size"),
        ({"eps": 0.1, "step_size": 0.0}, "step_size"),
        ({"eps": 0.1, "step_size": 0.01, "steps": 0}, "steps"),
        ({"eps": 0.1, "step_size": 0.01, "steps": True}, "steps"),
        ({"eps": 0.1, "step_size": 0.01, "restarts": 0}, "restarts"),
        ({"eps": 0.1, "step_size": 0.01, "restarts": 3, "random_start": False}, "restarts"),
        ({"eps": 0.1, "step_size": 0.01, "random_start": 1}, "random_start"),
        ({"eps": 0.1, "step_size": 0.01, "keep_best": "yes"}, "keep_best"),
        ({"eps": 0.1, "step_size": 0.01, "seed": -1}, "seed"),
    ],
)
def test_settings_refuse_bad_values_naming_the_field_and_value(kwargs, field):
    with pytest.raises(ValueError, match=rf"AttackSettings\.{field}") as error:
        AttackSettings(**kwargs)
    assert repr(kwargs[field]) in str(error.value) or str(kwargs[field]) in str(error.value)


def test_fgsm_is_one_full_step_without_random_start_and_pgd_scales_its_step_with_eps():
    assert AttackSettings.fgsm(0.2) == AttackSettings(eps=0.2, step_size=0.2, steps=1, random_start=False)
    assert AttackSettings.pgd(0.3, steps=40).step_size == pytest.approx(2.5 * 0.3 / 40)


def test_attacks_refuse_normalised_inputs(trained):
    with pytest.raises(ValueError, match="to_pixels"):
        attack_members(trained.model, stack(trained.seed), normalise(trained.x, MEAN, STD), trained.y, MEAN, STD, PGD)


# --------------------------------------------------------------------------- the threat model


def test_eps_zero_changes_nothing(trained):
    x, y, pool = trained.x, trained.y, noisy_members(trained.seed, 3)
    zero = AttackSettings.pgd(0.0, steps=3, restarts=2)
    assert torch.equal(attack_members(trained.model, pool, x, y, MEAN, STD, zero), x.expand(3, *x.shape))
    for defence in ("vote", "random_member"):
        assert torch.equal(attack_ensemble(trained.model, pool, x, y, MEAN, STD, zero, defence=defence), x)


@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_adversarial_inputs_stay_within_eps_of_the_clean_ones_and_in_the_unit_box(trained, eps):
    x, y, pool = trained.x, trained.y, noisy_members(trained.seed, 2)
    settings = AttackSettings.pgd(eps, steps=5, restarts=2)
    outputs = [
        attack_members(trained.model, pool, x, y, MEAN, STD, settings),
        attack_members(trained.model, pool, x, y, MEAN, STD, AttackSettings.fgsm(eps)),
        attack_ensemble(trained.model, pool, x, y, MEAN, STD, settings, defence="vote"),
        attack_ensemble(trained.model, pool, x, y, MEAN, STD, settings, defence="random_member"),
    ]
    for x_adv in outputs:
        assert (x_adv - x).abs().amax() <= eps + 1e-6
        assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (outputs[1] - x).abs().amax() > eps / 2  # the attacks do move the inputs


def test_pgd_is_at_least_as_strong_as_fgsm_on_a_trained_model(trained):
    seed, x, y = stack(trained.seed), trained.x, trained.y
    clean = accuracy(trained, seed, x).item()
    fgsm = accuracy(trained, seed, attack_members(trained.model, seed, x, y, MEAN, STD, AttackSettings.fgsm(0.1)))
    pgd = accuracy(trained, seed, attack_members(trained.model, seed, x, y, MEAN, STD, AttackSettings.pgd(0.1)))
    assert clean > 0.9
    assert fgsm.item() < clean - 0.1  # FGSM alone already hurts
    assert pgd.item() <= fgsm.item()


# --------------------------------------------------------------------------- batching and randomness


def test_the_batched_attack_on_m_members_equals_m_single_attacks(trained):
    x, y, pool = trained.x, trained.y, noisy_members(trained.seed, 3)
    settings = AttackSettings.pgd(0.1, steps=5, restarts=2)
    together = attack_members(trained.model, pool, x, y, MEAN, STD, settings)  # (3, N, 1, 8, 8)
    for i in range(3):
        alone = attack_members(trained.model, {k: v[i : i + 1] for k, v in pool.items()}, x, y, MEAN, STD, settings)
        torch.testing.assert_close(alone[0], together[i], rtol=0, atol=1e-6)


def test_batch_size_does_not_change_the_examples(trained):
    x, y, seed = trained.x, trained.y, stack(trained.seed)
    whole = attack_members(trained.model, seed, x, y, MEAN, STD, PGD, batch_size=len(x))
    torch.testing.assert_close(attack_members(trained.model, seed, x, y, MEAN, STD, PGD, batch_size=97), whole)


def test_the_same_seed_gives_the_same_examples_and_another_seed_other_ones(trained):
    x, y, seed = trained.x, trained.y, stack(trained.seed)
    first = attack_members(trained.model, seed, x, y, MEAN, STD, PGD)
    assert torch.equal(attack_members(trained.model, seed, x, y, MEAN, STD, PGD), first)
    other = AttackSettings.pgd(0.1, steps=10, seed=1)
    assert not torch.equal(attack_members(trained.model, seed, x, y, MEAN, STD, other), first)


def test_restarts_keep_the_worst_case_per_example_and_member(trained):
    x, y, pool = trained.x, trained.y, noisy_members(trained.seed, 2)
    one = attack_members(trained.model, pool, x, y, MEAN, STD, AttackSettings.pgd(0.1, steps=5, restarts=1))
    three = attack_members(trained.model, pool, x, y, MEAN, STD, AttackSettings.pgd(0.1, steps=5, restarts=3))
    with torch.no_grad():
        logits = [
            batched_logits(trained.model, pool, normalise(a, MEAN, STD), inputs_per_member=True) for a in (one, three)
        ]
    wrong = [lg.argmax(-1) != y for lg in logits]  # (2, N) each
    loss = [F.cross_entropy(lg.transpose(1, 2), y.expand(2, -1), reduction="none") for lg in logits]
    # restart 1 of three equals the single run, so three restarts can only be worse for the model
    assert (wrong[1] | ~wrong[0]).all()
    assert (wrong[1] | (loss[1] >= loss[0] - 1e-6)).all()
    assert wrong[1].sum() > wrong[0].sum()  # and here they do find more


def test_keeping_the_best_iterate_never_leaves_right_what_the_last_iterate_got_wrong(trained):
    """Per member and example: the last iterate is one of the candidates, so keeping the most harmful
    one can only add misclassifications; on this model it adds some, at no extra forward pass."""
    x, y, pool = trained.x, trained.y, noisy_members(trained.seed, 3)
    last, best = (
        attack_members(trained.model, pool, x, y, MEAN, STD, AttackSettings.pgd(0.1, steps=10, keep_best=keep))
        for keep in (False, True)
    )
    with torch.no_grad():
        wrong_last, wrong_best = (
            predict_batched(trained.model, pool, normalise(a, MEAN, STD), inputs_per_member=True) != y
            for a in (last, best)
        )
    assert (wrong_best | ~wrong_last).all()
    assert wrong_best.sum() > wrong_last.sum()


def test_fgsm_is_the_same_step_whether_or_not_the_best_iterate_is_kept(trained):
    x, y, seed = trained.x, trained.y, stack(trained.seed)
    fgsm = AttackSettings.fgsm(0.1)
    kept = attack_members(trained.model, seed, x, y, MEAN, STD, fgsm)
    last = attack_members(trained.model, seed, x, y, MEAN, STD, AttackSettings(**{**vars(fgsm), "keep_best": False}))
    assert torch.equal(kept, last)


# --------------------------------------------------------------------------- the pool as a defence


@pytest.mark.parametrize("loss", ENSEMBLE_LOSSES)
def test_the_ensemble_attack_is_at_least_as_strong_as_transfer_from_the_seed_on_the_majority_vote(trained, loss):
    x, y, pool = trained.x, trained.y, noisy_members(trained.seed, 5, scale=0.2)
    seed_adv = attack_members(trained.model, stack(trained.seed), x, y, MEAN, STD, PGD)[0]
    vote_adv = attack_ensemble(trained.model, pool, x, y, MEAN, STD, PGD, defence="vote", loss=loss)

    def vote_accuracy(x_adv):
        predictions = predict_batched(trained.model, pool, normalise(x_adv, MEAN, STD))
        return majority_vote_correct(predictions, y, 10).double().mean().item()

    assert vote_accuracy(vote_adv) <= vote_accuracy(seed_adv)


@pytest.mark.parametrize("loss", ENSEMBLE_LOSSES)
def test_the_eot_attack_is_at_least_as_strong_as_transfer_from_the_seed_on_a_random_member(trained, loss):
    x, y, pool = trained.x, trained.y, noisy_members(trained.seed, 5, scale=0.2)
    seed_adv = attack_members(trained.model, stack(trained.seed), x, y, MEAN, STD, PGD)[0]
    eot_adv = attack_ensemble(trained.model, pool, x, y, MEAN, STD, PGD, defence="random_member", loss=loss)

    def expected_accuracy(x_adv):
        predictions = predict_batched(trained.model, pool, normalise(x_adv, MEAN, STD))
        return random_member_accuracy(predictions, y).mean().item()

    assert expected_accuracy(eot_adv) <= expected_accuracy(seed_adv)


def test_the_probability_loss_of_one_member_is_its_cross_entropy(trained):
    """With one member, -log of the mean true-class probability is that member's cross-entropy:
    the three losses coincide, and so do their attacks."""
    x, y, seed = trained.x[:60], trained.y[:60], stack(trained.seed)
    attacks = [
        attack_ensemble(trained.model, seed, x, y, MEAN, STD, PGD, defence="random_member", loss=loss)
        for loss in ENSEMBLE_LOSSES
    ]
    for other in attacks[1:]:
        torch.testing.assert_close(other, attacks[0], rtol=0, atol=1e-6)


def test_an_unknown_ensemble_loss_is_refused_with_the_valid_ones(trained):
    with pytest.raises(ValueError, match=r"Unknown ensemble loss 'softmax'.*'probabilities'"):
        attack_ensemble(
            trained.model, stack(trained.seed), trained.x, trained.y, MEAN, STD, PGD, defence="vote", loss="softmax"
        )


def test_majority_vote_counts_a_tie_as_wrong_and_random_member_is_the_exact_expectation():
    predictions = torch.tensor([[0, 2, 0], [0, 2, 1], [1, 2, 2], [1, 1, 0]])  # (4 members, 3 examples)
    labels = torch.tensor([0, 2, 0])
    # a 2-2 tie is wrong; 3 of 4 is right; a plurality of 2 against 1 and 1 is right
    assert majority_vote_correct(predictions, labels, 3).tolist() == [False, True, True]
    assert random_member_accuracy(predictions, labels).tolist() == [0.5, 0.75, 0.5]
