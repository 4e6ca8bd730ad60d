"""Adversarial evaluation of a seed and its pools (spec section 6, table T5).

The protocol follows DVERGE (Yang et al. 2020, "DVERGE: Diversifying vulnerabilities for enhanced
robust generation of ensembles"): only test examples that *every* compared model classifies
correctly are attacked, so that an accuracy under attack measures what the attack broke, not what
a model got wrong anyway, and the seed and all pools are scored on the same examples.

For each eps of a sweep:

- the seed, white-box: its accuracy on its own FGSM and PGD examples;
- transfer: each pool member's accuracy on the seed's FGSM and PGD examples;
- a member-to-member transfer matrix on a sample of members: row i holds the accuracies of every
  sampled member on the PGD examples made on member i (the diagonal is white-box);
- the pool as a defence, majority vote and a random member per query (its exact expected
  accuracy, the mean over members), attacked with the seed's examples (transfer) and with the
  whole-ensemble attacks of :mod:`mge.adversarial.attacks`, four per eps: for the vote, PGD on
  the averaged logits and on the averaged probabilities; for the random member, PGD with EOT
  (the mean per-member loss) and on the averaged probabilities. Every attack's examples are
  scored against both defences, and a defence's robust accuracy is the worst case over all of
  them, taken per example: an example counts as defended only if it survives every attack.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from mge.adversarial.attacks import AttackSettings, EnsembleDefence, EnsembleLoss, attack_ensemble, attack_members
from mge.adversarial.defences import majority_vote_correct, random_member_accuracy
from mge.adversarial.pixels import check_pixels, normalise
from mge.evaluation import batched_logits, predict_batched, stacked_size

# eps sweeps in pixel units. MNIST: Madry et al. (2018) train and test at 0.3; Fashion-MNIST is
# broken by smaller budgets, hence half. The 8x8 digits are MNIST-like digits. Each LeNet-5 sweep
# starts one budget lower (MNIST 0.05, Fashion-MNIST 0.02) than first chosen: PGD-40 leaves the
# undefended seeds at 1% (MNIST, 0.2) and 18% (Fashion-MNIST, 0.05) already (docs/adversarial.md),
# so the larger budgets alone cannot tell transfer or defences apart.
DEFAULT_EPS: dict[str, tuple[float, ...]] = {
    "mnist": (0.05, 0.1, 0.2, 0.3),
    "fashion_mnist": (0.02, 0.05, 0.1, 0.2),
    "digits": (0.1, 0.2, 0.3),
}
SEED = "seed"  # the seed's name in rows and plots; no pool may use it
# The whole-pool attacks: name -> (the defence that judges its candidates, the loss PGD ascends).
ENSEMBLE_ATTACKS: dict[str, tuple[EnsembleDefence, EnsembleLoss]] = {
    "pgd_vote": ("vote", "logits"),
    "pgd_vote_probs": ("vote", "probabilities"),
    "pgd_eot": ("random_member", "members"),
    "pgd_eot_probs": ("random_member", "probabilities"),
}


def default_eps(dataset: str) -> tuple[float, ...]:
    """The eps sweep for ``dataset``; other datasets need theirs chosen explicitly."""
    if dataset not in DEFAULT_EPS:
        raise ValueError(
            f"No default eps sweep for dataset {dataset!r}; defaults exist for {sorted(DEFAULT_EPS)}. "
            "Pass AdversarialSettings(eps=(...)) in pixel units (e.g. 2/255, 4/255, 8/255 for CIFAR-10)."
        )
    return DEFAULT_EPS[dataset]


def _positive_int(field_name: str, value: object, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"AdversarialSettings.{field_name} must be an integer >= 1, got {value!r}. {fix}")


@dataclass(frozen=True)
class AdversarialSettings:
    """What :func:`evaluate_adversarial` runs. Every PGD is built by :meth:`pgd`, every FGSM by :meth:`fgsm`.

    Raises:
        ValueError: a value is of the wrong type or out of range; the message names the field,
            the value and the fix.
    """

    eps: tuple[float, ...] = DEFAULT_EPS["mnist"]  # L-inf budgets in pixel units, one evaluation each
    pgd_steps: int = 40  # Madry et al. (2018) on MNIST
    pgd_relative_step: float = 2.5  # step = 2.5 eps / steps (see AttackSettings.pgd)
    pgd_restarts: int = 1  # random restarts of every PGD; the worst case is kept
    seed: int = 0  # random starts and the sample of members in the transfer matrix
    matrix_members: int = 8  # members sampled per pool for the transfer matrix (all if fewer)
    batch_size: int = 256  # examples per attack step; memory grows with members x batch_size

    def __post_init__(self) -> None:
        eps = self.eps
        if isinstance(eps, (str, bytes)) or not isinstance(eps, Sequence) or len(eps) == 0:
            raise ValueError(
                f"AdversarialSettings.eps must be a non-empty list of budgets, got {eps!r}. E.g. [0.1, 0.3]."
            )
        for e in eps:
            if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e) or not 0 <= e <= 1:
                raise ValueError(
                    f"AdversarialSettings.eps must hold budgets in [0, 1] (pixel units), got {e!r} in {list(eps)}."
                )
        if len(set(eps)) != len(eps):
            raise ValueError(f"AdversarialSettings.eps has repeated budgets: {list(eps)}. List each once.")
        object.__setattr__(self, "eps", tuple(sorted(float(e) for e in eps)))  # a config list becomes a tuple
        _positive_int("pgd_steps", self.pgd_steps, "Use tens of steps, e.g. 40.")
        _positive_int("pgd_restarts", self.pgd_restarts, "Use 1, or more for a stronger attack.")
        _positive_int("matrix_members", self.matrix_members, "Use e.g. 8.")
        _positive_int("batch_size", self.batch_size, "Lower it when memory runs out.")
        r = self.pgd_relative_step
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r <= 0:
            raise ValueError(f"AdversarialSettings.pgd_relative_step must be a finite number > 0, got {r!r}. E.g. 2.5.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"AdversarialSettings.seed must be an integer in [0, 2**63), got {self.seed!r}.")

    def fgsm(self, eps: float) -> AttackSettings:
        """The FGSM run at budget ``eps``."""
        return AttackSettings.fgsm(eps)

    def pgd(self, eps: float) -> AttackSettings:
        """The PGD run at budget ``eps`` (every PGD of the evaluation: on the seed, members and pools)."""
        return AttackSettings.pgd(
            eps, steps=self.pgd_steps, relative_step=self.pgd_relative_step, restarts=self.pgd_restarts, seed=self.seed
        )


@torch.no_grad()
def correct_by_all(
    model: nn.Module,
    stacks: Sequence[Mapping[str, Tensor]],
    x: Tensor,
    y: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
) -> Tensor:
    """``(N,)`` bool: which clean examples every member of every stack classifies correctly.

    The DVERGE protocol's example set (Yang et al. 2020): attacks are scored only on these.

    Args:
        model: the shared architecture.
        stacks: stacked parameter sets ``{name: (B, *shape)}`` (the seed as B = 1, and each pool).
        x: clean pixels ``(N, C, H, W)`` in [0, 1].
        y: labels ``(N,)``.
        mean: the dataset's per-channel mean.
        std: the dataset's per-channel std.
    """
    check_pixels(x)
    inputs = normalise(x, mean, std)
    keep = torch.ones_like(y, dtype=torch.bool)
    for params in stacks:
        keep &= (predict_batched(model, params, inputs) == y).all(dim=0)
    return keep


@dataclass(frozen=True)
class AdversarialReport:
    """What :func:`evaluate_adversarial` measured.

    ``results`` holds one record per (eps, pool, defence, attack); see :meth:`rows`. Accuracies are
    fractions of the ``n_evaluated`` examples. Defences:
    ``seed`` (white-box), ``member`` (each member alone: ``accuracy`` is the mean over members,
    with ``min`` and ``max``), ``majority_vote`` and ``random_member``. Attacks: ``fgsm_seed`` and
    ``pgd_seed`` (made on the seed), ``pgd_white_box`` (each sampled member's own PGD, the transfer
    matrix's diagonal), the whole-pool attacks of :data:`ENSEMBLE_ATTACKS` (``pgd_vote``,
    ``pgd_vote_probs``, ``pgd_eot``, ``pgd_eot_probs``), and ``worst_case`` (per example, the worst
    of the attacks listed for that defence).
    """

    settings: AdversarialSettings
    n_test: int  # examples given
    n_evaluated: int  # examples every compared model classifies correctly: the ones attacked
    results: list[dict[str, Any]]
    pools: list[str]  # pool names, in the order given
    transfer: dict[str, dict[float, dict[str, Tensor]]]  # pool -> eps -> seed attack -> (B,) member accuracies
    transfer_matrices: dict[str, dict[float, Tensor]]  # pool -> eps -> (S, S) accuracies, row = attacked member
    matrix_members: dict[str, list[int]]  # pool -> indices of the S sampled members

    def rows(self) -> list[dict[str, Any]]:
        """Flat records ``{eps, pool, defence, attack, accuracy, min, max}`` for a CSV or Markdown table."""
        return [dict(r) for r in self.results]

    def accuracy(self, pool: str, defence: str, attack: str) -> list[tuple[float, float]]:
        """``(eps, accuracy)`` along the sweep for one pool, defence and attack."""
        return [
            (r["eps"], r["accuracy"])
            for r in self.results
            if (r["pool"], r["defence"], r["attack"]) == (pool, defence, attack)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (matrices as nested lists, keyed by eps as text)."""
        return {
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()},
            "n_test": self.n_test,
            "n_evaluated": self.n_evaluated,
            "pools": list(self.pools),
            "results": self.rows(),
            "transfer": {
                pool: {str(eps): {a: acc.tolist() for a, acc in by_attack.items()} for eps, by_attack in by_eps.items()}
                for pool, by_eps in self.transfer.items()
            },
            "transfer_matrices": {
                pool: {str(eps): m.tolist() for eps, m in by_eps.items()}
                for pool, by_eps in self.transfer_matrices.items()
            },
            "matrix_members": {pool: list(idx) for pool, idx in self.matrix_members.items()},
        }


def _record(eps: float, pool: str, defence: str, attack: str, per_unit: Tensor) -> dict[str, Any]:
    """One result; ``per_unit`` is per member ``(B,)`` for the ``member`` defence, per example otherwise."""
    values = per_unit.double()
    spread = defence == "member"
    return {
        "eps": eps,
        "pool": pool,
        "defence": defence,
        "attack": attack,
        "accuracy": values.mean().item(),
        "min": values.min().item() if spread else None,
        "max": values.max().item() if spread else None,
    }


def evaluate_adversarial(
    model: nn.Module,
    seed_params: Mapping[str, Tensor],
    pools: Mapping[str, Mapping[str, Tensor]],
    x: Tensor,
    y: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    settings: AdversarialSettings | None = None,
) -> AdversarialReport:
    """Attack the seed and defend with each pool, over an eps sweep (see the module docstring).

    Args:
        model: the architecture shared by the seed and every pool member.
        seed_params: the seed's tensors ``{name: (*shape)}`` (those the pools stack, at least).
        pools: per pool kind (e.g. ``"mge"``, ``"noise"``), its members' stacked tensors ``{name: (B, *shape)}``.
        x: test pixels ``(N, C, H, W)`` in [0, 1] (convert datamodule tensors with ``to_pixels``).
        y: test labels ``(N,)``.
        mean: the dataset's per-channel mean.
        std: the dataset's per-channel std.
        settings: the sweep and the attacks; defaults to :class:`AdversarialSettings`'s.

    Raises:
        ValueError: a pool is named ``"seed"`` or is empty, or no example is classified
            correctly by every model.
    """
    settings = settings or AdversarialSettings()
    if SEED in pools:
        raise ValueError(f"A pool may not be named {SEED!r}: the seed's rows use that name. Rename the pool.")
    for name, params in pools.items():
        if not params or stacked_size(params) == 0:
            raise ValueError(f"Pool {name!r} has no members; leave it out.")
    seed = {k: v.unsqueeze(0) for k, v in seed_params.items()}  # (1, *shape)
    keep = correct_by_all(model, [seed, *pools.values()], x, y, mean, std)
    if not keep.any():
        raise ValueError(
            "No test example is classified correctly by the seed and every pool member, so nothing can be "
            "attacked. Check that the models and the inputs (pixels, with this dataset's mean and std) match."
        )
    x, y = x[keep], y[keep]

    def predictions(params: Mapping[str, Tensor], x_adv: Tensor) -> Tensor:  # (B, n)
        return predict_batched(model, params, normalise(x_adv, mean, std))

    with torch.no_grad():
        num_classes = batched_logits(model, seed, normalise(x[:1], mean, std)).shape[-1]
    generator = torch.Generator().manual_seed(settings.seed)
    samples = {
        name: sorted(torch.randperm(stacked_size(p), generator=generator)[: settings.matrix_members].tolist())
        for name, p in pools.items()
    }
    results: list[dict[str, Any]] = []
    transfer: dict[str, dict[float, dict[str, Tensor]]] = {name: {} for name in pools}
    matrices: dict[str, dict[float, Tensor]] = {name: {} for name in pools}
    batch = settings.batch_size
    for eps in settings.eps:
        fgsm, pgd = settings.fgsm(eps), settings.pgd(eps)
        seed_adv = {  # (n, C, H, W) each
            "fgsm_seed": attack_members(model, seed, x, y, mean, std, fgsm, batch_size=batch)[0],
            "pgd_seed": attack_members(model, seed, x, y, mean, std, pgd, batch_size=batch)[0],
        }
        for attack, x_adv in seed_adv.items():
            results.append(_record(eps, SEED, "seed", attack, predictions(seed, x_adv)[0] == y))
        for name, params in pools.items():
            adv = {
                **seed_adv,
                **{
                    attack: attack_ensemble(
                        model, params, x, y, mean, std, pgd, defence=defence, loss=loss, batch_size=batch
                    )
                    for attack, (defence, loss) in ENSEMBLE_ATTACKS.items()
                },
            }
            preds = {attack: predictions(params, x_adv) for attack, x_adv in adv.items()}  # (B, n) each
            transfer[name][eps] = {attack: (preds[attack] == y).double().mean(dim=1) for attack in seed_adv}  # (B,)
            for attack, per_member in transfer[name][eps].items():
                results.append(_record(eps, name, "member", attack, per_member))
            # the pool as a defence: per example, then the worst case over the attacks
            vote = {attack: majority_vote_correct(p, y, num_classes) for attack, p in preds.items()}  # (n,) each
            lottery = {attack: random_member_accuracy(p, y) for attack, p in preds.items()}  # (n,) each
            for attack in adv:
                results.append(_record(eps, name, "majority_vote", attack, vote[attack]))
                results.append(_record(eps, name, "random_member", attack, lottery[attack]))
            results.append(_record(eps, name, "majority_vote", "worst_case", torch.stack([*vote.values()]).all(dim=0)))
            results.append(
                _record(eps, name, "random_member", "worst_case", torch.stack([*lottery.values()]).amin(dim=0))
            )
            # member-to-member transfer on a sample: row i = PGD examples made on member i
            sample = {k: v[samples[name]] for k, v in params.items()}
            member_adv = attack_members(model, sample, x, y, mean, std, pgd, batch_size=batch)  # (S, n, C, H, W)
            matrix = torch.stack([(predictions(sample, a) == y).double().mean(dim=1) for a in member_adv])  # (S, S)
            matrices[name][eps] = matrix
            results.append(_record(eps, name, "member", "pgd_white_box", matrix.diagonal()))
    return AdversarialReport(
        settings=settings,
        n_test=len(keep),
        n_evaluated=int(keep.sum()),
        results=results,
        pools=list(pools),
        transfer=transfer,
        transfer_matrices=matrices,
        matrix_members=samples,
    )
