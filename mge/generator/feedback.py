"""GAN-like feedback on the generator's knob (spec section 2, step 7).

After each round the discriminator's acceptance rate steers the knob: accepting more than the
target means the generator can afford more diversity (lower t, or higher alpha); accepting fewer
means it must stay closer to the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Knob = Literal["threshold", "alpha", "none"]
KNOBS = ("threshold", "alpha", "none")


@dataclass
class AcceptanceController:
    """Moves t (additively) or alpha (multiplicatively) toward a target acceptance rate."""

    threshold: float  # energy threshold t in (0, 1]
    alpha: float  # scale on the resampled coefficients' std
    knob: Knob = "threshold"
    target_rate: float = 0.5  # acceptance rate the feedback aims for
    step: float = 0.05  # largest move per round (t units, or log-alpha units)
    min_threshold: float = 0.5  # t never falls below this
    max_threshold: float = 0.9999  # t = 1 makes exact copies of the seed: stop just short of it

    def __post_init__(self) -> None:
        if self.knob not in KNOBS:
            raise ValueError(f"Unknown feedback knob {self.knob!r}. Valid values are {list(KNOBS)}.")
        if not 0.0 < self.target_rate < 1.0:
            raise ValueError(f"generator.target_acceptance must lie in (0, 1), got {self.target_rate}.")
        if not 0.0 < self.min_threshold <= self.threshold <= 1.0:
            raise ValueError(
                f"generator.threshold={self.threshold} must lie in [min_threshold={self.min_threshold}, 1]."
            )
        if self.alpha < 0:
            raise ValueError(f"generator.alpha must be >= 0, got {self.alpha}.")
        if self.step < 0:
            raise ValueError(f"generator.feedback_step must be >= 0, got {self.step}.")

    def update(self, acceptance_rate: float) -> None:
        """Feed back one round's acceptance rate."""
        error = acceptance_rate - self.target_rate  # > 0: too easy, diversify
        if self.knob == "threshold":
            moved = self.threshold - self.step * error
            self.threshold = min(max(moved, self.min_threshold), self.max_threshold)
        elif self.knob == "alpha":
            self.alpha = self.alpha * math.exp(self.step * error)
