"""The MGE generation loop: propose, keep what the discriminator accepts, feed back, checkpoint.

Rounds of ``batch_size`` candidates run until ``n_models`` are accepted or the round budget is
spent. After every round the kept members are appended to the pool and the run state (RNG, knob
values, counters) is checkpointed with the round's log, so an interrupted run resumes exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mge.discriminator import Discriminator
from mge.generator.round import propose
from mge.generator.sampler import LatentSampler
from mge.generator.settings import GeneratorSettings
from mge.generator.state import GenerationState, decode_rng, encode_rng
from mge.pool import SEED_BASE, NewMember, PoolWriter

RoundCallback = Callable[[dict[str, Any]], None]


def generate(
    sampler: LatentSampler,
    discriminator: Discriminator,
    writer: PoolWriter,
    settings: GeneratorSettings,
    *,
    rng_seed: int,
    on_round: RoundCallback | None = None,
) -> GenerationState:
    """Fill ``writer``'s pool with ``settings.n_models`` accepted candidates (or spend the budget).

    Args:
        sampler: draws candidates around the seed.
        discriminator: scores them; accepted ones are kept.
        writer: the pool; if it holds an interrupted run, that run is continued from its state.
        settings: sizes, knob and feedback.
        rng_seed: seeds the candidate noise; the same seed and settings give the same pool.
        on_round: called with each round's log (a progress bar, loggers), after it is checkpointed.

    Returns:
        The final run state (counters, timings, knobs).
    """
    controller = settings.controller()
    if writer.state is not None:
        state = GenerationState.from_json(writer.state)
        controller.threshold, controller.alpha = state.threshold, state.alpha
    else:
        state = GenerationState.start(rng_seed, controller.threshold, controller.alpha)
    generator = decode_rng(state.rng)

    while state.kept < settings.n_models and state.rounds < settings.max_rounds:
        proposal = propose(
            sampler,
            discriminator,
            settings.batch_size,
            threshold=controller.threshold,
            alpha=controller.alpha,
            generator=generator,
        )
        scores = proposal.scores
        kept = scores.accepted.nonzero().flatten()[: settings.n_models - state.kept]
        rate = scores.accepted.float().mean().item()
        controller.update(rate)
        counts = {
            "passed": int(scores.accepted.sum()),
            "rejected_non_finite": int(scores.rejected_non_finite.sum()),
            "rejected_distribution": int(scores.rejected_distribution.sum()),
            "rejected_spectral": int(scores.rejected_spectral.sum()),
            "rejected_accuracy": int(scores.rejected_accuracy.sum()),
            "examples_scored": int(scores.examples_scored.sum()),
        }

        round_log = {
            "round": state.rounds,
            "threshold": proposal.threshold,
            "alpha": proposal.alpha,
            "candidates": settings.batch_size,
            "kept": len(kept),
            "acceptance_rate": rate,
            **counts,
            "total_kept": state.kept + len(kept),
            "generation_seconds": proposal.sample_seconds,
            "discriminator_seconds": proposal.score_seconds,
        }
        members = [
            NewMember(
                operator="mge",
                parents=(SEED_BASE,),
                generation=state.rounds,
                threshold=proposal.threshold,
                alpha=proposal.alpha,
                scores={
                    "distribution_distance": _finite_or_none(scores.distribution_distance[i].item()),
                    "discriminator_accuracy": _finite_or_none(scores.accuracy[i].item()),
                    "spectral_distance": _finite_or_none(scores.spectral_distance[i].item()),
                    "discriminator_examples": int(scores.examples_scored[i]),
                },
            )
            for i in kept.tolist()
        ]
        writer.append({k: v[kept].cpu() for k, v in proposal.candidates.items()}, members)

        state.rounds += 1
        state.candidates += settings.batch_size
        state.kept += len(kept)
        for key, count in counts.items():
            setattr(state, key, getattr(state, key) + count)
        state.generation_seconds += proposal.sample_seconds
        state.discriminator_seconds += proposal.score_seconds
        state.threshold, state.alpha = controller.threshold, controller.alpha
        state.last_threshold, state.last_alpha = proposal.threshold, proposal.alpha
        state.rng = encode_rng(generator)
        writer.checkpoint(state.to_json(), round_log)
        if on_round is not None:
            on_round(round_log)
    return state


def _finite_or_none(value: float) -> float | None:
    """A score for the manifest (strict JSON): NaN means the test was off or did not run to the end."""
    return None if value != value else value
