"""The few-shot stage (table T4, MGE.md sections 6-7): labelled pools on episodes of classes their seed never saw.

Rows compared, all on one seeded list of episodes and with the same heads: random initialisation,
the seed, and for every pool its best member and its members as an ensemble of heads. The best
member is the one with the highest accuracy on the *discriminator split* (the seed's train classes,
held out of training), measured here for every pool kind alike; the held-out classes' test images
that the episodes come from never choose anything. An independently trained pool is passed like any
other (label it e.g. ``independent``): it is the upper reference.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from mge.errors import ConfigError
from mge.evaluation import summary
from mge.evaluation.pool_eval import evaluate_pool
from mge.fewshot import (
    HEADS,
    FewShotReport,
    FewShotSettings,
    ModelGroup,
    plot_reports,
    random_init_params,
    run_few_shot_heads,
    stack_state_dicts,
)
from mge.pool import Pool
from mge.runs.device import resolve_device
from mge.runs.pools import comparison_datamodule, load_pools, pool_data

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RANDOM_INIT = "random init"
SEED = "seed"


@dataclass(frozen=True)
class FewShotRunSettings:
    """Everything :func:`run_fewshot` needs besides the pools (``conf/fewshot.yaml: fewshot``)."""

    n_way: int = 5  # classes per episode
    k_shot: int = 1  # support images per class
    q_query: int = 15  # query images per class
    n_episodes: int = 600  # episodes averaged (at least 600 for T4, MGE.md section 6)
    episode_seed: int = 0  # seed of the episode draw: the same episodes for every row
    heads: tuple[str, ...] = ("prototype", "linear_probe")  # each head is fitted on the same features
    # raw | l2 | centred_l2 (centre: each model's mean on the discriminator split). l2 by a rule fixed before
    # the choice, on the train classes only: the best mean accuracy of the seeds' features on episodes of the
    # MNIST and Fashion-MNIST discriminator splits (docs/fewshot.md, "Which features").
    features: str = "l2"
    random_init_models: int = 5  # freshly initialised models averaged in the random-init row
    random_init_seed: int = 0  # seed of the first of them
    batch_size: int = 500  # most images per forward pass
    models_per_chunk: int = 64  # most members per forward pass

    def __post_init__(self) -> None:
        if not self.heads or len(set(self.heads)) != len(self.heads) or not set(self.heads) <= set(HEADS):
            raise ValueError(f"heads must be distinct names among {sorted(HEADS)}, got {list(self.heads)}.")
        self.episodes(self.heads[0])  # checks the episode counts and the features
        for name, minimum in (("random_init_models", 1), ("random_init_seed", 0), ("batch_size", 1),
                              ("models_per_chunk", 1)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")

    def episodes(self, head: str) -> FewShotSettings:
        """The protocol's settings for one head."""
        return FewShotSettings(
            n_way=self.n_way,
            k_shot=self.k_shot,
            q_query=self.q_query,
            n_episodes=self.n_episodes,
            seed=self.episode_seed,
            head=head,
            features=self.features,
        )


@dataclass(frozen=True)
class PoolSummary:
    """What a pool contributed: where it is, what it is, and the member its discriminator accuracy chose."""

    label: str
    path: str
    kind: str
    pool_hash: str
    n_members: int
    discriminator_accuracy: dict[str, float]  # mean, median, std, min, max over members
    best_member: str  # id of the member with the highest discriminator-split accuracy (first on a tie)
    best_discriminator_accuracy: float


@dataclass
class FewShotRunReport:
    """What :func:`run_fewshot` measured; :meth:`to_dict` is its ``metrics.json``."""

    settings: FewShotRunSettings
    dataset: str
    model: str
    train_classes: list[int] | None  # the seed's data.classes (None: all of its dataset's train classes)
    seed_pool: str  # the pool whose seed (first base) is the "seed" row
    seed_discriminator_accuracy: float
    pools: list[PoolSummary]
    reports: dict[str, FewShotReport]  # per head
    seconds: float  # discriminator scoring, features and heads
    device: str
    member_means: dict[str, dict[str, float]] = field(default_factory=dict)  # head -> pool -> mean member accuracy

    def rows(self) -> list[dict[str, Any]]:
        """The long table: one row per head and compared model, accuracies in [0, 1]."""
        chosen = {f"{p.label} best": p.best_member for p in self.pools}
        return [
            {
                "dataset": self.dataset,
                "n_way": self.settings.n_way,
                "k_shot": self.settings.k_shot,
                "features": self.settings.features,
                "head": head,
                "model": g.name,
                "use": g.use,
                "members": g.n_members,
                "chosen": chosen.get(g.name),
                "accuracy": g.mean,
                "ci95": g.ci95,
            }
            for head, report in self.reports.items()
            for g in report.groups
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "train_classes": self.train_classes,
            "settings": {**asdict(self.settings), "heads": list(self.settings.heads)},
            "n_classes": next(iter(self.reports.values())).n_classes,
            "n_images": next(iter(self.reports.values())).n_images,
            "seed_pool": self.seed_pool,
            "seed_discriminator_accuracy": self.seed_discriminator_accuracy,
            "pools": [asdict(p) for p in self.pools],
            # head -> model -> accuracy and CI: the paths T4's sweep table reads
            "accuracy": {
                h: {g.name: {"mean": g.mean, "ci95": g.ci95} for g in r.groups} for h, r in self.reports.items()
            },
            "member_mean_accuracy": self.member_means,
            "rows": self.rows(),
            "results": {h: r.to_dict() for h, r in self.reports.items()},
            "seconds": self.seconds,
            "device": self.device,
        }

    def plot(self) -> Figure:
        """One panel per head: bars with 95% CI whiskers."""
        title = f"{self.dataset} ({self.model}), {self.settings.features} features"
        return plot_reports(list(self.reports.values()), title=title)


def pool_params(pool: Pool, reference: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Every floating tensor in which some member differs from ``reference``, stacked ``{name: (M, *shape)}``.

    A member carries its targets; its base fills the rest. Tensors the protocol's architecture
    (holding ``reference``) already has for every member are left out, so a one-seed MGE pool costs
    its targets only, while members on other bases (an independent or evolved pool) get their own
    BatchNorm statistics.
    """
    params = pool.parameters()
    for name, value in reference.items():
        if name in params or not value.is_floating_point():
            continue
        per_member = [pool.bases[r.base].state_dict[name] for r in pool.records]
        if any(not torch.equal(t, value) for t in per_member):
            params[name] = torch.stack(per_member)
    return params


def run_fewshot(
    settings: FewShotRunSettings,
    pool_dirs: Mapping[str, str | Path],
    *,
    seed_pool: str | None = None,
    data_root: str | None = None,
    device: str = "auto",
) -> FewShotRunReport:
    """Evaluate random init, the seed, and each pool's best member and ensemble on shared few-shot episodes.

    Args:
        settings: episodes, heads and the random-init row.
        pool_dirs: labelled pool folders, in row order (e.g. ``{"MGE": ..., "E-MGE": ..., "independent": ...}``);
            they must share an architecture and a dataset split (:func:`mge.runs.load_pools`).
        seed_pool: the label whose pool's seed is the "seed" row; the first pool by default.
        data_root: where the seeds' dataset lives now; ``None``: where it was when they were trained.
        device: auto | cpu | cuda.

    Raises:
        ConfigError: pools that cannot be compared, or ``seed_pool`` is not a label.
        ValueError: the seed holds out no class, or the episodes need more classes or images than it holds out.
    """
    torch_device = resolve_device(device)
    pools = load_pools(pool_dirs)
    seed_pool = seed_pool or next(iter(pools))
    if seed_pool not in pools:
        raise ConfigError(f"seed_pool {seed_pool!r} is not one of the pools' labels {list(pools)}.")
    for label in pools:
        if label in (RANDOM_INIT, SEED):
            raise ConfigError(f"Pool label {label!r} is a row of its own; label the pool otherwise.")
    seed = pools[seed_pool].seed
    datamodule = comparison_datamodule(pools, data_root)
    images, labels = datamodule.held_out_tensors("test")
    x_disc, y_disc = datamodule.split_tensors("discriminator")

    start = time.perf_counter()
    model = seed.build().to(torch_device)
    reference = seed.state_dict
    arch = {"num_classes": seed.num_classes, "in_channels": seed.in_channels, "image_size": seed.image_size}
    groups = [
        ModelGroup(
            RANDOM_INIT,
            random_init_params(
                seed.arch, **arch, seed=settings.random_init_seed, n_models=settings.random_init_models,
                **seed.arch_kwargs,
            ),
        ),
        ModelGroup(SEED, stack_state_dicts([seed.state_dict])),
    ]  # fmt: skip
    summaries, seed_disc = [], float("nan")
    for label, pool in pools.items():
        if len(pool) == 0:
            raise ConfigError(f"Pool {label!r} ({pool.root}) has no member; it cannot be compared.")
        scored = evaluate_pool(
            pool, x_disc, y_disc, device=torch_device, batch_size=settings.batch_size,
            models_per_chunk=settings.models_per_chunk,
        )  # fmt: skip
        if label == seed_pool:
            seed_disc = scored.seed_accuracy
        best = int(scored.accuracies.argmax())
        summaries.append(
            PoolSummary(
                label=label,
                path=str(Path(pool.root).resolve()),
                kind=pool.kind,
                pool_hash=pool.pool_hash(),
                n_members=len(pool),
                discriminator_accuracy=summary(scored.accuracies),
                best_member=pool.records[best].id,
                best_discriminator_accuracy=float(scored.accuracies[best]),
            )
        )
        params = pool_params(pool, reference)
        groups += [
            ModelGroup(f"{label} best", params, use="best", scores=scored.accuracies),
            ModelGroup(f"{label} ensemble", params, use="ensemble"),
        ]
    reports = run_few_shot_heads(
        model, groups, images, labels, settings.episodes(settings.heads[0]), heads=settings.heads,
        centre_images=x_disc if settings.features == "centred_l2" else None,
        batch_size=settings.batch_size, models_per_chunk=settings.models_per_chunk,
    )  # fmt: skip
    member_means = {
        head: {
            g.name.removesuffix(" ensemble"): float(g.member_accuracy.mean())
            for g in report.groups
            if g.use == "ensemble"
        }
        for head, report in reports.items()
    }
    classes = pool_data(pools[seed_pool]).get("classes")
    return FewShotRunReport(
        settings=settings,
        dataset=datamodule.name,
        model=seed.arch,
        train_classes=None if classes is None else list(classes),
        seed_pool=seed_pool,
        seed_discriminator_accuracy=seed_disc,
        pools=summaries,
        reports=reports,
        seconds=time.perf_counter() - start,
        device=str(torch_device),
        member_means=member_means,
    )
