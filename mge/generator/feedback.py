"""GAN-like feedback on the generator's knob (spec section 2, step 7).

After each round the discriminator's acceptance rate steers the knob: accepting more than the
target means the generator can afford more diversity (lower t, or higher alpha); accepting fewer
means it must stay closer to the seed.

Both knobs move the energy of the resampled coefficients, about alpha^2 * (1 - t) of each
tensor's energy, and they move it geometrically: acceptance falls from ~all to ~none over orders
of magnitude of 1 - t (between about 1e-4 and 5e-2 on the LeNet-5 seeds of docs/results.md), so
equal additive steps in t would be too coarse near t = 1 and too slow far from it. One ``step``
scales that resampled energy by the same factor whichever knob moves. (The distance to the seed,
about (1 + alpha^2) * (1 - t), scales by that factor only when t moves.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Knob = Literal["threshold", "alpha", "none"]
KNOBS = ("threshold", "alpha", "none")
# Recorded in pool manifests: a pool is resumed only under the rule that started it (the additive
# rule before this one read feedback_step in t units).
FEEDBACK_RULE = "geometric-resampled-energy"


@dataclass
class AcceptanceController:
    """Moves t or alpha toward a target acceptance rate, geometrically in the resampled energy."""

    threshold: float  # energy threshold t in (0, 1]
    alpha: float  # scale on the resampled coefficients' std
    knob: Knob = "threshold"
    target_rate: float = 0.5  # acceptance rate the feedback aims for
    step: float = 2.0  # gain: the resampled energy is scaled by exp(step * (rate - target_rate))
    min_threshold: float = 0.5  # t never falls below this
    max_threshold: float = 0.9999  # the feedback raises t no higher (t = 1 makes exact copies of the seed)

    def __post_init__(self) -> None:
        if self.knob not in KNOBS:
            raise ValueError(f"Unknown feedback knob {self.knob!r}. Valid values are {list(KNOBS)}.")
        if not 0.0 < self.target_rate < 1.0:
            raise ValueError(f"target_acceptance must lie in (0, 1), got {self.target_rate}.")
        if not 0.0 < self.min_threshold <= self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold} must lie in [min_threshold={self.min_threshold}, 1].")
        if self.alpha < 0 or (self.knob == "alpha" and self.alpha == 0):
            raise ValueError(f"alpha must be >= 0 (> 0 with knob=alpha, whose steps are factors), got {self.alpha}.")
        if self.step < 0:
            raise ValueError(f"feedback_step must be >= 0, got {self.step}.")

    def update(self, acceptance_rate: float) -> None:
        """Feed back one round's acceptance rate."""
        if not 0.0 <= acceptance_rate <= 1.0:
            raise ValueError(f"An acceptance rate lies in [0, 1], got {acceptance_rate}.")
        factor = math.exp(self.step * (acceptance_rate - self.target_rate))  # > 1: too easy, diversify
        if self.knob == "threshold":
            resampled = (1.0 - self.threshold) * factor
            resampled = min(max(resampled, 1.0 - self.max_threshold), 1.0 - self.min_threshold)
            self.threshold = 1.0 - resampled
        elif self.knob == "alpha":
            self.alpha = self.alpha * math.sqrt(factor)
