"""Gaussian weight noise around a seed: the cheapest way to make a pool (spec section 5).

MGE's pools only count if they beat noise of the same size, so the noise baselines control the
size exactly. Each tensor of each member gets an isotropic Gaussian direction, scaled to a chosen
L2 norm (not a chosen std): its distance to the seed equals the target to float precision, not
only in expectation. Two ways to choose the norms (:class:`NoiseTargets`):

- *matched*: the norms of a reference pool's displacements (e.g. an MGE pool), member by member
  and tensor by tensor, so the noise pool has the reference's per-tensor relative L2 distances
  (and hence its whole-model ones);
- *at a distance d*: every tensor k of a member at ``d * ||seed_k||``, so the whole member is at
  relative distance d too; over a range of d this traces the noise curve (:func:`noise_curve`).

Every draw is keyed by ``(seed, slot, attempt)`` through ``numpy.random.SeedSequence`` and has its
own ``torch.Generator``: a member's noise does not depend on how the pool is split into chunks,
the ungated pool is the gated pool's first attempt for each slot, and the same seed gives the same
noise on any device (it is drawn on the CPU). Gating by the discriminator is the caller's:
:func:`gated_noise` takes any ``gate(candidates) -> accepted`` callable, e.g.
``lambda c: discriminator.score(c).accepted``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor

from mge.evaluation.metrics import relative_l2

Gate = Callable[[Mapping[str, Tensor]], Tensor]  # {name: (B, *shape)} -> (B,) bool, True = accepted


def _check_seed_params(seed_params: Mapping[str, Tensor]) -> None:
    if not seed_params:
        raise ValueError("seed_params is empty: pass the seed's target tensors {name: tensor}.")
    bad = [k for k, v in seed_params.items() if not v.is_floating_point()]
    if bad:
        raise ValueError(
            f"Noise needs floating-point tensors; {bad} are not. Leave integer buffers out of the targets."
        )


@dataclass(frozen=True)
class NoiseTargets:
    """What to draw: for K slots, the L2 norm of the noise on each tensor.

    Attributes:
        norms: ``{name: (K,)}`` float64, absolute L2 norm of the noise added to tensor ``name`` in slot k.
        slots: ``(K,)`` int64, the slots' ids: slot s, attempt a is drawn from ``(seed, s, a)``, so
            slots with distinct ids get independent noise (give chunks of one pool distinct ids).
        distances: ``(K,)`` float64, each slot's whole-model relative L2 distance to the seed,
            ``sqrt(sum_k norms_k^2) / ||seed||``.
    """

    norms: dict[str, Tensor]
    slots: Tensor
    distances: Tensor

    @classmethod
    def matching(
        cls, seed_params: Mapping[str, Tensor], reference: Mapping[str, Tensor], *, first_slot: int = 0
    ) -> NoiseTargets:
        """The per-tensor distances of a reference pool: slot b, tensor k gets ``||reference_b,k - seed_k||``.

        Args:
            seed_params: the seed's target tensors ``{name: (*shape)}``.
            reference: the reference pool's tensors ``{name: (B, *shape)}``, the same names.
            first_slot: id of slot 0 (slot b is ``first_slot + b``); set it when matching a pool chunk by chunk.
        """
        _check_seed_params(seed_params)
        if set(reference) != set(seed_params):
            raise ValueError(
                f"reference and seed_params must name the same tensors; only in reference: "
                f"{sorted(set(reference) - set(seed_params))}, only in seed_params: "
                f"{sorted(set(seed_params) - set(reference))}."
            )
        for k, r in reference.items():
            if r.shape[1:] != seed_params[k].shape:
                raise ValueError(
                    f"reference[{k!r}] has shape {tuple(r.shape)}; expected (B, *{tuple(seed_params[k].shape)}), "
                    "the seed tensor's shape with the pool size in front."
                )
        norms = {k: (reference[k] - seed_params[k]).flatten(1).double().norm(dim=1).cpu() for k in seed_params}
        return cls._make(seed_params, norms, first_slot)

    @classmethod
    def at_distances(
        cls, seed_params: Mapping[str, Tensor], distances: Tensor | Sequence[float], *, first_slot: int = 0
    ) -> NoiseTargets:
        """Slot b has every tensor at relative distance ``distances[b]``: tensor k gets ``distances[b] * ||seed_k||``.

        Args:
            seed_params: the seed's target tensors ``{name: (*shape)}``.
            distances: ``(K,)`` relative L2 distances, >= 0.
            first_slot: id of slot 0.
        """
        _check_seed_params(seed_params)
        d = torch.as_tensor(distances, dtype=torch.float64).cpu().reshape(-1)
        if not (d.isfinite() & (d >= 0)).all():
            raise ValueError(f"distances must be finite and >= 0 (relative L2 to the seed), got {d.tolist()}.")
        norms = {k: d * v.double().norm().cpu() for k, v in seed_params.items()}
        return cls._make(seed_params, norms, first_slot)

    @classmethod
    def _make(cls, seed_params: Mapping[str, Tensor], norms: dict[str, Tensor], first_slot: int) -> NoiseTargets:
        if first_slot < 0:
            raise ValueError(f"first_slot must be >= 0, got {first_slot}.")
        k = next(iter(norms.values())).shape[0]
        seed_norm = math.sqrt(sum(v.double().square().sum().item() for v in seed_params.values()))
        distances = torch.stack(list(norms.values())).square().sum(dim=0).sqrt() / seed_norm
        return cls(norms=norms, slots=torch.arange(first_slot, first_slot + k), distances=distances)

    def __len__(self) -> int:
        return self.slots.shape[0]

    def subset(self, index: Tensor) -> NoiseTargets:
        """The slots at positions ``index``."""
        return NoiseTargets(
            norms={k: v[index] for k, v in self.norms.items()}, slots=self.slots[index], distances=self.distances[index]
        )


def _draw_generator(seed: int, slot: int, attempt: int) -> torch.Generator:
    """A CPU generator of its own for one draw, keyed so that no two (seed, slot, attempt) share a stream."""
    state = np.random.SeedSequence([seed, slot, attempt]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def draw_noise(
    seed_params: Mapping[str, Tensor], targets: NoiseTargets, *, seed: int = 0, attempt: int | Tensor = 0
) -> dict[str, Tensor]:
    """One noise candidate per slot of ``targets``: ``{name: (K, *shape)}`` on the seed's device and dtype.

    Slot b's tensor k is ``seed_k + norms_k[b] * u`` with u uniform on the unit sphere (a standard
    Gaussian draw divided by its norm), so ``||candidate - seed||`` equals the target up to float
    rounding.

    Args:
        seed_params: the seed's target tensors ``{name: (*shape)}``.
        targets: norms per slot and tensor.
        seed: seed of the noise; with ``(slot, attempt)`` it fixes each draw.
        attempt: which draw of each slot, one for all or ``(K,)`` one per slot (gated rounds redraw
            rejected slots with a new attempt).
    """
    _check_seed_params(seed_params)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}.")
    if set(targets.norms) != set(seed_params):
        raise ValueError(
            f"targets and seed_params must name the same tensors, got {sorted(targets.norms)} and "
            f"{sorted(seed_params)}."
        )
    k = len(targets)
    attempts = torch.as_tensor(attempt).expand(k).tolist()
    # standard Gaussians drawn on the CPU straight into the output, one generator per draw
    out = {name: torch.empty(k, *v.shape, dtype=torch.float32) for name, v in seed_params.items()}
    for i, (slot, a) in enumerate(zip(targets.slots.tolist(), attempts, strict=True)):
        g = _draw_generator(seed, slot, a)
        for t in out.values():
            t[i].normal_(generator=g)
    for name, gaussian in out.items():
        s = seed_params[name]
        # scale each row to its target norm; the factor in float64, the norm of float32 rows exact to ~1e-7
        factor = targets.norms[name] / gaussian.flatten(1).norm(dim=1).double()  # (K,)
        gaussian.mul_(factor.float().view(-1, *[1] * s.dim()))
        out[name] = gaussian.to(device=s.device, dtype=s.dtype).add_(s)  # (K, *shape)
    return out


def matched_noise(
    seed_params: Mapping[str, Tensor], reference: Mapping[str, Tensor], *, seed: int = 0
) -> dict[str, Tensor]:
    """Noise around the seed at a reference pool's distances, member by member and tensor by tensor.

    Args:
        seed_params: the seed's target tensors ``{name: (*shape)}``.
        reference: the reference pool ``{name: (B, *shape)}`` (e.g. an MGE pool's members).
        seed: seed of the noise.

    Returns:
        ``{name: (B, *shape)}``: member b's tensor k is as far from the seed as the reference's.
    """
    return draw_noise(seed_params, NoiseTargets.matching(seed_params, reference), seed=seed)


def noise_curve(
    seed_params: Mapping[str, Tensor], distances: Sequence[float], members: int, *, seed: int = 0
) -> Iterator[tuple[float, dict[str, Tensor]]]:
    """Noise pools of ``members`` members at each relative L2 distance, one pool at a time.

    Evaluating each pool's accuracy and mistake IoU with the seed traces the noise curve that
    MGE's pools are compared against (spec sections 3 and 5). Pools are independent: pool j's
    members are slots ``j * members .. (j + 1) * members - 1``. To gate a pool, pass
    ``NoiseTargets.at_distances(seed_params, [d] * members, first_slot=j * members)`` to
    :func:`gated_noise` instead.

    Args:
        seed_params: the seed's target tensors ``{name: (*shape)}``.
        distances: relative L2 distances to the seed (the same for every tensor of a member).
        members: pool size per distance.
        seed: seed of the noise.

    Yields:
        ``(distance, {name: (members, *shape)})``.
    """
    if members < 1:
        raise ValueError(f"members must be >= 1 (pool size per distance), got {members}.")
    for j, d in enumerate(distances):
        targets = NoiseTargets.at_distances(seed_params, [float(d)] * members, first_slot=j * members)
        yield float(d), draw_noise(seed_params, targets, seed=seed)


@dataclass(frozen=True)
class NoiseMember:
    """Provenance of one accepted noise member; JSON-serialisable with ``dataclasses.asdict``."""

    slot: int  # the target slot it fills
    attempt: int  # which draw of the slot was accepted: with the seed, reproduces it
    target_distance: float  # whole-model relative L2 distance to the seed asked for
    achieved_distance: float  # ... and measured on the candidate
    rounds: int  # rounds the slot took part in, the accepting one included
    candidates: int  # candidates drawn for the slot, the accepted one included


@dataclass(frozen=True)
class GatedNoise:
    """Accepted noise members (in slot order) and the cost of finding them."""

    params: dict[str, Tensor]  # {name: (A, *shape)}, A accepted slots
    members: list[NoiseMember]  # (A,)
    unfilled: list[int] = field(default_factory=list)  # slots with no accepted candidate within the budget
    rounds: int = 0
    candidates: int = 0

    def to_dict(self) -> dict[str, object]:
        """Everything but the tensors, JSON-serialisable."""
        return {
            "accepted": len(self.members),
            "candidates": self.candidates,
            "acceptance_rate": len(self.members) / self.candidates if self.candidates else None,
            "rounds": self.rounds,
            "unfilled": list(self.unfilled),
            "members": [asdict(m) for m in self.members],
        }


def gated_noise(
    seed_params: Mapping[str, Tensor],
    targets: NoiseTargets,
    gate: Gate,
    *,
    seed: int = 0,
    max_rounds: int = 10,
    draws_per_slot: int = 1,
) -> GatedNoise:
    """Noise that passes a gate (e.g. MGE's discriminator): each slot is redrawn until a candidate passes.

    Every round draws ``draws_per_slot`` candidates for each slot still open (attempts not used
    before, so a slot's attempt 0 is the ungated :func:`draw_noise`), scores them all with one call
    of ``gate``, and closes each slot with its first accepted candidate. A redraw keeps the slot's
    target norms: the accepted pool stays matched to its targets, it only loses members the gate
    would reject. Memory: one round holds ``open slots x draws_per_slot`` candidates.

    Args:
        seed_params: the seed's target tensors ``{name: (*shape)}``.
        targets: the K slots to fill.
        gate: ``{name: (B, *shape)} -> (B,)`` bool, True = accepted; e.g.
            ``lambda c: discriminator.score(c).accepted``.
        seed: seed of the noise.
        max_rounds: budget; slots still open after it are reported in ``unfilled``.
        draws_per_slot: candidates per open slot and round.
    """
    for key, value in (("max_rounds", max_rounds), ("draws_per_slot", draws_per_slot)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}.")
    k = len(targets)
    found: list[tuple[Tensor, Tensor, dict[str, Tensor]]] = []  # per round: positions, attempts, candidates
    is_open = torch.ones(k, dtype=torch.bool)
    rounds_taken = torch.zeros(k, dtype=torch.long)
    rounds = candidates = 0
    while is_open.any() and rounds < max_rounds:
        open_pos = is_open.nonzero().flatten()  # (m,)
        pos = open_pos.repeat(draws_per_slot)  # (m * d,) draw j of every open slot, then draw j + 1
        attempt = rounds * draws_per_slot + torch.arange(draws_per_slot).repeat_interleave(len(open_pos))
        batch = draw_noise(seed_params, targets.subset(pos), seed=seed, attempt=attempt)
        passed = gate(batch)
        if passed.shape != pos.shape or passed.dtype != torch.bool:
            raise ValueError(
                f"gate must return a bool tensor of shape ({len(pos)},) (one per candidate), got {passed.dtype} "
                f"of shape {tuple(passed.shape)}."
            )
        rounds += 1
        candidates += len(pos)
        rounds_taken[open_pos] += 1
        winners = []  # a slot's first accepted draw wins
        for j in passed.cpu().nonzero().flatten().tolist():
            if is_open[pos[j]]:
                is_open[pos[j]] = False
                winners.append(j)
        if winners:
            w = torch.tensor(winners)
            found.append((pos[w], attempt[w], {name: t[w.to(t.device)] for name, t in batch.items()}))
    positions = torch.cat([f[0] for f in found]) if found else torch.empty(0, dtype=torch.long)
    order = positions.argsort()  # slot order
    params = {
        name: torch.cat([f[2][name] for f in found])[order.to(v.device)] if found else v.new_empty(0, *v.shape)
        for name, v in seed_params.items()
    }
    attempts = torch.cat([f[1] for f in found])[order] if found else torch.empty(0, dtype=torch.long)
    positions = positions[order]
    achieved = relative_l2(params, seed_params).tolist() if found else []
    members = [
        NoiseMember(
            slot=int(targets.slots[p]),
            attempt=int(a),
            target_distance=float(targets.distances[p]),
            achieved_distance=float(d),
            rounds=int(rounds_taken[p]),
            candidates=int(rounds_taken[p]) * draws_per_slot,
        )
        for p, a, d in zip(positions.tolist(), attempts.tolist(), achieved, strict=True)
    ]
    unfilled = targets.slots[is_open].tolist()
    return GatedNoise(params=params, members=members, unfilled=unfilled, rounds=rounds, candidates=candidates)
