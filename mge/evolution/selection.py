"""Survivor selection among parents and accepted children (spec section 3).

- ``"elitist"``: the best ``mu`` by fitness, the (mu + lambda) selection of evolution strategies
  (Beyer & Schwefel 2002): a member only dies when ``mu`` fitter ones exist.
- ``"tournament"``: ``mu`` tournaments, each among ``size`` members drawn without replacement from
  those not yet chosen; the fittest of each survives (Goldberg & Deb 1991, "A comparative analysis
  of selection schemes used in genetic algorithms", FOGA). Choosing without replacement keeps
  clones out of the population; weaker members survive at a rate ``size`` tunes.

Ties go to the lower index: parents come before children in the union, so an unchanged parent
beats an equally fit child.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

Selection = Literal["elitist", "tournament"]
SELECTIONS: tuple[str, ...] = get_args(Selection)


def elitist(fitness: Tensor, survivors: int) -> Tensor:
    """Indices (min(survivors, B),) of the fittest members of ``fitness`` (B,), fittest first."""
    order = torch.sort(fitness, descending=True, stable=True).indices
    return order[:survivors]


def tournament(fitness: Tensor, survivors: int, *, size: int, generator: torch.Generator) -> Tensor:
    """Indices (min(survivors, B),) of tournament winners, in the order they were chosen.

    Args:
        fitness: (B,) fitness of the candidates.
        survivors: mu, the number of tournaments.
        size: members per tournament (all remaining ones when fewer remain).
        generator: draws the contestants.
    """
    remaining = torch.arange(fitness.shape[0])
    winners = []
    for _ in range(min(survivors, fitness.shape[0])):
        drawn = torch.randperm(remaining.shape[0], generator=generator)[:size]
        contestants = remaining[drawn.sort().values]  # ascending index: argmax's first maximum is the lowest
        winner = contestants[fitness[contestants.to(fitness.device)].argmax().cpu()]
        winners.append(winner)
        remaining = remaining[remaining != winner]
    return torch.stack(winners)


def select(
    fitness: Tensor, survivors: int, *, kind: Selection, tournament_size: int, generator: torch.Generator
) -> Tensor:
    """Indices of the ``survivors`` members to keep; ``kind`` is ``"elitist"`` or ``"tournament"``."""
    if kind == "elitist":
        return elitist(fitness, survivors)
    if kind == "tournament":
        return tournament(fitness, survivors, size=tournament_size, generator=generator)
    raise ValueError(f"Unknown selection {kind!r}. Valid values are {list(SELECTIONS)}; set evolution.selection.")
