"""The few-shot transfer protocol (MGE.md section 6, claim 3): frozen backbones, shared episodes, one report.

Every group of models is evaluated on the *same* N-way K-shot episodes drawn from held-out classes:
each member's penultimate features of the held-out images are computed once (batched over
members, :func:`mge.evaluation.batched_features`), then indexed per episode, and a head
(prototype or linear probe) is fitted on each episode's support for all members and episodes of a
chunk at once. No parameter of a backbone changes.

Example:
    >>> import torch
    >>> from mge.fewshot import FewShotSettings, ModelGroup, random_init_params, run_few_shot
    >>> from mge.models import build_model
    >>> arch = dict(num_classes=5, in_channels=1, image_size=8)
    >>> model = build_model("mlp", **arch, hidden_dims=[16])
    >>> images, labels = torch.randn(60, 1, 8, 8), torch.arange(60) % 6
    >>> group = ModelGroup("random init", random_init_params("mlp", **arch, seed=0, hidden_dims=[16]))
    >>> report = run_few_shot(model, [group], images, labels, FewShotSettings(n_way=3, q_query=5, n_episodes=20))
    >>> report.rows()[0][:3]
    ['random init', 'each', 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

import torch
from torch import Tensor, nn

from mge.evaluation import batched_features, stacked_size
from mge.fewshot.episodes import Episodes, sample_episodes
from mge.fewshot.features import FEATURES, transform_features
from mge.fewshot.groups import ModelGroup
from mge.fewshot.heads import HEADS, Head
from mge.fewshot.report import FewShotReport, GroupResult

# Most float32 elements of one member chunk's features of the held-out images (1 GiB).
FEATURE_BUDGET = 2**28
# Most float32 elements of the support and query features gathered for one chunk of episodes (128 MiB).
EPISODE_BUDGET = 2**25


@dataclass(frozen=True)
class FewShotSettings:
    """The episodes and the head; the same settings give the same episodes for any models.

    Raises:
        ValueError: A count is not a positive integer (``n_way`` and ``n_episodes`` at least 2),
            or ``head`` is unknown.
    """

    n_way: int = 5  # classes per episode (5-way, Vinyals et al., 2016)
    k_shot: int = 1  # support images per class (1 and 5 are the usual settings)
    q_query: int = 15  # query images per class (15, Snell et al., 2017)
    n_episodes: int = 600  # episodes averaged: at least 600 for the paper's table (MGE.md section 6)
    seed: int = 0  # seed of the episode draw
    head: str = "prototype"  # "prototype" (nearest class mean) or "linear_probe" (logistic regression)
    features: str = "raw"  # "raw", "l2" or "centred_l2" (mge.fewshot.features); mge-fewshot's default is "l2"

    def __post_init__(self) -> None:
        for name, minimum in (("n_way", 2), ("k_shot", 1), ("q_query", 1), ("n_episodes", 2), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}. Set {name} to such a value.")
        if self.head not in HEADS:
            raise ValueError(f"Unknown head {self.head!r}. Valid values are {sorted(HEADS)}.")
        if self.features not in FEATURES:
            raise ValueError(f"Unknown features {self.features!r}. Valid values are {list(FEATURES)}.")


def run_few_shot(
    model: nn.Module,
    groups: Sequence[ModelGroup],
    images: Tensor,
    labels: Tensor,
    settings: FewShotSettings | None = None,
    *,
    centre_images: Tensor | None = None,
    batch_size: int = 500,
    models_per_chunk: int = 64,
) -> FewShotReport:
    """Evaluate every group on the same episodes drawn from ``images`` of classes the models never saw.

    Args:
        model: The architecture, with ``forward_features``; it fills the tensors a group's params
            omit (for a pool: the seed, whose BatchNorm statistics the members share). Its device
            is where everything runs.
        groups: The groups compared, with distinct names.
        images: ``(M, C, H, W)`` held-out images, normalised as in training (e.g.
            :meth:`~mge.data.ClassificationDataModule.held_out_tensors`).
        labels: ``(M,)`` their classes, any integer values.
        settings: Episodes and head; the defaults of :class:`FewShotSettings` when ``None``.
        centre_images: Images of the classes the models were trained on (e.g. the discriminator
            split), whose mean feature per member is subtracted for ``features="centred_l2"``;
            required then, refused otherwise.
        batch_size: Most images per forward pass.
        models_per_chunk: Most members per forward pass.

    Raises:
        ValueError: No group, duplicate names, mismatched ``images`` and ``labels``, episode
            settings the data cannot satisfy, or ``centre_images`` missing or superfluous.
    """
    settings = settings or FewShotSettings()
    reports = run_few_shot_heads(
        model,
        groups,
        images,
        labels,
        settings,
        heads=(settings.head,),
        centre_images=centre_images,
        batch_size=batch_size,
        models_per_chunk=models_per_chunk,
    )
    return reports[settings.head]


def run_few_shot_heads(
    model: nn.Module,
    groups: Sequence[ModelGroup],
    images: Tensor,
    labels: Tensor,
    settings: FewShotSettings,
    *,
    heads: Sequence[str],
    centre_images: Tensor | None = None,
    batch_size: int = 500,
    models_per_chunk: int = 64,
) -> dict[str, FewShotReport]:
    """:func:`run_few_shot` with several heads on the same episodes and the same features, computed once.

    Returns:
        One report per head, in the order of ``heads``; each report's settings name its head.

    Raises:
        ValueError: As :func:`run_few_shot`, or no head, an unknown or a repeated head.
    """
    if not heads or len(set(heads)) != len(heads):
        raise ValueError(f"heads must name at least one head, each once; got {list(heads)}.")
    per_head = {h: replace(settings, head=h) for h in heads}  # checks each name against HEADS
    if (centre_images is not None) != (settings.features == "centred_l2"):
        raise ValueError(
            f"centre_images are needed for features='centred_l2' and only then; got features={settings.features!r} "
            f"and centre_images {'given' if centre_images is not None else 'missing'}. Pass images of the train "
            "classes (e.g. the discriminator split), never of the held-out classes."
        )
    if not groups:
        raise ValueError("run_few_shot needs at least one ModelGroup.")
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ValueError(f"Group names must be distinct, got {names}.")
    if images.shape[:1] != labels.shape or labels.dim() != 1:
        raise ValueError(
            f"images (M, C, H, W) and labels (M,) must agree, got {tuple(images.shape)} and {tuple(labels.shape)}."
        )
    episodes = sample_episodes(
        labels,
        n_way=settings.n_way,
        k_shot=settings.k_shot,
        q_query=settings.q_query,
        n_episodes=settings.n_episodes,
        seed=settings.seed,
    )
    # Only the images some episode uses are passed through the backbones, each once.
    used, inverse = torch.unique(torch.cat([episodes.support.flatten(), episodes.query.flatten()]), return_inverse=True)
    n_support = episodes.support.numel()
    device = next(model.parameters()).device
    local = Episodes(
        classes=episodes.classes,
        support=inverse[:n_support].view_as(episodes.support).to(device),
        query=inverse[n_support:].view_as(episodes.query).to(device),
    )
    x = images[used.to(images.device)].to(device)
    head_fns = [HEADS[h] for h in heads]
    centre_x = None if centre_images is None else centre_images.to(device)
    results = [
        _evaluate(model, g, x, local, head_fns, settings.features, centre_x, batch_size, models_per_chunk)
        for g in groups
    ]
    n_classes, n_images = len(torch.unique(labels)), len(labels)
    return {
        h: FewShotReport(
            settings=per_head[h], n_classes=n_classes, n_images=n_images, groups=tuple(r[i] for r in results)
        )
        for i, h in enumerate(heads)
    }


@torch.no_grad()
def _evaluate(
    model: nn.Module,
    group: ModelGroup,
    x: Tensor,
    episodes: Episodes,
    heads: Sequence[Head],
    how: str,
    centre_images: Tensor | None,
    batch_size: int,
    models_per_chunk: int,
) -> list[GroupResult]:
    """One group on the episodes, one result per head: features once per member, heads per (members, episodes) chunk."""
    device = x.device
    params = dict(group.params)  # moved to the device chunk by chunk: a large pool need not fit there
    chosen = None
    if group.use == "best":
        chosen = int(cast(Tensor, group.scores).argmax())  # ModelGroup checked that scores are given
        params = {k: v[chosen : chosen + 1] for k, v in params.items()}
    n_members, n_episodes, n_way = stacked_size(params), episodes.n_episodes, episodes.n_way
    query_labels = episodes.query_labels()  # (N*Q,)
    # accuracy of each member's head, and the ensemble's summed probabilities, per head
    member_episode = torch.empty(len(heads), n_members, n_episodes, device=device)
    ensemble_probs = torch.zeros(len(heads), n_episodes, n_way * episodes.q_query, n_way, device=device)
    images_per_episode = n_way * (episodes.k_shot + episodes.q_query)

    def features(first: int, last: int, inputs: Tensor) -> Tensor:
        chunk = {k: v[first:last].to(device) for k, v in params.items()}
        return batched_features(model, chunk, inputs, batch_size=batch_size, models_per_chunk=models_per_chunk)

    dim = features(0, 1, x[:1]).shape[-1]
    members_per_chunk = max(1, min(n_members, FEATURE_BUDGET // (len(x) * dim)))
    for m0 in range(0, n_members, members_per_chunk):
        m1 = m0 + members_per_chunk
        centre = None if centre_images is None else features(m0, m1, centre_images).mean(1)  # (m, D)
        feats = transform_features(features(m0, m1, x), how, centre)  # (m, n_used, D)
        m = feats.shape[0]
        episodes_per_chunk = max(1, EPISODE_BUDGET // (m * images_per_episode * dim))
        for e0 in range(0, n_episodes, episodes_per_chunk):
            e1 = min(e0 + episodes_per_chunk, n_episodes)
            support = feats[:, episodes.support[e0:e1]]  # (m, e, N, K, D)
            query = feats[:, episodes.query[e0:e1]].flatten(2, 3)  # (m, e, N*Q, D)
            for i, head in enumerate(heads):
                log_probs = head(support, query)  # (m, e, N*Q, N)
                member_episode[i, m0 : m0 + m, e0:e1] = (log_probs.argmax(-1) == query_labels).float().mean(-1)
                if group.use == "ensemble":
                    ensemble_probs[i, e0:e1] += log_probs.exp().sum(0)
    if group.use == "ensemble":
        episode_accuracy = (ensemble_probs.argmax(-1) == query_labels).float().mean(-1)  # (heads, E)
    else:
        episode_accuracy = member_episode.mean(1)
    return [
        GroupResult(
            name=group.name,
            use=group.use,
            n_members=group.n_members,
            chosen=chosen,
            episode_accuracy=episode_accuracy[i].cpu(),
            member_accuracy=member_episode[i].mean(1).cpu(),
        )
        for i in range(len(heads))
    ]
