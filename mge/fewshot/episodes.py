"""N-way K-shot episodes, drawn once and shared by every model compared.

Comparing models on the same episodes removes the episode draw from their difference (a paired
comparison), so an episode list is a value: positions into one set of held-out images, drawn from
a seeded generator, reused for every group of models. We write the sampler rather than use
easyfsl's ``TaskSampler``: that one draws from Python's global ``random`` state (no seed or
generator argument), yields one Python list per task for a DataLoader, and would add pandas to our
dependencies; here all episodes are drawn at once as index tensors from a ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True, eq=False)
class Episodes:
    """Episodes as positions into a set of images; class ``n`` of an episode has episode label ``n``.

    Attributes:
        classes: ``(E, N)`` dataset labels of each episode's classes, in episode-label order.
        support: ``(E, N, K)`` positions of the support images; row ``n`` is of class ``classes[e, n]``.
        query: ``(E, N, Q)`` positions of the query images, disjoint from the support.
    """

    classes: Tensor
    support: Tensor
    query: Tensor

    @property
    def n_episodes(self) -> int:
        return self.support.shape[0]

    @property
    def n_way(self) -> int:
        return self.support.shape[1]

    @property
    def k_shot(self) -> int:
        return self.support.shape[2]

    @property
    def q_query(self) -> int:
        return self.query.shape[2]

    def query_labels(self) -> Tensor:
        """``(N * Q,)`` episode labels of the queries flattened as ``query.flatten(1)``: 0 x Q, 1 x Q, ..."""
        return torch.arange(self.n_way, device=self.query.device).repeat_interleave(self.q_query)


def sample_episodes(labels: Tensor, *, n_way: int, k_shot: int, q_query: int, n_episodes: int, seed: int) -> Episodes:
    """Draw ``n_episodes`` episodes from images labelled ``labels``.

    Each episode takes ``n_way`` distinct classes uniformly at random, then ``k_shot + q_query``
    distinct images of each class uniformly at random; the first ``k_shot`` are the support. All
    episodes are drawn at once from ``torch.Generator().manual_seed(seed)``: the same labels and
    seed give the same episodes.

    Args:
        labels: ``(M,)`` integer class of each image; any values (e.g. the dataset's held-out labels).
        n_way: Classes per episode.
        k_shot: Support images per class.
        q_query: Query images per class.
        n_episodes: Number of episodes.
        seed: Seed of the draw.

    Raises:
        ValueError: ``labels`` is not 1-D integer, has fewer than ``n_way`` classes, or a class has
            fewer than ``k_shot + q_query`` images.
    """
    if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be a 1-D integer tensor, got dtype {labels.dtype} and shape {tuple(labels.shape)}."
        )
    values, inverse, counts = torch.unique(labels.cpu(), return_inverse=True, return_counts=True)
    if len(values) < n_way:
        raise ValueError(
            f"n_way={n_way} needs at least {n_way} classes; the images have {len(values)} ({values.tolist()}). "
            f"Set n_way to at most {len(values)}."
        )
    need = k_shot + q_query
    short = counts < need
    if short.any():
        raise ValueError(
            f"k_shot + q_query = {need} images per class are needed, but classes {values[short].tolist()} have only "
            f"{counts[short].tolist()}. Lower k_shot or q_query."
        )
    generator = torch.Generator().manual_seed(seed)
    # Classes: the first n_way of a random permutation per episode.
    picked = torch.rand(n_episodes, len(values), generator=generator).argsort(dim=1)[:, :n_way]  # (E, N)
    # Images: positions grouped by class; per (episode, class) the first `need` of a random order
    # of that class's images (padding slots beyond its count sort last).
    by_class = torch.argsort(inverse, stable=True)  # (M,)
    starts = torch.cumsum(counts, 0) - counts  # (C,)
    slots = torch.arange(int(counts.max()))  # (S,)
    keys = torch.rand(n_episodes, n_way, len(slots), generator=generator)  # (E, N, S)
    keys[slots >= counts[picked].unsqueeze(-1)] = 2.0
    ranks = keys.argsort(dim=-1)[..., :need]  # (E, N, need)
    positions = by_class[starts[picked].unsqueeze(-1) + ranks]  # (E, N, need)
    return Episodes(classes=values[picked], support=positions[..., :k_shot], query=positions[..., k_shot:])
