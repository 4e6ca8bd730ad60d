"""The protocol: every group on the same episodes, each / best / ensemble as defined, equal to a per-episode loop."""

from __future__ import annotations

import pytest
import torch

import mge.fewshot.protocol as protocol
from mge.fewshot import (
    HEADS,
    FewShotSettings,
    ModelGroup,
    random_init_params,
    run_few_shot,
    sample_episodes,
    stack_state_dicts,
)
from mge.models import build_model

ARCH = {"num_classes": 3, "in_channels": 1, "image_size": 4}
SETTINGS = FewShotSettings(n_way=4, k_shot=2, q_query=3, n_episodes=30, seed=1)


def held_out(n_classes: int = 6, per_class: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 1x4x4 images of ``n_classes`` classes labelled 10, 11, ... (labels the models never had)."""
    g = torch.Generator().manual_seed(seed)
    labels = (10 + torch.arange(n_classes)).repeat_interleave(per_class)
    images = torch.randn(n_classes, 1, 4, 4, generator=g)[labels - 10] + 0.8 * torch.randn(
        len(labels), 1, 4, 4, generator=g
    )
    return images, labels


def members(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_init_params("mlp", **ARCH, seed=seed, n_models=n, hidden_dims=[8])


def architecture() -> torch.nn.Module:
    return build_model("mlp", **ARCH, hidden_dims=[8])


def test_separable_held_out_classes_are_solved_by_both_heads() -> None:
    """An MLP whose features are its input pixels (identity weights) on classes at far-apart points."""
    model = build_model("mlp", **ARCH, hidden_dims=[16])
    identity = {"features.0.weight": torch.eye(16).expand(2, 16, 16), "features.0.bias": torch.zeros(2, 16)}
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(6).repeat_interleave(10)
    images = 20 * torch.rand(6, 1, 4, 4, generator=g)[labels] + 0.05 * torch.rand(60, 1, 4, 4, generator=g)
    for head in HEADS:
        settings = FewShotSettings(n_way=5, k_shot=1, q_query=5, n_episodes=50, head=head)
        report = run_few_shot(model, [ModelGroup("identity", identity)], images, labels, settings)
        (group,) = report.groups
        assert group.mean == 1.0 and group.ci95 == 0.0
        assert group.member_accuracy.tolist() == [1.0, 1.0]
        assert (report.n_classes, report.n_images) == (6, 60)


def reference(model, params, images, labels, settings: FewShotSettings, use: str, scores=None) -> torch.Tensor:
    """Accuracy per episode, one member and one episode at a time with ordinary modules."""
    episodes = sample_episodes(
        labels,
        n_way=settings.n_way,
        k_shot=settings.k_shot,
        q_query=settings.q_query,
        n_episodes=settings.n_episodes,
        seed=settings.seed,
    )
    chosen = range(len(next(iter(params.values())))) if use != "best" else [int(scores.argmax())]
    feats = []
    for m in chosen:
        model.load_state_dict({k: v[m] for k, v in params.items()}, strict=False)
        with torch.no_grad():
            feats.append(model.forward_features(images))
    accuracies = []
    for e in range(settings.n_episodes):
        truth = torch.arange(settings.n_way).repeat_interleave(settings.q_query)
        probs = [HEADS[settings.head](f[episodes.support[e]], f[episodes.query[e]].flatten(0, 1)).exp() for f in feats]
        if use == "ensemble":
            accuracies.append((torch.stack(probs).mean(0).argmax(-1) == truth).float().mean())
        else:
            accuracies.append(torch.stack([(p.argmax(-1) == truth).float().mean() for p in probs]).mean())
    return torch.stack(accuracies)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_each_best_and_ensemble_equal_a_per_episode_loop(head) -> None:
    images, labels = held_out()
    params = members(3)
    scores = torch.tensor([0.2, 0.9, 0.5])
    settings = FewShotSettings(n_way=4, k_shot=2, q_query=3, n_episodes=8, seed=1, head=head)
    groups = [
        ModelGroup("each", params),
        ModelGroup("best", params, use="best", scores=scores),
        ModelGroup("ensemble", params, use="ensemble"),
    ]
    report = run_few_shot(architecture(), groups, images, labels, settings)
    assert [g.name for g in report.groups] == ["each", "best", "ensemble"]
    assert report.groups[1].chosen == 1 and report.groups[1].n_members == 3
    assert report.groups[1].member_accuracy.shape == (1,)
    for group in report.groups:
        want = reference(architecture(), params, images, labels, settings, group.use, scores)
        torch.testing.assert_close(group.episode_accuracy, want)
    # the ensemble's members are the "each" group's members
    torch.testing.assert_close(report.groups[2].member_accuracy, report.groups[0].member_accuracy)


def test_groups_share_the_episodes_and_the_seed_decides_them() -> None:
    images, labels = held_out()
    params = members(2)
    twins = [ModelGroup("a", params), ModelGroup("b", {k: v.clone() for k, v in params.items()})]
    report = run_few_shot(architecture(), twins, images, labels, SETTINGS)
    assert torch.equal(report.groups[0].episode_accuracy, report.groups[1].episode_accuracy)
    again = run_few_shot(architecture(), twins[:1], images, labels, SETTINGS)
    assert torch.equal(again.groups[0].episode_accuracy, report.groups[0].episode_accuracy)
    other = FewShotSettings(n_way=4, k_shot=2, q_query=3, n_episodes=30, seed=2)
    moved = run_few_shot(architecture(), twins[:1], images, labels, other)
    assert not torch.equal(moved.groups[0].episode_accuracy, report.groups[0].episode_accuracy)


def test_chunking_members_and_episodes_changes_nothing(monkeypatch) -> None:
    images, labels = held_out()
    params = members(3)
    groups = [ModelGroup("each", params), ModelGroup("ensemble", params, use="ensemble")]
    whole = run_few_shot(architecture(), groups, images, labels, SETTINGS)
    monkeypatch.setattr(protocol, "FEATURE_BUDGET", 1)  # one member per chunk
    monkeypatch.setattr(protocol, "EPISODE_BUDGET", 1)  # one episode per chunk
    chunked = run_few_shot(architecture(), groups, images, labels, SETTINGS)
    for a, b in zip(whole.groups, chunked.groups, strict=True):
        torch.testing.assert_close(a.episode_accuracy, b.episode_accuracy)
        torch.testing.assert_close(a.member_accuracy, b.member_accuracy)


def test_random_init_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = members(2, seed=7)
    assert torch.equal(torch.rand(1), expected_next)
    b, c = members(2, seed=7), members(2, seed=8)
    assert set(a) == {"features.0.weight", "features.0.bias", "head.weight", "head.bias"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.0.weight"][0], a["features.0.weight"][1])
    assert torch.equal(a["features.0.weight"][1], c["features.0.weight"][0])  # model i uses seed + i


def test_stacked_batchnorm_statistics_are_used_and_counters_left_out() -> None:
    conv = [build_model("conv4", num_classes=2, in_channels=1, image_size=16, hidden_channels=4) for _ in range(2)]
    conv[1].features[0][1].running_mean.fill_(3.0)
    stacked = stack_state_dicts([m.state_dict() for m in conv])
    assert not any(k.endswith("num_batches_tracked") for k in stacked)
    assert stacked["features.0.1.running_mean"][:, 0].tolist() == [0.0, 3.0]


def test_invalid_calls_name_the_problem() -> None:
    images, labels = held_out()
    group = ModelGroup("g", members(1))
    with pytest.raises(ValueError, match=r"Group names must be distinct, got \['g', 'g'\]"):
        run_few_shot(architecture(), [group, group], images, labels, SETTINGS)
    with pytest.raises(ValueError, match="at least one ModelGroup"):
        run_few_shot(architecture(), [], images, labels, SETTINGS)
    with pytest.raises(ValueError, match=r"must agree, got \(48, 1, 4, 4\) and \(47,\)"):
        run_few_shot(architecture(), [group], images, labels[:47], SETTINGS)
    with pytest.raises(ValueError, match="n_way=7 needs at least 7 classes"):
        run_few_shot(architecture(), [group], images, labels, FewShotSettings(n_way=7))
