"""Episodes: N distinct held-out classes, K support and Q query images each, disjoint, reproducible by seed."""

from __future__ import annotations

import pytest
import torch

from mge.fewshot import sample_episodes

# 6 held-out classes with their dataset labels 4..9, 8 to 12 images each, in shuffled order.
HELD_OUT = torch.tensor([4, 5, 6, 7, 8, 9])
LABELS = HELD_OUT.repeat_interleave(torch.tensor([8, 9, 10, 11, 12, 8]))[
    torch.randperm(58, generator=torch.Generator().manual_seed(1))
]


def draw(seed: int = 0, **kwargs):
    settings = {"n_way": 5, "k_shot": 2, "q_query": 3, "n_episodes": 200, "seed": seed} | kwargs
    return sample_episodes(LABELS, **settings)


def test_each_episode_has_n_held_out_classes_with_k_support_and_q_query_images_of_its_class() -> None:
    episodes = draw()
    assert episodes.classes.shape == (200, 5)
    assert episodes.support.shape == (200, 5, 2) and episodes.query.shape == (200, 5, 3)
    assert (episodes.n_episodes, episodes.n_way, episodes.k_shot, episodes.q_query) == (200, 5, 2, 3)
    for e in range(episodes.n_episodes):
        classes = episodes.classes[e]
        assert len(set(classes.tolist())) == 5 and set(classes.tolist()) <= set(HELD_OUT.tolist())
        # row n holds images of class classes[n] only
        assert torch.equal(LABELS[episodes.support[e]], classes[:, None].expand(5, 2))
        assert torch.equal(LABELS[episodes.query[e]], classes[:, None].expand(5, 3))
        positions = torch.cat([episodes.support[e].flatten(), episodes.query[e].flatten()])
        assert len(set(positions.tolist())) == 5 * (2 + 3)  # support and query disjoint, no repeats


def test_query_labels_follow_the_flattened_query_order() -> None:
    episodes = draw()
    assert episodes.query_labels().tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]


def test_same_seed_same_episodes_other_seed_other_episodes() -> None:
    a, b, c = draw(seed=3), draw(seed=3), draw(seed=4)
    for field in ("classes", "support", "query"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.support, c.support)
    assert not torch.equal(a.classes, c.classes)


def test_every_class_and_image_is_drawn() -> None:
    episodes = draw(n_episodes=600)
    counts = torch.bincount(episodes.classes.flatten(), minlength=10)[4:]
    expected = 600 * 5 / 6
    assert ((counts - expected).abs() < 0.1 * expected).all(), counts.tolist()
    used = torch.cat([episodes.support.flatten(), episodes.query.flatten()]).unique()
    assert torch.equal(used, torch.arange(len(LABELS)))


def test_too_few_classes_or_images_name_the_fix() -> None:
    with pytest.raises(
        ValueError, match=r"n_way=7 needs at least 7 classes; the images have 6 \(\[4, 5, 6, 7, 8, 9\]\)"
    ):
        draw(n_way=7)
    with pytest.raises(ValueError, match=r"9 images per class are needed, but classes \[4, 9\] have only \[8, 8\]"):
        draw(k_shot=4, q_query=5)
    with pytest.raises(ValueError, match="1-D integer tensor"):
        sample_episodes(LABELS.float(), n_way=2, k_shot=1, q_query=1, n_episodes=2, seed=0)
