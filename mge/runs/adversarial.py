"""The adversarial stage (table T5): labelled pools attacked and used as defences, on their seed's test set.

The seed is the first pool's first base (the model an attacker without the pool would know);
every pool must share its architecture and dataset split (:func:`mge.runs.load_pools`). The
attacked examples follow the DVERGE protocol (Yang et al. 2020): a seeded sample of test examples
that the seed and every compared member classify correctly. :func:`mge.adversarial.evaluate_adversarial`
then measures, per eps, the seed white-box, transfer from the seed to each member, member-to-member
transfer, and each pool as a majority vote and as a random member per query, under transfer and
under whole-pool attacks, with the worst case per example.

Pools may be compared at one size: ``members`` draws that many members of each pool with one
seeded draw per pool, so pools of equal length get the same positions (a noise pool matched
member by member to an MGE pool keeps its pairs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mge.adversarial import (
    DEFAULT_EPS,
    MAJORITY_VOTE_TIES,
    AdversarialReport,
    AdversarialSettings,
    correct_by_all,
    default_eps,
    evaluate_adversarial,
    to_pixels,
)
from mge.adversarial.evaluate import ENSEMBLE_ATTACKS, SEED
from mge.pool import Pool, SeedModel
from mge.runs.device import resolve_device
from mge.runs.pools import comparison_datamodule, load_pools, pool_data

# The figures of the T5 table taken as they are from the evaluation: column -> (defence, attack).
MEMBER_FIGURES: dict[str, tuple[str, str]] = {
    "member_transfer_fgsm": ("member", "fgsm_seed"),
    "member_transfer_pgd": ("member", "pgd_seed"),
    "member_white_box": ("member", "pgd_white_box"),
}
DEFENCES = {"vote": "majority_vote", "random": "random_member"}  # column prefix -> defence


def _check_int(name: str, value: object, low: int, fix: str, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}{' or null' if optional else ''}, got {value!r}. {fix}")


@dataclass(frozen=True)
class AdversarialRunSettings:
    """What :func:`attack_pools` runs; the field names are ``mge-attack``'s config keys.

    Raises:
        ValueError: a value of the wrong type or out of range; the message names the field, the
            value and the fix.
    """

    eps: tuple[float, ...] | None = None  # L-inf budgets, pixel units; None: mge.adversarial.default_eps(dataset)
    steps: int = 40  # PGD steps (Madry et al. 2018 use 40 on MNIST)
    relative_step: float = 2.5  # PGD step = relative_step * eps / steps
    restarts: int = 1  # PGD random restarts; the worst case per example is kept
    examples: int = 500  # test examples attacked, all classified correctly by every compared model
    members: int | None = None  # members drawn per pool (the same positions in pools of equal length); None: all
    matrix_members: int = 8  # members per pool in the member-to-member transfer matrix
    seed: int = 0  # the sample of examples and members, and PGD's random starts
    batch_size: int = 256  # examples per attack step; memory grows with members x batch_size
    device: str = "auto"  # auto | cpu | cuda
    data_root: str | None = None  # where the seed's dataset lives; None: where it was trained

    def __post_init__(self) -> None:
        eps = self.eps
        if eps is not None:
            if isinstance(eps, (str, bytes)) or not isinstance(eps, Sequence) or not eps:
                raise ValueError(f"eps must be a non-empty list of budgets or null, got {eps!r}. E.g. [0.1, 0.2, 0.3].")
            for e in eps:
                if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or not 0 <= e <= 1:
                    raise ValueError(f"eps must hold budgets in [0, 1] (pixel units), got {e!r} in {list(eps)}.")
            object.__setattr__(self, "eps", tuple(float(e) for e in eps))  # a config list becomes a tuple
        _check_int("steps", self.steps, 1, "Use tens of steps, e.g. 40.")
        r = self.relative_step
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r <= 0:
            raise ValueError(f"relative_step must be a finite number > 0, got {r!r}. E.g. 2.5 (step = 2.5 eps/steps).")
        _check_int("restarts", self.restarts, 1, "Use 1, or more for a stronger attack.")
        _check_int("examples", self.examples, 1, "Use a few hundred on a CPU.")
        _check_int("members", self.members, 1, "Use the smallest pool's size, or null for every member.", optional=True)
        _check_int("matrix_members", self.matrix_members, 1, "Use e.g. 8.")
        _check_int("seed", self.seed, 0, "Use a non-negative integer.")
        _check_int("batch_size", self.batch_size, 1, "Lower it when memory runs out.")
        resolve_device(self.device)
        if self.data_root is not None and not isinstance(self.data_root, str):
            raise ValueError(f"data_root must be a folder path or null, got {self.data_root!r}.")

    def adversarial(self, dataset: str) -> AdversarialSettings:
        """The evaluation's settings on ``dataset`` (its default eps sweep unless ``eps`` is set)."""
        if self.eps is None and dataset not in DEFAULT_EPS:
            raise ValueError(
                f"eps is null and dataset {dataset!r} has no default sweep (defaults: {sorted(DEFAULT_EPS)}). "
                "Give budgets in pixel units, e.g. eps=[0.0078,0.0157,0.0314] (2/255, 4/255, 8/255) for CIFAR-10."
            )
        return AdversarialSettings(
            eps=self.eps if self.eps is not None else default_eps(dataset),
            pgd_steps=self.steps,
            pgd_relative_step=self.relative_step,
            pgd_restarts=self.restarts,
            seed=self.seed,
            matrix_members=self.matrix_members,
            batch_size=self.batch_size,
        )


@dataclass(frozen=True)
class PoolUsed:
    """One labelled pool of the comparison and the members of it that were evaluated."""

    path: str
    kind: str
    size: int  # members in the pool
    pool_hash: str
    members: list[int]  # positions of the evaluated members in the pool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AdversarialRunReport:
    """What :func:`attack_pools` measured; :meth:`to_dict` is ``mge-attack``'s ``metrics.json``."""

    dataset: str
    model: str
    seed: dict[str, Any]  # which pool's base was attacked, its hash and recorded test accuracy
    pools: dict[str, PoolUsed]
    test_examples: int  # size of the test set
    scanned: int  # test examples checked (in a seeded order) to find the attacked ones
    agreeing: int  # ... of which every compared model classified correctly
    settings: AdversarialRunSettings
    adversarial: AdversarialReport
    seconds: float  # wall-clock of the evaluation (attacks and scoring), not of loading
    device: str

    def table(self) -> list[dict[str, Any]]:
        """The T5 table: one row per (eps, pool); accuracies on the attacked examples.

        ``seed_white_box``: the seed on its own PGD examples. ``member_*``: the pool's members one
        by one (mean over members) on the seed's FGSM / PGD examples, and on their own PGD examples
        (``member_white_box``, the transfer matrix's diagonal); ``matrix_off_diagonal``: members on
        other members' PGD examples. ``vote_*`` / ``random_*``: the pool as a majority vote / as a
        random member per query, under the seed's PGD (``transfer``), under the strongest single
        whole-pool attack (``whole_pool``, and which one in ``*_strongest``), and the per-example
        worst case over every attack (``worst_case``, the figure to quote).
        """
        rows = []
        for eps in self.adversarial.settings.eps:
            seed_white_box = self._accuracy(eps, SEED, "seed", "pgd_seed")
            for pool in self.adversarial.pools:
                row: dict[str, Any] = {
                    "dataset": self.dataset,
                    "eps": eps,
                    "pool": pool,
                    "kind": self.pools[pool].kind,
                    "members": len(self.pools[pool].members),
                    "examples": self.adversarial.n_evaluated,
                    "seed_white_box": seed_white_box,
                }
                row |= {name: self._accuracy(eps, pool, *key) for name, key in MEMBER_FIGURES.items()}
                matrix = self.adversarial.transfer_matrices[pool][eps]
                s = matrix.shape[0]
                off = (matrix.sum() - matrix.diagonal().sum()) / (s * (s - 1)) if s > 1 else None
                row["matrix_off_diagonal"] = None if off is None else off.item()
                for prefix, defence in DEFENCES.items():
                    scores = {a: self._accuracy(eps, pool, defence, a) for a in ENSEMBLE_ATTACKS}
                    strongest = min(scores, key=lambda a: scores[a])
                    row[f"{prefix}_transfer"] = self._accuracy(eps, pool, defence, "pgd_seed")
                    row[f"{prefix}_whole_pool"], row[f"{prefix}_strongest"] = scores[strongest], strongest
                    row[f"{prefix}_worst_case"] = self._accuracy(eps, pool, defence, "worst_case")
                row["panel"] = f"{self.dataset}, eps {eps:g}"  # a sweep plot's row of panels: one dataset and budget
                rows.append(row)
        return rows

    def _accuracy(self, eps: float, pool: str, defence: str, attack: str) -> float:
        ((_, value),) = [(e, a) for e, a in self.adversarial.accuracy(pool, defence, attack) if e == eps]
        return value

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "seed": self.seed,
            "pools": {label: p.to_dict() for label, p in self.pools.items()},
            "test_examples": self.test_examples,
            "scanned": self.scanned,
            "agreeing": self.agreeing,
            "examples": self.adversarial.n_evaluated,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()},
            "eps": list(self.adversarial.settings.eps),
            "majority_vote_ties": MAJORITY_VOTE_TIES,
            "seconds": self.seconds,
            "device": self.device,
            "table": self.table(),
            "adversarial": self.adversarial.to_dict(),
        }


def sample_members(pool: Pool, members: int | None, seed: int, label: str) -> list[int]:
    """Positions of ``members`` members of ``pool`` (sorted), from a draw seeded by ``seed`` alone."""
    if members is None:
        return list(range(len(pool)))
    if members > len(pool):
        raise ValueError(
            f"members={members} but pool {label!r} ({pool.root}) has only {len(pool)}. "
            f"Compare the pools at the smallest one's size (members={len(pool)}) or give a larger pool."
        )
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return sorted(order[:members].tolist())


def member_stack(pool: Pool, indices: Sequence[int], reference: SeedModel) -> dict[str, Tensor]:
    """The chosen members' tensors ``{name: (B, *shape)}`` for a model holding ``reference``'s.

    A member carries its targets; its other floating tensors are its base's. Those are stacked too
    where some member's base differs from ``reference`` (pools of several bases, or made from
    another seed), so every member runs with its own full state.
    """
    params = pool.parameters(indices)
    for name, tensor in reference.state_dict.items():
        if name in params or not tensor.is_floating_point():
            continue
        rows = [pool.bases[pool.records[i].base].state_dict[name] for i in indices]
        if any(not torch.equal(row, tensor) for row in rows):
            params[name] = torch.stack(rows)
    return params


def attackable_examples(
    model: nn.Module,
    stacks: Sequence[Mapping[str, Tensor]],
    x: Tensor,
    y: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    n: int,
    seed: int,
) -> tuple[Tensor, int, int]:
    """The first ``n`` test examples, in a seeded order, that every model of ``stacks`` gets right.

    Scans the order in chunks of ``n``, so only about ``n / agreement`` examples are evaluated.

    Returns:
        ``(indices, scanned, agreeing)``: the chosen indices into ``x`` (sorted), how many
        examples were checked, and how many of those every model classified correctly.

    Raises:
        ValueError: fewer than ``n`` test examples are classified correctly by every model.
    """
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)).to(y.device)
    found: list[Tensor] = []
    scanned = agreeing = 0
    for chunk in order.split(n):
        keep = correct_by_all(model, stacks, x[chunk], y[chunk], mean, std)
        found.append(chunk[keep])
        scanned, agreeing = scanned + len(chunk), agreeing + int(keep.sum())
        if agreeing >= n:
            break
    if agreeing < n:
        raise ValueError(
            f"examples={n} but only {agreeing} of the {len(y)} test examples are classified correctly by the seed "
            "and every evaluated member. Lower examples (or members)."
        )
    return torch.cat(found)[:n].sort().values, scanned, agreeing


def attack_pools(pool_paths: Mapping[str, str | Path], settings: AdversarialRunSettings) -> AdversarialRunReport:
    """Attack the first pool's seed and defend with every pool, over an eps sweep (see the module docstring).

    Args:
        pool_paths: label -> pool folder, e.g. ``{"MGE": ..., "noise": ..., "independent": ...}``.
        settings: the attacks, the sample of examples and members, the device.

    Raises:
        ConfigError: no pool, or pools that cannot be compared (:func:`mge.runs.load_pools`).
        ValueError: a pool smaller than ``members``, a label ``"seed"``, or too few attackable examples.
    """
    if SEED in pool_paths:
        raise ValueError(f"A pool may not be labelled {SEED!r}: the seed's rows use that name. Rename the pool.")
    device = resolve_device(settings.device)
    pools = load_pools(pool_paths)
    first_label, first = next(iter(pools.items()))
    seed = first.seed
    dataset = str(pool_data(first)["name"])
    adversarial_settings = settings.adversarial(dataset)
    datamodule = comparison_datamodule(pools, settings.data_root)
    x_test, y_test = datamodule.split_tensors("test")
    mean, std = datamodule.mean, datamodule.std
    pixels, labels = to_pixels(x_test, mean, std).to(device), y_test.to(device)

    model = seed.build().to(device)
    model.requires_grad_(False)  # attacks need input gradients only
    seed_params = {k: v.to(device) for k, v in seed.state_dict.items() if v.is_floating_point()}
    used = {label: sample_members(pool, settings.members, settings.seed, label) for label, pool in pools.items()}
    stacks = {
        label: {k: v.to(device) for k, v in member_stack(pool, used[label], seed).items()}
        for label, pool in pools.items()
    }
    seed_stack = {k: v.unsqueeze(0) for k, v in seed_params.items()}
    index, scanned, agreeing = attackable_examples(
        model, [seed_stack, *stacks.values()], pixels, labels, mean, std, settings.examples, settings.seed
    )
    start = time.perf_counter()
    report = evaluate_adversarial(
        model, seed_params, stacks, pixels[index], labels[index], mean, std, adversarial_settings
    )
    seconds = time.perf_counter() - start
    base_name = next(iter(first.bases))
    return AdversarialRunReport(
        dataset=dataset,
        model=seed.arch,
        seed={
            "pool": first_label,
            "base": base_name,
            "sha256": first.manifest.bases[base_name].sha256,
            "test_accuracy": seed.meta.get("test_accuracy"),
        },
        pools={
            label: PoolUsed(
                path=str(Path(pool.root).resolve()),
                kind=pool.kind,
                size=len(pool),
                pool_hash=pool.pool_hash(),
                members=used[label],
            )
            for label, pool in pools.items()
        },
        test_examples=len(labels),
        scanned=scanned,
        agreeing=agreeing,
        settings=settings,
        adversarial=report,
        seconds=seconds,
        device=str(device),
    )
