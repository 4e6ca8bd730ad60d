"""L-infinity attacks on many members at once, and on a whole pool used as a defence.

- FGSM (Goodfellow et al. 2015, "Explaining and harnessing adversarial examples"): one step of
  size eps along the sign of the input gradient of the loss.
- PGD (Madry et al. 2018, "Towards deep learning models resistant to adversarial attacks"):
  steps of ``step_size`` along the gradient's sign, each projected back onto the eps-ball and
  [0, 1], from a uniformly random start in the ball, with restarts. FGSM is PGD with one step of
  size eps and no random start, so both run through one loop.
- By default every iterate after a step is a candidate, and per attacked unit the most harmful
  one is kept (misclassified beats not, then the higher loss), not the last: sign steps of a
  fixed size oscillate around the boundary, so the last iterate can be correctly classified
  where an earlier one was not. The losses are those computed for the gradients anyway, so this
  costs nothing (Croce and Hein 2020, "Reliable evaluation of adversarial robustness with an
  ensemble of diverse parameter-free attacks", keep the best point the same way).
  ``keep_best=False`` returns the last iterate, as ART and Madry et al. do.

Inputs are pixels in [0, 1] (:mod:`mge.adversarial.pixels`); the loss normalises them before the
model, so eps is in pixel units whatever the dataset's normalisation.

The members of a pool share an architecture, so :func:`attack_members` attacks all of them at
once through :func:`mge.evaluation.batched_logits` (one wide network, inputs per member) and
gives each member its own adversarial examples. A member's result does not depend on which other
members are attacked with it nor on ``batch_size``: the loss is a sum of per-(member, example)
terms, and the random starts are drawn per example, once per restart, and shared by the members.

A pool used as a defence is attacked as a whole by :func:`attack_ensemble` (one adversarial input
per example, shared by all members), so that its robustness is measured against an attacker who
knows the defence, not only against examples transferred from the seed. The attack judges its
candidates (iterates and restarts) by the defence it targets (``defence``):

- ``"vote"``: a candidate that defeats the majority vote beats one that does not;
- ``"random_member"``: the fewer members a candidate leaves right, the better (the defence's
  exact expected accuracy);

and ascends one of three differentiable losses (``loss``, :data:`ENSEMBLE_LOSSES`):

- ``"logits"``: the cross-entropy of the members' averaged logits, a stand-in for the vote;
- ``"members"``: the mean per-member cross-entropy, i.e. the expected loss under the defence's
  random choice of member, computed exactly over all members instead of sampled: expectation over
  transformation (Athalye et al. 2018, "Synthesizing robust adversarial examples"; "Obfuscated
  gradients give a false sense of security");
- ``"probabilities"``: the cross-entropy of the members' averaged probabilities, ``-log`` of the
  mean probability of the true class. Its gradient weighs each member by the probability it
  still gives the true class, so members already fooled stop pulling and the step goes to those
  still right: what both a vote and a random draw need. The other two can be dominated by a few
  members whose logits or losses are already large.

The defaults (:data:`DEFAULT_LOSS`) are ``"logits"`` for the vote and ``"members"`` (EOT) for the
random member; an evaluation should run several and keep the worst case per example
(:func:`mge.adversarial.evaluate_adversarial` does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mge.adversarial.defences import majority_vote_correct, random_member_accuracy
from mge.adversarial.pixels import check_pixels, normalise
from mge.evaluation import batched_logits, stacked_size

EnsembleDefence = Literal["vote", "random_member"]
ENSEMBLE_DEFENCES: tuple[EnsembleDefence, ...] = ("vote", "random_member")
EnsembleLoss = Literal["logits", "members", "probabilities"]
ENSEMBLE_LOSSES: tuple[EnsembleLoss, ...] = ("logits", "members", "probabilities")
DEFAULT_LOSS: dict[EnsembleDefence, EnsembleLoss] = {"vote": "logits", "random_member": "members"}

# x_adv -> (loss to ascend, harm to the defence), both per attacked unit: (B, n) for members, (n,) for a pool.
Objective = Callable[[Tensor], tuple[Tensor, Tensor]]


def _check_real(cls: str, field: str, value: object, low: float, high: float, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{cls}.{field} must be a finite number, got {value!r}. {fix}")
    if not low <= value <= high:
        raise ValueError(f"{cls}.{field} must be in [{low}, {high}], got {value!r}. {fix}")
    return float(value)


def _check_int(cls: str, field: str, value: object, low: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{cls}.{field} must be an integer >= {low}, got {value!r}. {fix}")
    return value


@dataclass(frozen=True)
class AttackSettings:
    """One L-infinity attack; build FGSM with :meth:`fgsm` and PGD with :meth:`pgd`.

    Raises:
        ValueError: a value is of the wrong type, not finite or out of range; the message names
            the field, the value and the fix.
    """

    eps: float  # L-inf budget in pixel units (pixels in [0, 1]): MNIST 0.3 = 30% of the range
    step_size: float  # per-step move of every pixel, pixel units; FGSM: eps
    steps: int = 40  # gradient steps per restart (Madry et al. 2018 use 40 on MNIST); FGSM: 1
    restarts: int = 1  # independent random starts; per example and member the worst case is kept
    random_start: bool = True  # start uniformly in the eps-ball (Madry et al. 2018); FGSM: False
    seed: int = 0  # seeds the random starts: the same seed gives the same adversarial examples
    keep_best: bool = True  # keep each unit's most harmful iterate, not the last (see the module docstring)

    def __post_init__(self) -> None:
        name = type(self).__name__
        _check_real(name, "eps", self.eps, 0.0, 1.0, "Pixels are in [0, 1]; MNIST uses eps = 0.1 to 0.3.")
        _check_real(
            name, "step_size", self.step_size, 0.0, 1.0, "Use a step of a fraction of eps, e.g. 2.5 eps / steps."
        )
        if self.eps > 0 and self.step_size == 0:
            raise ValueError(
                f"{name}.step_size must be > 0 when eps > 0, got {self.step_size!r} (eps = {self.eps}): "
                "a zero step never moves. Use a fraction of eps, e.g. 2.5 eps / steps."
            )
        _check_int(name, "steps", self.steps, 1, "Use 1 for FGSM and tens for PGD (e.g. 40).")
        _check_int(name, "restarts", self.restarts, 1, "Use 1, or more for a stronger attack.")
        for flag in ("random_start", "keep_best"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{name}.{flag} must be true or false, got {getattr(self, flag)!r}.")
        if self.restarts > 1 and not self.random_start:
            raise ValueError(
                f"{name}.restarts = {self.restarts} without random_start repeats the same attack. "
                "Set random_start=True or restarts=1."
            )
        _check_int(name, "seed", self.seed, 0, "Use a non-negative integer.")
        if self.seed >= 2**63:
            raise ValueError(f"{name}.seed must be below 2**63, got {self.seed}. Use a smaller seed.")

    @classmethod
    def fgsm(cls, eps: float) -> AttackSettings:
        """FGSM (Goodfellow et al. 2015): one step of size eps from the clean input."""
        return cls(eps=eps, step_size=eps, steps=1, restarts=1, random_start=False)

    @classmethod
    def pgd(
        cls,
        eps: float,
        *,
        steps: int = 40,
        relative_step: float = 2.5,
        restarts: int = 1,
        seed: int = 0,
        keep_best: bool = True,
    ) -> AttackSettings:
        """PGD (Madry et al. 2018) with step ``relative_step * eps / steps``.

        With the default 2.5 the steps add up to 2.5 eps, more than the ball's width of 2 eps, so
        from any random start the walk can reach any corner and still move along the boundary
        (the step rule of Madry et al.'s robustness library).
        """
        _check_real(cls.__name__, "relative_step", relative_step, 0.0, math.inf, "Use e.g. 2.5.")
        _check_int(cls.__name__, "steps", steps, 1, "Use tens of steps for PGD (e.g. 40).")
        return cls(
            eps=eps,
            step_size=relative_step * eps / steps,
            steps=steps,
            restarts=restarts,
            seed=seed,
            keep_best=keep_best,
        )


# --------------------------------------------------------------------------- the loop


def _pgd(objective: Objective, x: Tensor, members: int | None, settings: AttackSettings, starts: Tensor) -> Tensor:
    """Adversarial inputs ``(B, n, C, H, W)`` (``members = B``) or ``(n, C, H, W)`` (``None``).

    ``starts`` ``(restarts, n, C, H, W)`` are the random offsets in [-1, 1], scaled by eps here.
    Per unit, the most harmful candidate is kept: more harm (misclassified beats not), then a
    higher loss. Candidates are the last iterate of every restart, and with ``keep_best`` every
    iterate after a step (never the start itself, so FGSM stays one full step).
    """
    lo, hi = (x - settings.eps).clamp(min=0.0), (x + settings.eps).clamp(max=1.0)  # the eps-ball within [0, 1]
    shape = x.shape if members is None else (members, *x.shape)
    best: list[Tensor] = []  # [x, loss, harm] of the most harmful candidate so far

    def consider(x_adv: Tensor, loss: Tensor, harm: Tensor) -> None:
        if not best:
            best.extend((x_adv, loss, harm))
            return
        best_x, best_loss, best_harm = best
        worse = (harm > best_harm) | ((harm == best_harm) & (loss > best_loss))
        best[0] = torch.where(worse.view(*worse.shape, *[1] * (x_adv.dim() - worse.dim())), x_adv, best_x)
        best[1], best[2] = torch.where(worse, loss, best_loss), torch.where(worse, harm, best_harm)

    for restart in range(settings.restarts):
        start = x + settings.eps * starts[restart] if settings.random_start else x
        x_adv = torch.minimum(torch.maximum(start, lo), hi).expand(shape).clone()  # (B, n, C, H, W) or (n, C, H, W)
        for step in range(settings.steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                loss, harm = objective(x_adv)
                (grad,) = torch.autograd.grad(loss.sum(), x_adv)
            x_adv = x_adv.detach()
            if settings.keep_best and step > 0:  # the iterate after step - 1, scored by this step's forward pass
                consider(x_adv, loss.detach(), harm.detach())
            x_adv = torch.minimum(torch.maximum(x_adv + settings.step_size * grad.sign(), lo), hi)
        with torch.no_grad():
            consider(x_adv, *objective(x_adv))
    return best[0]


def _in_batches(
    attack: Callable[[Tensor, Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    settings: AttackSettings,
    batch_size: int,
    dim: int,
) -> Tensor:
    """``attack(x, y, random starts)`` on consecutive batches of examples, joined along ``dim``.

    The random starts ``(restarts, N, C, H, W)``, uniform in [-1, 1], are drawn for all examples
    up front, so neither ``batch_size`` nor the number of restarts changes a given restart's start.
    """
    _check_int("attack", "batch_size", batch_size, 1, "Use a positive number of examples per step.")
    check_pixels(x)
    if x.dim() != 4 or y.shape != (x.shape[0],) or y.dtype != torch.int64:
        raise ValueError(
            f"Expected images (N, C, H, W) and int64 labels (N,), got {tuple(x.shape)} and {tuple(y.shape)} {y.dtype}."
        )
    starts = x.new_zeros((0, *x.shape))
    if settings.random_start:
        generator = torch.Generator(device=x.device).manual_seed(settings.seed)
        draws = [
            torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) for _ in range(settings.restarts)
        ]
        starts = torch.stack(draws) * 2 - 1  # (restarts, N, C, H, W)
    parts = [
        attack(x[i : i + batch_size], y[i : i + batch_size], starts[:, i : i + batch_size])
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(parts, dim=dim)


def attack_members(
    model: nn.Module,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    settings: AttackSettings,
    *,
    batch_size: int = 256,
) -> Tensor:
    """Each member's own adversarial examples ``(B, N, C, H, W)``, all members attacked at once.

    Args:
        model: the members' architecture (its tensors fill whatever ``params`` omits).
        params: the members' stacked tensors ``{name: (B, *shape)}``.
        x: clean pixels ``(N, C, H, W)`` in [0, 1].
        y: true labels ``(N,)``.
        mean: the dataset's per-channel mean (the models see ``(x - mean) / std``).
        std: the dataset's per-channel std.
        settings: the attack (:meth:`AttackSettings.fgsm` or :meth:`AttackSettings.pgd`).
        batch_size: examples per step; memory grows with members x batch_size.
    """
    b = stacked_size(params)

    def attack(xb: Tensor, yb: Tensor, starts: Tensor) -> Tensor:
        def objective(x_adv: Tensor) -> tuple[Tensor, Tensor]:  # x_adv: (B, n, C, H, W)
            logits = batched_logits(model, params, normalise(x_adv, mean, std), inputs_per_member=True)  # (B, n, K)
            targets = yb.expand(b, -1)  # (B, n)
            loss = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, n)
            return loss, (logits.argmax(dim=-1) != targets).to(loss.dtype)

        return _pgd(objective, xb, b, settings, starts)

    return _in_batches(attack, x, y, settings, batch_size, dim=1)


def attack_ensemble(
    model: nn.Module,
    params: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    settings: AttackSettings,
    *,
    defence: EnsembleDefence,
    loss: EnsembleLoss | None = None,
    batch_size: int = 256,
) -> Tensor:
    """One adversarial input per example ``(N, C, H, W)`` against the pool as a whole.

    Args:
        defence: what a candidate is judged by: ``"vote"``, whether it defeats the majority vote;
            ``"random_member"``, how few members it leaves right.
        loss: what PGD ascends: ``"logits"``, ``"members"`` or ``"probabilities"`` (see the module
            docstring); None takes the defence's default (:data:`DEFAULT_LOSS`).
        model, params, x, y, mean, std, settings, batch_size: as in :func:`attack_members`.
    """
    if defence not in ENSEMBLE_DEFENCES:
        raise ValueError(f"Unknown defence {defence!r}. Valid values are {list(ENSEMBLE_DEFENCES)}.")
    ascend = DEFAULT_LOSS[defence] if loss is None else loss
    if ascend not in ENSEMBLE_LOSSES:
        raise ValueError(f"Unknown ensemble loss {loss!r}. Valid values are {list(ENSEMBLE_LOSSES)}.")

    def attack(xb: Tensor, yb: Tensor, starts: Tensor) -> Tensor:
        def objective(x_adv: Tensor) -> tuple[Tensor, Tensor]:  # x_adv: (n, C, H, W)
            logits = batched_logits(model, params, normalise(x_adv, mean, std))  # (B, n, K)
            b = logits.shape[0]
            if ascend == "logits":
                value = F.cross_entropy(logits.mean(dim=0), yb, reduction="none")  # (n,)
            elif ascend == "members":
                value = F.cross_entropy(logits.transpose(1, 2), yb.expand(b, -1), reduction="none").mean(dim=0)
            else:  # -log mean_b p_b(y), in log space: exact where the probabilities underflow
                true_log_p = logits.log_softmax(dim=-1).gather(-1, yb.expand(b, -1).unsqueeze(-1)).squeeze(-1)
                value = math.log(b) - true_log_p.logsumexp(dim=0)  # (n,)
            predictions = logits.argmax(dim=-1)  # (B, n)
            if defence == "vote":
                harm = ~majority_vote_correct(predictions, yb, logits.shape[-1])
                return value, harm.to(value.dtype)
            return value, 1 - random_member_accuracy(predictions, yb).to(value.dtype)

        return _pgd(objective, xb, None, settings, starts)

    return _in_batches(attack, x, y, settings, batch_size, dim=0)
