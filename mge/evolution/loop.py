"""The E-MGE loop (spec section 3): breed, gate by the discriminator, score, select, repeat.

Every generation:

1. ``children`` children are drawn from uniformly chosen parents: with probability
   ``fusion_probability`` a fusion of two distinct parents (then, with probability
   ``mutation_after_fusion``, also mutated), otherwise a mutation of one. Each child inherits and
   perturbs its parents' energy threshold first (:func:`mge.evolution.inherit_threshold`).
2. The discriminator scores all children at once; the rejected ones are dropped. Accepted children
   are scored on the whole split (``exact_accepted``), so their quality term is exact.
3. The accepted children are run on the probe set, all at once (:func:`mge.evaluation.predict_batched`),
   unless the probe set is the discriminator split itself (:meth:`Probe.discriminator_split`),
   whose predictions the discriminator has already made.
4. Fitness is computed over parents + accepted children, and ``population_size`` survive.
5. ``on_generation(state, population, log)`` is called: the place to save both.

All randomness comes from one ``torch.Generator`` whose state is part of the saved state, and
every draw happens in a fixed order, so a run resumed from any saved generation ends with the same
population, bit for bit, as one that was never interrupted. The population carries its members'
accuracies and probe predictions so that a resumed run does not recompute (and recount) them.
Forward passes are counted as member x example passes actually run: the examples each child was
scored on before its verdict (``DiscriminatorScores.examples_scored``), plus the probe passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

from mge.discriminator import Discriminator
from mge.evaluation import pairwise_disagreement, predict_batched, stacked_size
from mge.evolution.fitness import FitnessKind, fitness
from mge.evolution.fusion import Fusion, fuse
from mge.evolution.mutation import inherit_threshold, mutate
from mge.evolution.selection import Selection, select
from mge.evolution.settings import EvolutionSettings
from mge.evolution.state import EvolutionState, GenerationLog, Member
from mge.latent import LatentCodec


@dataclass(frozen=True)
class Probe:
    """The examples diversity is measured on (e.g. the discriminator split; never the test set)."""

    inputs: Tensor  # (N, ...) on the discriminator model's device
    labels: Tensor  # (N,) used by the "sharing" fitness
    num_classes: int

    def __post_init__(self) -> None:
        if self.inputs.shape[0] != self.labels.shape[0] or self.inputs.shape[0] == 0:
            raise ValueError(
                f"The probe set needs as many labels as inputs (> 0), got {self.inputs.shape[0]} inputs "
                f"and {self.labels.shape[0]} labels."
            )

    @classmethod
    def discriminator_split(cls, discriminator: Discriminator, num_classes: int) -> Probe:
        """The discriminator's own split (its tensors, in its order) as the probe set.

        The loop then takes the children's probe predictions from the discriminator's scoring
        instead of running them again.
        """
        return cls(discriminator.inputs, discriminator.labels, num_classes)

    def is_split_of(self, discriminator: Discriminator) -> bool:
        """Is this probe :meth:`discriminator_split` of ``discriminator`` (the same tensors)?"""
        return self.inputs is discriminator.inputs and self.labels is discriminator.labels


@dataclass(frozen=True)
class Population:
    """The members' tensors, one row per member, in the order of ``EvolutionState.members``."""

    params: dict[str, Tensor]  # {name: (P, *shape)} float32, the target parameters
    accuracy: Tensor  # (P,) float64 discriminator-split accuracy (the quality term of the fitness)
    predictions: Tensor  # (P, N) class predictions on the probe set (the diversity term)

    def __len__(self) -> int:
        return self.accuracy.shape[0]

    def take(self, index: Tensor) -> Population:
        """The members at ``index`` (K,), in that order."""
        return Population(
            {name: t[index] for name, t in self.params.items()}, self.accuracy[index], self.predictions[index]
        )

    def extend(self, other: Population) -> Population:
        """This population followed by ``other``'s members."""
        return Population(
            {name: torch.cat([t, other.params[name]]) for name, t in self.params.items()},
            torch.cat([self.accuracy, other.accuracy]),
            torch.cat([self.predictions, other.predictions]),
        )


def _predict(discriminator: Discriminator, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
    """(B, N) predictions through the discriminator's model, batched as the discriminator does."""
    return predict_batched(
        discriminator.model,
        params,
        inputs,
        batch_size=discriminator.settings.eval_batch_size,
        models_per_chunk=discriminator.settings.models_per_chunk,
    )


def initial_population(
    params: Mapping[str, Tensor],
    *,
    discriminator: Discriminator,
    probe: Probe,
    settings: EvolutionSettings,
    rng_seed: int,
    ids: Sequence[str] | None = None,
    thresholds: Sequence[float] | None = None,
) -> tuple[Population, EvolutionState]:
    """Evaluate a starting pool and make the run's state at generation 0.

    The initial members are not gated (an MGE pool's members have passed the discriminator already,
    and members of other seeds could not pass one built on a single seed); their accuracy is
    measured on the discriminator split all the same.

    Args:
        params: stacked target parameters ``{name: (P, *shape)}``, e.g. an MGE pool's members.
        discriminator: gives the discriminator split, the model and the batch sizes.
        probe: the examples diversity is measured on.
        settings: the run's settings (``initial_threshold``, threshold bounds).
        rng_seed: seeds the run's generator; the same seed, pool and settings give the same run.
        ids: the members' ids (e.g. the pool's); default ``"g0-<i>"``.
        thresholds: the members' own t (e.g. the round's t in an MGE pool), clipped to the settings'
            bounds; default ``settings.initial_threshold``.
    """
    start = time.perf_counter()
    n = stacked_size(params)
    ids = list(ids) if ids is not None else [f"g0-{i}" for i in range(n)]
    ts = list(thresholds) if thresholds is not None else [settings.initial_threshold] * n
    if len(ids) != n or len(ts) != n or len(set(ids)) != n:
        raise ValueError(f"initial_population needs {n} distinct ids and {n} thresholds, got {ids} and {ts}.")
    stacked = {name: t.detach().to(torch.float32) for name, t in params.items()}
    disc_predictions = _predict(discriminator, stacked, discriminator.inputs)
    shared = probe.is_split_of(discriminator)
    probe_predictions = disc_predictions if shared else _predict(discriminator, stacked, probe.inputs)
    # float64 count / n, as the discriminator gives children's accuracies: equal counts, equal quality
    quality = (disc_predictions == discriminator.labels).double().mean(dim=1)
    population = Population(stacked, quality, probe_predictions)
    clip = (settings.min_threshold, settings.max_threshold)
    members = [
        Member(id=i, parents=(), operator="initial", generation=0, threshold=min(max(float(t), clip[0]), clip[1]))
        for i, t in zip(ids, ts, strict=True)
    ]
    state = EvolutionState(generation=0, rng="", members=members)
    state.save_generator(torch.Generator().manual_seed(rng_seed))
    state.forward_passes = n * (discriminator.inputs.shape[0] + (0 if shared else probe.inputs.shape[0]))
    state.seconds = time.perf_counter() - start
    return population, state


def _breed(
    population: Population,
    members: Sequence[Member],
    settings: EvolutionSettings,
    codec: LatentCodec,
    generator: torch.Generator,
    generation: int,
) -> tuple[dict[str, Tensor], list[Member]]:
    """``settings.children`` children ``{name: (C, *shape)}`` and their lineage; draws in a fixed order."""
    p, c = len(population), settings.children
    fuse_coin = torch.rand(c, generator=generator)
    first = torch.randint(p, (c,), generator=generator)
    second = (first + 1 + torch.randint(max(p - 1, 1), (c,), generator=generator)) % p  # != first when p > 1
    mutate_coin = torch.rand(c, generator=generator)
    threshold_noise = torch.randn(c, generator=generator)

    fused = (fuse_coin < settings.fusion_probability) & (p > 1)  # (C,) one parent cannot be fused
    mutated = ~fused | (mutate_coin < settings.mutation_after_fusion)  # an unfused child unmutated would be a clone
    second = torch.where(fused, second, first)  # a mutant has one parent
    parent_t = torch.tensor([m.threshold for m in members], dtype=torch.float64)
    thresholds = inherit_threshold(
        torch.stack([parent_t[first], parent_t[second]], dim=1),
        threshold_noise,
        step=settings.threshold_step,
        min_threshold=settings.min_threshold,
        max_threshold=settings.max_threshold,
    )  # (C,)

    children = {name: t[first].clone() for name, t in population.params.items()}  # (C, *shape)
    if fused.any():
        device_fused = fused.to(next(iter(children.values())).device)
        fusions = fuse(
            {name: t[first[fused]] for name, t in population.params.items()},
            {name: t[second[fused]] for name, t in population.params.items()},
            codec,
            kind=cast(Fusion, settings.fusion),
            generator=generator,
            band_cut=settings.band_cut,
            weight=settings.interpolation_weight,
        )
        for name, t in fusions.items():
            children[name][device_fused] = t
    if mutated.any():
        device_mutated = mutated.to(next(iter(children.values())).device)
        mutants = mutate(
            {name: t[device_mutated] for name, t in children.items()},
            thresholds[mutated],
            codec,
            alpha=settings.alpha,
            zero_mean=settings.zero_mean,
            generator=generator,
        )
        for name, t in mutants.items():
            children[name][device_mutated] = t

    lineage = []
    for i in range(c):
        is_fused, is_mutated = bool(fused[i]), bool(mutated[i])
        operator = "+".join([settings.fusion] * is_fused + ["mutation"] * is_mutated)
        parents = (members[int(first[i])].id, members[int(second[i])].id) if is_fused else (members[int(first[i])].id,)
        lineage.append(
            Member(
                id=f"g{generation}-{i}",
                parents=parents,
                operator=operator,
                generation=generation,
                threshold=float(thresholds[i]),
            )
        )
    return children, lineage


def evolve(
    population: Population,
    state: EvolutionState,
    *,
    settings: EvolutionSettings,
    codec: LatentCodec,
    discriminator: Discriminator,
    probe: Probe,
    on_generation: Callable[[EvolutionState, Population, GenerationLog], None] | None = None,
) -> tuple[Population, EvolutionState]:
    """Run generations until ``settings.generations`` are done or the forward-pass budget is spent.

    Neither argument is modified; the callback gets the current state and population after every
    generation (each call's objects are new, so they may be kept).

    Args:
        population: the current members (from :func:`initial_population` or a saved run).
        state: their lineage, counters and RNG state (from :func:`initial_population` or a saved run).
        settings: the run's settings; a resumed run must use the ones it started with.
        codec: the latent space of fusion and mutation.
        discriminator: gates every child and gives its discriminator-split accuracy.
        probe: the examples diversity is measured on.
        on_generation: called as ``on_generation(state, population, log)`` after each generation.

    Returns:
        The final population and state.
    """
    if len(population) != len(state.members) or population.predictions.shape[1] != probe.inputs.shape[0]:
        raise ValueError(
            f"The population ({len(population)} members, {population.predictions.shape[1]} probe predictions each) "
            f"does not match the state ({len(state.members)} members) and probe set ({probe.inputs.shape[0]} examples)."
        )
    state = EvolutionState.from_dict(state.to_dict())  # a copy: the caller's state stays as it was
    generator = state.generator()
    n_probe, shared = probe.inputs.shape[0], probe.is_split_of(discriminator)
    budget = settings.max_forward_passes
    while state.generation < settings.generations and (budget is None or state.forward_passes < budget):
        start = time.perf_counter()
        generation = state.generation + 1
        children, lineage = _breed(population, state.members, settings, codec, generator, generation)

        scores = discriminator.score(children, exact_accepted=True)
        keep = scores.accepted.nonzero().flatten()  # (A,)
        passes = int(scores.examples_scored.sum())  # only plausible children reach the data test
        kept = {name: t[keep] for name, t in children.items()}
        if shared:
            predictions = scores.predictions[keep]  # (A, N) complete: accepted children were scored to the end
        elif keep.numel():
            predictions = _predict(discriminator, kept, probe.inputs)  # (A, N)
            passes += keep.numel() * n_probe
        else:
            predictions = population.predictions[:0]
        union = population.extend(Population(kept, scores.accuracy[keep], predictions))
        union_members = [*state.members, *(lineage[i] for i in keep.tolist())]

        fit = fitness(
            union.accuracy,
            union.predictions,
            probe.labels,
            kind=cast(FitnessKind, settings.fitness),
            weight=settings.diversity_weight,
            num_classes=probe.num_classes,
        )  # (P + A,)
        survivors = select(
            fit,
            settings.population_size,
            kind=cast(Selection, settings.selection),
            tournament_size=settings.tournament_size,
            generator=generator,
        )
        population = union.take(survivors)
        members = [union_members[i] for i in survivors.tolist()]

        seconds = time.perf_counter() - start
        operators = [m.operator for m in lineage]
        log = GenerationLog(
            generation=generation,
            candidates=len(lineage),
            accepted=keep.numel(),
            acceptance=keep.numel() / len(lineage),
            candidates_by_operator={op: operators.count(op) for op in sorted(set(operators))},
            accepted_by_operator={op: sum(operators[i] == op for i in keep.tolist()) for op in sorted(set(operators))},
            survivors_born=sum(m.generation == generation for m in members),
            best_fitness=float(fit[survivors].max()),
            mean_fitness=float(fit[survivors].mean()),
            mean_accuracy=float(population.accuracy.double().mean()),
            diversity=pairwise_disagreement(population.predictions, probe.num_classes),
            mean_threshold=sum(m.threshold for m in members) / len(members),
            forward_passes=passes,
            total_forward_passes=state.forward_passes + passes,
            seconds=seconds,
        )
        state = EvolutionState(
            generation=generation,
            rng=state.rng,
            members=members,
            forward_passes=state.forward_passes + passes,
            candidates=state.candidates + len(lineage),
            accepted=state.accepted + keep.numel(),
            seconds=state.seconds + seconds,
            history=[*state.history, log],
        )
        state.save_generator(generator)
        if on_generation is not None:
            on_generation(state, population, log)
    return population, state
