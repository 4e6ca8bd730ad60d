"""What decides which candidates the generator draws (``conf/generator``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from mge.generator.feedback import FEEDBACK_RULE, KNOBS, AcceptanceController
from mge.latent import GRANULARITIES


@dataclass(frozen=True)
class GeneratorSettings:
    """Sizes, the energy threshold, resampling and feedback of MGE's generator.

    Error messages name the field; the command line adds the ``generator.`` prefix.
    """

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
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}.")
        for key in ("threshold", "alpha", "target_acceptance", "feedback_step", "min_threshold"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"{key} must be a finite number, got {getattr(self, key)}.")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold is the energy fraction t in (0, 1], got {self.threshold}.")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"Unknown granularity {self.granularity!r}. Valid values are {list(GRANULARITIES)}.")
        if self.knob not in KNOBS:
            raise ValueError(f"Unknown knob {self.knob!r}. Valid values are {list(KNOBS)}.")
        # the remaining ranges are checked by the controller, which owns them
        self.controller()

    def controller(self) -> AcceptanceController:
        """The feedback controller at the starting knob values."""
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

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (tuples as lists) plus the feedback rule, for a pool's config."""
        plain = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {**plain, "feedback_rule": FEEDBACK_RULE}
