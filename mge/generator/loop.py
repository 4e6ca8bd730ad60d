"""The MGE generation loop: sample, discriminate, keep, feed back (spec section 2).

Rounds of ``batch_size`` candidates run until ``n_models`` are accepted or the round budget is
spent. After every round the accepted members, the round's log and the full run state (RNG
state, knob values) are written to the pool, so an interrupted run resumes exactly.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from mge.discriminator import Discriminator
from mge.generator.feedback import FEEDBACK_RULE, KNOBS, AcceptanceController
from mge.generator.sampler import LatentSampler
from mge.latent import GRANULARITIES
from mge.pool import PoolWriter


@dataclass(frozen=True)
class GeneratorSettings:
    """Everything that decides which candidates the generator draws (``conf/generator``)."""

    n_models: int = 100  # accepted models to collect
    batch_size: int = 128  # candidates drawn per round, as one tensor operation
    max_rounds: int = 50  # budget: stop after this many rounds even if fewer were accepted
    threshold: float = 0.95  # energy threshold t: fraction of coefficient energy kept from the seed
    alpha: float = 1.0  # scale on the std of the resampled coefficients
    zero_mean: bool = False  # resample around 0 instead of the replaced coefficients' mean
    granularity: str = "kernel"  # DCT axes: "tensor", "flat" or "kernel" (see mge.latent.codec)
    knob: str = "threshold"  # what the feedback moves: "threshold", "alpha" or "none"
    target_acceptance: float = 0.5  # acceptance rate the feedback aims for
    feedback_step: float = 2.0  # feedback gain: resampled energy x exp(step * (rate - target)) per round
    min_threshold: float = 0.5  # the feedback never lowers t below this
    include: tuple[str, ...] = ("*",)  # glob patterns of generated parameter names
    exclude: tuple[str, ...] = ()  # glob patterns of parameters copied from the seed

    def __post_init__(self) -> None:
        for key in ("n_models", "batch_size", "max_rounds"):
            if getattr(self, key) < 1:
                raise ValueError(f"generator.{key} must be >= 1, got {getattr(self, key)}.")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"generator.threshold is the energy fraction t in (0, 1], got {self.threshold}.")
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"Unknown generator.granularity {self.granularity!r}. Valid values are {list(GRANULARITIES)}."
            )
        if self.knob not in KNOBS:
            raise ValueError(f"Unknown generator.knob {self.knob!r}. Valid values are {list(KNOBS)}.")
        # the remaining ranges are checked by the controller, which owns them
        self.controller()

    def controller(self) -> AcceptanceController:
        # The feedback's range of t includes the starting t, except t = 1: no resampled energy to
        # scale, so the first move goes to the controller's default ceiling.
        ceiling = AcceptanceController.max_threshold
        return AcceptanceController(
            threshold=self.threshold,
            alpha=self.alpha,
            knob=self.knob,  # type: ignore[arg-type]
            target_rate=self.target_acceptance,
            step=self.feedback_step,
            min_threshold=min(self.min_threshold, self.threshold),
            max_threshold=max(ceiling, self.threshold) if self.threshold < 1 else ceiling,
        )


@dataclass
class GenerationResult:
    """What a generation run produced, for metrics.json and the progress table."""

    accepted: int  # kept in the pool (at most n_models)
    candidates: int
    passed: int = 0  # candidates the discriminator accepted, kept or not (the last round may overshoot)
    rounds: list[dict] = field(default_factory=list)
    generation_seconds: float = 0.0  # sampling candidates
    discriminator_seconds: float = 0.0  # scoring candidates
    final_threshold: float = 1.0
    final_alpha: float = 1.0

    @property
    def acceptance_rate(self) -> float:
        return self.passed / max(self.candidates, 1)

    @property
    def seconds_per_accepted(self) -> float | None:
        """Sampling plus discriminator seconds per model kept; None when none was kept."""
        if self.accepted == 0:
            return None
        return (self.generation_seconds + self.discriminator_seconds) / self.accepted


def _encode_rng(generator: torch.Generator) -> str:
    return base64.b64encode(generator.get_state().numpy().tobytes()).decode()


def _decode_rng(generator: torch.Generator, text: str) -> None:
    state = torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)
    generator.set_state(state)


def generate(
    sampler: LatentSampler,
    discriminator: Discriminator,
    writer: PoolWriter,
    settings: GeneratorSettings,
    *,
    rng_seed: int,
    on_round: Callable[[dict], None] | None = None,
    progress: bool = True,
) -> GenerationResult:
    """Fill ``writer``'s pool with ``settings.n_models`` accepted candidates (or spend the budget).

    Args:
        sampler: draws candidates around the seed.
        discriminator: scores them; accepted ones are kept.
        writer: the pool folder; if it holds an interrupted run, that run is continued.
        settings: sizes, knob and feedback.
        rng_seed: seeds the candidate noise; the same seed and settings give the same pool.
        on_round: called with each round's log (e.g. to send it to a logger).
        progress: show a progress bar (accepted / target, acceptance rate, current t).
    """
    generator = torch.Generator(device="cpu").manual_seed(rng_seed)
    controller = settings.controller()
    result = GenerationResult(accepted=len(writer.members), candidates=0)
    if writer.state is not None:  # resume
        _decode_rng(generator, writer.state["rng"])
        controller.threshold = writer.state["threshold"]
        controller.alpha = writer.state["alpha"]
        result.candidates = writer.state["candidates"]
        result.passed = writer.state["passed"]
        result.generation_seconds = writer.state["generation_seconds"]
        result.discriminator_seconds = writer.state["discriminator_seconds"]
        result.rounds = list(writer.manifest["rounds"])

    device = discriminator.inputs.device
    bar = tqdm(total=settings.n_models, initial=result.accepted, desc="MGE", unit="model", disable=not progress)
    while result.accepted < settings.n_models and len(result.rounds) < settings.max_rounds:
        threshold, alpha = controller.threshold, controller.alpha
        start = time.perf_counter()
        candidates = sampler.sample(settings.batch_size, threshold=threshold, alpha=alpha, generator=generator)
        candidates = {k: v.to(device) for k, v in candidates.items()}
        generated = time.perf_counter()
        scores = discriminator.score(candidates)
        accepted_idx = scores.accepted.nonzero().flatten()[: settings.n_models - result.accepted]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        scored = time.perf_counter()

        rate = scores.accepted.float().mean().item()
        result.generation_seconds += generated - start
        result.discriminator_seconds += scored - generated
        result.candidates += settings.batch_size
        result.passed += int(scores.accepted.sum())
        result.accepted += len(accepted_idx)
        controller.update(rate)
        round_log = {
            "round": len(result.rounds),
            "threshold": threshold,
            "alpha": alpha,
            "candidates": settings.batch_size,
            "accepted": len(accepted_idx),
            "acceptance_rate": rate,
            "total_accepted": result.accepted,
            "generation_seconds": generated - start,
            "discriminator_seconds": scored - generated,
            "rejected_non_finite": int((~scores.finite).sum()),
            "rejected_distribution": int((scores.finite & scores.accuracy.isnan()).sum()),
        }
        result.rounds.append(round_log)
        idx = accepted_idx.tolist()
        records = [
            {
                "parents": ["seed"],
                "operator": "mge",
                "round": round_log["round"],
                "threshold": threshold,
                "alpha": alpha,
                "distribution_distance": scores.distribution_distance[i].item(),
                "discriminator_accuracy": scores.accuracy[i].item(),
            }
            for i in idx
        ]
        state = {
            "rng": _encode_rng(generator),
            "threshold": controller.threshold,
            "alpha": controller.alpha,
            "candidates": result.candidates,
            "passed": result.passed,
            "generation_seconds": result.generation_seconds,
            "discriminator_seconds": result.discriminator_seconds,
        }
        writer.append({k: v[accepted_idx].cpu() for k, v in candidates.items()}, records, round_log, state)
        if on_round is not None:
            on_round(round_log)
        bar.update(len(idx))
        bar.set_postfix(rate=f"{rate:.2f}", t=f"{threshold:.4f}", alpha=f"{alpha:.3f}")
    bar.close()
    result.final_threshold, result.final_alpha = controller.threshold, controller.alpha
    return result


def settings_dict(settings: GeneratorSettings) -> dict:
    """Settings as plain JSON values (tuples as lists) plus the feedback rule, for a pool manifest."""
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}
    return {**plain, "feedback_rule": FEEDBACK_RULE}
