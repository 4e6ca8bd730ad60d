"""Labelled groups of models compared in the few-shot protocol, and how each group is used.

A group is stacked parameters of one architecture (``{name: (M, *shape)}``, as
:meth:`mge.pool.Pool.parameters` returns them) and a use: each member on its own, the best member
by a score measured on the discriminator split, or the members as an ensemble.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from mge.evaluation import stacked_size
from mge.models import build_model

Use = Literal["each", "best", "ensemble"]
USES: tuple[str, ...] = ("each", "best", "ensemble")


@dataclass(frozen=True, eq=False)
class ModelGroup:
    """Models of one kind (random init, seed, an MGE pool, ...) and how the protocol uses them.

    Args:
        name: The row label in tables and plots, e.g. "MGE ensemble".
        params: ``{name: (M, *shape)}`` stacked tensors of ``M`` members; tensors it omits come from
            the architecture passed to the protocol (e.g. the seed's BatchNorm statistics for a pool).
        use: ``"each"``: every member's own head, accuracy averaged over members; ``"best"``: the
            member with the highest ``scores`` alone; ``"ensemble"``: the members' heads'
            class probabilities averaged per query.
        scores: ``(M,)`` selection score of each member for ``use="best"``, higher is better. It
            must come from the discriminator split (e.g. the pool records' discriminator accuracy),
            never from the test set the episodes are drawn from.

    Raises:
        ValueError: ``name`` is empty, ``use`` is unknown, ``params`` do not stack, or ``scores``
            is missing, misshapen or non-finite for ``use="best"`` (or given for another use).
    """

    name: str
    params: Mapping[str, Tensor]
    use: Use = "each"
    scores: Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"A model group needs a non-empty name, got {self.name!r}.")
        if self.use not in USES:
            raise ValueError(f"Unknown use {self.use!r} for group {self.name!r}. Valid values are {list(USES)}.")
        if not self.params:
            raise ValueError(f"Group {self.name!r} has no parameters; pass {{name: (M, *shape)}} stacked tensors.")
        n = stacked_size(self.params)
        if self.use == "best":
            if self.scores is None:
                raise ValueError(
                    f"Group {self.name!r} uses its best member but has no scores; pass scores=(M,) measured on "
                    "the discriminator split (e.g. each pool member's discriminator accuracy)."
                )
            if tuple(self.scores.shape) != (n,) or not torch.isfinite(self.scores).all():
                raise ValueError(
                    f"Group {self.name!r}: scores must be {n} finite values, one per member; got shape "
                    f"{tuple(self.scores.shape)} with values {self.scores.tolist()}."
                )
        elif self.scores is not None:
            raise ValueError(f"Group {self.name!r}: scores are only used with use='best', not use={self.use!r}.")

    @property
    def n_members(self) -> int:
        return stacked_size(self.params)


def stack_state_dicts(state_dicts: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Stack models' floating-point tensors into ``{name: (M, *shape)}``, e.g. a seed as a one-member group.

    Integer buffers (BatchNorm's ``num_batches_tracked``) are left out: evaluation never reads them,
    and a stacked name that batched evaluation does not know sends it to its slow path.

    Args:
        state_dicts: One state dict per model, all of the same architecture.

    Raises:
        ValueError: No state dict, or they differ in names.
    """
    if not state_dicts:
        raise ValueError("stack_state_dicts needs at least one state dict.")
    names = [k for k, v in state_dicts[0].items() if v.is_floating_point()]
    for i, sd in enumerate(state_dicts[1:], start=1):
        if {k for k, v in sd.items() if v.is_floating_point()} != set(names):
            raise ValueError(f"State dict {i} has other tensor names than state dict 0; stack one architecture.")
    return {k: torch.stack([sd[k].detach() for sd in state_dicts]) for k in names}


def random_init_params(
    arch: str,
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    seed: int,
    n_models: int = 1,
    **arch_kwargs: object,
) -> dict[str, Tensor]:
    """Freshly initialised models of an architecture, stacked: the "random init" baseline.

    Model ``i`` is built under ``torch.manual_seed(seed + i)`` inside a forked RNG, so the caller's
    random state is untouched. BatchNorm statistics are the initial ones (mean 0, variance 1).

    Args:
        arch: A registered architecture (:func:`mge.models.list_models`).
        num_classes: Logits of the head, as the compared models have.
        in_channels: Channels of the input images.
        image_size: Side of the square input images.
        seed: Seed of the first model.
        n_models: Number of models.
        **arch_kwargs: The architecture's own arguments, as the compared models have.
    """
    if isinstance(n_models, bool) or not isinstance(n_models, int) or n_models < 1:
        raise ValueError(f"n_models must be a positive integer, got {n_models!r}.")
    state_dicts = []
    for i in range(n_models):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)
            model = build_model(
                arch, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **arch_kwargs
            )
        state_dicts.append(model.state_dict())
    return stack_state_dicts(state_dicts)
