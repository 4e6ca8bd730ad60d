"""Agreement with an independent, maintained implementation: IBM's Adversarial Robustness Toolbox.

ART attacks the same plain ``nn.Module`` (one model, its own forward, NumPy in and out, its own
normalisation as ``preprocessing``); ours attacks the wide batched network of
:mod:`mge.evaluation.batched`. Same model, same inputs, same labels, same budgets. ART's PGD
returns its last iterate, so ours is compared with ``keep_best=False``; that keeping the best
iterate only strengthens it is tested in test_attacks.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentPyTorch
from art.estimators.classification import PyTorchClassifier

from mge.adversarial import AttackSettings, attack_members, normalise
from mge.evaluation import predict_batched
from tests.adversarial.conftest import MEAN, STD, stack

STEPS = 20


@pytest.fixture
def art_classifier(trained):
    """ART's view of the seed: pixels in [0, 1], normalised by ART's own preprocessing."""
    channel = (len(MEAN), 1, 1)
    return PyTorchClassifier(
        model=trained.model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(trained.x.shape[1:]),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        preprocessing=(
            np.array(MEAN, dtype=np.float32).reshape(channel),
            np.array(STD, dtype=np.float32).reshape(channel),
        ),
    )


@pytest.fixture
def numpy_seed():
    """ART draws its random starts from NumPy's global generator: seed it, then restore it."""
    state = np.random.get_state()
    np.random.seed(0)
    yield
    np.random.set_state(state)


def seed_accuracy(trained, x_adv):
    predictions = predict_batched(trained.model, stack(trained.seed), normalise(x_adv, MEAN, STD))[0]
    return (predictions == trained.y).double().mean().item()


@pytest.mark.parametrize("eps", [0.05, 0.1, 0.2])
def test_fgsm_examples_equal_arts(trained, art_classifier, eps):
    theirs = FastGradientMethod(art_classifier, eps=eps).generate(trained.x.numpy(), y=trained.y.numpy())
    ours = attack_members(trained.model, stack(trained.seed), trained.x, trained.y, MEAN, STD, AttackSettings.fgsm(eps))
    # float32 rounding only: ART adds the step, then re-projects (x_adv - x) onto the ball
    torch.testing.assert_close(ours[0], torch.from_numpy(theirs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_pgd_from_the_clean_input_matches_arts_robust_accuracy(trained, art_classifier, eps):
    """Without random start both walks are deterministic and should take the same steps.

    Tolerance 1 point (3-4 of 360 examples): a gradient component within float rounding of
    zero can take the other sign in the two implementations, and the steps that follow amplify
    such a flip into another path for that example.
    """
    step = 2.5 * eps / STEPS
    attack = ProjectedGradientDescentPyTorch(
        art_classifier, eps=eps, eps_step=step, max_iter=STEPS, num_random_init=0, verbose=False
    )
    theirs = torch.from_numpy(attack.generate(trained.x.numpy(), y=trained.y.numpy()))
    settings = AttackSettings(eps=eps, step_size=step, steps=STEPS, random_start=False, keep_best=False)
    ours = attack_members(trained.model, stack(trained.seed), trained.x, trained.y, MEAN, STD, settings)[0]
    assert abs(seed_accuracy(trained, ours) - seed_accuracy(trained, theirs)) <= 0.01
    same = ((ours - theirs).abs().flatten(1).amax(dim=1) <= 1e-5).double().mean().item()
    assert same >= 0.95  # nearly every example follows the same path


@pytest.mark.parametrize("eps", [0.1, 0.2])
def test_pgd_with_random_starts_matches_arts_robust_accuracy(trained, art_classifier, numpy_seed, eps):
    """Tolerance 4 points: the random starts differ (ART uses NumPy's generator, we use torch's),
    and an example near the decision boundary may fall either way from another start; our own
    PGD's accuracy moves by up to 1.5 points between seeds on these 360 examples."""
    step = 2.5 * eps / STEPS
    attack = ProjectedGradientDescentPyTorch(
        art_classifier, eps=eps, eps_step=step, max_iter=STEPS, num_random_init=1, verbose=False
    )
    theirs = torch.from_numpy(attack.generate(trained.x.numpy(), y=trained.y.numpy()))
    settings = AttackSettings.pgd(eps, steps=STEPS, keep_best=False)
    ours = attack_members(trained.model, stack(trained.seed), trained.x, trained.y, MEAN, STD, settings)[0]
    assert abs(seed_accuracy(trained, ours) - seed_accuracy(trained, theirs)) <= 0.04
