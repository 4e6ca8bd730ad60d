"""Feature transforms (raw, L2, centred + L2) and several heads at once: as defined, equal to direct computation."""

from __future__ import annotations

import pytest
import torch

from mge.fewshot import FewShotSettings, ModelGroup, run_few_shot, run_few_shot_heads, sample_episodes
from mge.fewshot.features import FEATURES, transform_features
from mge.fewshot.heads import HEADS
from mge.models import build_model

ARCH = {"num_classes": 3, "in_channels": 1, "image_size": 4}


def test_l2_gives_unit_norms_and_centred_l2_subtracts_the_centre_first() -> None:
    g = torch.Generator().manual_seed(0)
    feats, centre = torch.randn(2, 7, 5, generator=g) * 10, torch.randn(2, 5, generator=g)
    torch.testing.assert_close(transform_features(feats, "raw"), feats)
    torch.testing.assert_close(transform_features(feats, "l2").norm(dim=-1), torch.ones(2, 7))
    centred = transform_features(feats, "centred_l2", centre)
    torch.testing.assert_close(centred, torch.nn.functional.normalize(feats - centre[:, None], dim=-1))
    assert not torch.allclose(centred, transform_features(feats, "l2"))


def test_a_transform_without_its_centre_or_an_unknown_one_is_refused() -> None:
    feats = torch.ones(3, 4)
    with pytest.raises(ValueError, match="centre is needed"):
        transform_features(feats, "centred_l2")
    with pytest.raises(ValueError, match="centre is needed"):
        transform_features(feats, "l2", torch.zeros(4))
    with pytest.raises(ValueError, match="Valid values"):
        transform_features(feats, "pca")
    with pytest.raises(ValueError, match="Unknown features 'pca'"):
        FewShotSettings(features="pca")


def test_cosine_prototypes_ignore_a_scale_that_misleads_euclidean_ones() -> None:
    """Classes are directions; each image has a random norm. Raw prototypes confuse them, L2 ones do not."""
    g = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(5, 16, generator=g).abs(), dim=-1)
    scales = torch.exp(2 * torch.randn(5, 6, 1, generator=g))  # norms spanning ~e^-4 .. e^4
    feats = (directions[:, None] + 0.02 * torch.randn(5, 6, 16, generator=g)) * scales
    support, query = feats[:, :1], feats[:, 1:].flatten(0, 1)  # 1-shot, 5 queries per class
    labels = torch.arange(5).repeat_interleave(5)
    raw = (HEADS["prototype"](support, query).argmax(-1) == labels).float().mean()
    l2 = HEADS["prototype"](transform_features(support, "l2"), transform_features(query, "l2")).argmax(-1)
    assert (l2 == labels).all() and raw < 0.9


def identity_mlp() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """An MLP whose features are its 16 input pixels, as two identical members."""
    model = build_model("mlp", **ARCH, hidden_dims=[16])
    return model, {"features.0.weight": torch.eye(16).expand(2, 16, 16), "features.0.bias": torch.zeros(2, 16)}


@pytest.mark.parametrize("features", FEATURES)
def test_protocol_transforms_each_members_features_as_a_direct_computation_does(features) -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(6).repeat_interleave(8)
    # non-negative pixels, which the identity MLP's ReLU keeps
    images = torch.rand(6, 1, 4, 4, generator=g)[labels] + 0.3 * torch.rand(48, 1, 4, 4, generator=g)
    train_images = torch.rand(20, 1, 4, 4, generator=g) + 2.0  # another class set, far from the held-out mean
    settings = FewShotSettings(n_way=4, k_shot=2, q_query=3, n_episodes=40, features=features)
    model, params = identity_mlp()
    centre = train_images if features == "centred_l2" else None
    (group,) = run_few_shot(model, [ModelGroup("id", params)], images, labels, settings, centre_images=centre).groups
    pixels = images.flatten(1)
    feats = transform_features(pixels, features, None if centre is None else train_images.flatten(1).mean(0))
    ep = sample_episodes(labels, n_way=4, k_shot=2, q_query=3, n_episodes=40, seed=0)
    want = HEADS["prototype"](feats[ep.support], feats[ep.query].flatten(1, 2)).argmax(-1) == ep.query_labels()
    torch.testing.assert_close(group.episode_accuracy, want.float().mean(-1))


def test_centre_images_are_required_for_centred_features_and_refused_otherwise() -> None:
    model, params = identity_mlp()
    images, labels = torch.rand(24, 1, 4, 4), torch.arange(24) % 4
    groups = [ModelGroup("id", params)]
    with pytest.raises(ValueError, match="centre_images are needed"):
        run_few_shot(model, groups, images, labels, FewShotSettings(n_way=3, q_query=2, features="centred_l2"))
    with pytest.raises(ValueError, match="never of the held-out classes"):
        run_few_shot(model, groups, images, labels, FewShotSettings(n_way=3, q_query=2), centre_images=images)


def test_several_heads_in_one_call_equal_one_call_per_head() -> None:
    g = torch.Generator().manual_seed(2)
    labels = (10 + torch.arange(6)).repeat_interleave(8)
    images = torch.randn(6, 1, 4, 4, generator=g)[labels - 10] + 0.8 * torch.randn(48, 1, 4, 4, generator=g)
    model = build_model("mlp", **ARCH, hidden_dims=[8])
    params = {k: torch.stack([v, v.flip(0)]) for k, v in model.state_dict().items()}
    groups = [ModelGroup("each", params), ModelGroup("ensemble", params, use="ensemble")]
    settings = FewShotSettings(n_way=4, k_shot=2, q_query=3, n_episodes=20, features="l2")
    reports = run_few_shot_heads(model, groups, images, labels, settings, heads=["linear_probe", "prototype"])
    assert list(reports) == ["linear_probe", "prototype"]
    for head, report in reports.items():
        alone = run_few_shot(model, groups, images, labels, FewShotSettings(**{**vars(settings), "head": head}))
        assert report.settings == alone.settings
        for got, want in zip(report.groups, alone.groups, strict=True):
            torch.testing.assert_close(got.episode_accuracy, want.episode_accuracy)
            torch.testing.assert_close(got.member_accuracy, want.member_accuracy)
    with pytest.raises(ValueError, match="each once"):
        run_few_shot_heads(model, groups, images, labels, settings, heads=["prototype", "prototype"])
    with pytest.raises(ValueError, match="Unknown head"):
        run_few_shot_heads(model, groups, images, labels, settings, heads=["knn"])
