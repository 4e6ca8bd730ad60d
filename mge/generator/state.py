"""The state of a generation run: everything a resumed run needs to continue exactly."""

from __future__ import annotations

import base64
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from mge.errors import PoolError


def encode_rng(generator: torch.Generator) -> str:
    """A CPU generator's state as text (base64), for JSON."""
    return base64.b64encode(generator.get_state().numpy().tobytes()).decode()


def decode_rng(text: str) -> torch.Generator:
    """A CPU generator in the state :func:`encode_rng` recorded."""
    generator = torch.Generator(device="cpu")
    generator.set_state(torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8))
    return generator


@dataclass
class GenerationState:
    """RNG, knob values and counters after the last completed round."""

    rng: str  # the candidate-noise generator's state (encode_rng)
    threshold: float  # the knobs the next round uses
    alpha: float
    rounds: int = 0
    candidates: int = 0
    passed: int = 0  # candidates the discriminator accepted, kept or not (the last round may overshoot)
    kept: int = 0  # members kept in the pool (at most n_models)
    rejected_non_finite: int = 0
    rejected_distribution: int = 0
    rejected_spectral: int = 0  # by the latent-space (DCT band spectrum) test
    rejected_accuracy: int = 0
    examples_scored: int = 0  # discriminator examples scored, over all candidates
    generation_seconds: float = 0.0  # sampling candidates
    discriminator_seconds: float = 0.0  # scoring candidates
    last_threshold: float | None = None  # the knobs the last round used
    last_alpha: float | None = None

    @classmethod
    def start(cls, rng_seed: int, threshold: float, alpha: float) -> GenerationState:
        return cls(
            rng=encode_rng(torch.Generator(device="cpu").manual_seed(rng_seed)), threshold=threshold, alpha=alpha
        )

    @property
    def acceptance_rate(self) -> float:
        return self.passed / max(self.candidates, 1)

    @property
    def seconds_per_kept(self) -> float | None:
        """Sampling plus discriminator seconds per model kept; None when none was kept."""
        if self.kept == 0:
            return None
        return (self.generation_seconds + self.discriminator_seconds) / self.kept

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> GenerationState:
        """The state a pool's manifest recorded; a malformed one raises :class:`PoolError`."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not {"rng", "threshold", "alpha"} <= set(data) or set(data) - names:
            raise PoolError(
                f"The pool's run state is malformed (keys {sorted(data) if isinstance(data, dict) else data!r})."
            )
        for key, value in data.items():
            if key != "rng" and value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise PoolError(f"The pool's run state has a non-numeric {key}: {value!r}.")
        return cls(**data)
