"""Prototype and linear-probe heads: exact on separable episodes, batched like one at a time, probe at its optimum."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mge.fewshot import HEADS, linear_probe_head, prototype_head


def separable_episode(n_way: int, k_shot: int, q_query: int, dim: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Classes at far-apart random points, images jittered around them: ``(support, query, query labels)``."""
    g = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(n_way, dim, generator=g)
    support = centres[:, None] + 0.1 * torch.randn(n_way, k_shot, dim, generator=g)  # (N, K, D)
    labels = torch.randperm(n_way * q_query, generator=g) % n_way  # shuffled query order
    query = centres[labels] + 0.1 * torch.randn(n_way * q_query, dim, generator=g)  # (N*Q, D)
    return support, query, labels


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize(("n_way", "k_shot"), [(5, 1), (5, 5), (20, 2)])
def test_head_is_exact_on_separable_points(head, n_way, k_shot) -> None:
    support, query, labels = separable_episode(n_way, k_shot, 7, dim=32, seed=n_way + k_shot)
    log_probs = HEADS[head](support, query)
    assert log_probs.shape == (n_way * 7, n_way)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(n_way * 7))
    assert torch.equal(log_probs.argmax(-1), labels)


def test_heads_fail_where_the_classes_overlap() -> None:
    """Same points, shuffled labels: the heads cannot be right (so the exactness above is earned)."""
    support, query, labels = separable_episode(5, 5, 20, dim=32, seed=0)
    mixed = support.flatten(0, 1)[torch.randperm(25, generator=torch.Generator().manual_seed(0))].view(5, 5, 32)
    for head in HEADS.values():
        accuracy = (head(mixed, query).argmax(-1) == labels).float().mean()
        assert accuracy < 0.9


@pytest.mark.parametrize("head", sorted(HEADS))
def test_batched_heads_equal_one_episode_at_a_time(head) -> None:
    g = torch.Generator().manual_seed(3)
    support, query = torch.randn(3, 4, 5, 2, 16, generator=g), torch.randn(3, 4, 10, 16, generator=g)
    batched = HEADS[head](support, query)  # (members, episodes, Q, N)
    assert batched.shape == (3, 4, 10, 5)
    for m in range(3):
        for e in range(4):
            torch.testing.assert_close(batched[m, e], HEADS[head](support[m, e], query[m, e]), rtol=1e-5, atol=1e-5)


def test_prototype_head_is_the_nearest_support_mean() -> None:
    g = torch.Generator().manual_seed(4)
    support, query = torch.randn(4, 3, 8, generator=g), torch.randn(9, 8, generator=g)
    means = support.mean(1)
    distances = ((query[:, None] - means[None]) ** 2).sum(-1)  # (Q, N)
    torch.testing.assert_close(prototype_head(support, query), F.log_softmax(-distances, dim=-1))


@pytest.mark.parametrize(("n_way", "k_shot"), [(5, 1), (5, 5)])
def test_linear_probe_reaches_the_regularised_optimum(n_way, k_shot) -> None:
    """The accelerated gradient iteration ends where L-BFGS on the same objective (weights in R^(D+1)) does."""
    g = torch.Generator().manual_seed(5)
    support = torch.randn(n_way, k_shot, 24, generator=g, dtype=torch.float64)
    query = torch.randn(11, 24, generator=g, dtype=torch.float64)

    def extended(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.normalize(x, dim=-1), torch.ones(len(x), 1, dtype=x.dtype)], dim=1)

    xs, xq = extended(support.flatten(0, 1)), extended(query)
    ys = torch.arange(n_way).repeat_interleave(k_shot)
    weights = torch.zeros(25, n_way, dtype=torch.float64, requires_grad=True)
    lam = 1.0 / (n_way * k_shot)  # C = 1
    optimiser = torch.optim.LBFGS(
        [weights], max_iter=2000, tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(xs @ weights, ys) + lam / 2 * weights.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    expected = (xq @ weights.detach()).log_softmax(-1)
    torch.testing.assert_close(linear_probe_head(support, query), expected, rtol=0, atol=1e-6)


def test_linear_probe_is_deterministic() -> None:
    support, query, _ = separable_episode(5, 3, 4, dim=16, seed=9)
    assert torch.equal(linear_probe_head(support, query), linear_probe_head(support.clone(), query.clone()))
