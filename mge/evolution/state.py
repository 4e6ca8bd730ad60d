"""The resumable state of an E-MGE run: counters, RNG, lineage and history, with an exact JSON round trip.

Together with the population's tensors (:class:`mge.evolution.Population`) this is all a run needs
to continue: a run restarted from a saved state and population draws the same children as one
that never stopped. Floats are written with ``repr`` by :mod:`json`, so they read back exactly.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Member:
    """Where one population member comes from."""

    id: str  # unique in a run: "g<generation>-<child index>" for children, the pool's id for initial members
    parents: tuple[str, ...]  # ids of its parents: none for an initial member, one for a mutant, two for a fusion
    operator: str  # "initial", "mutation", a fusion kind, or "<fusion>+mutation"
    generation: int  # generation it was born in (0 for the initial population)
    threshold: float  # its own energy threshold t, used when it is mutated and inherited by its children

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Member:
        return cls(**{**data, "parents": tuple(data["parents"])})


@dataclass(frozen=True)
class GenerationLog:
    """What one generation did (a history entry)."""

    generation: int
    candidates: int  # children drawn
    accepted: int  # children the discriminator accepted
    acceptance: float  # accepted / candidates
    candidates_by_operator: dict[str, int]
    accepted_by_operator: dict[str, int]
    survivors_born: int  # members of the new population born in this generation
    best_fitness: float  # fitness of the survivors, computed on parents + accepted children at selection
    mean_fitness: float
    mean_accuracy: float  # discriminator-split accuracy of the survivors
    diversity: float  # mean pairwise prediction disagreement of the survivors on the probe set
    mean_threshold: float  # survivors' own t
    forward_passes: int  # member x example forward passes in this generation (discriminator + probe)
    total_forward_passes: int  # since the start of the run, initial evaluation included
    seconds: float  # wall-clock of this generation

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationLog:
        return cls(**data)


@dataclass
class EvolutionState:
    """Counters, RNG state, lineage of the current members (one per population row) and history."""

    generation: int  # generations completed
    rng: str  # base64 of the torch.Generator state after the last completed step
    members: list[Member]
    forward_passes: int = 0  # member x example forward passes, initial evaluation included
    candidates: int = 0  # children drawn
    accepted: int = 0  # children accepted by the discriminator
    seconds: float = 0.0  # wall-clock spent in the run
    history: list[GenerationLog] = field(default_factory=list)

    def generator(self) -> torch.Generator:
        """A CPU generator in the saved state."""
        generator = torch.Generator()
        generator.set_state(torch.frombuffer(bytearray(base64.b64decode(self.rng)), dtype=torch.uint8))
        return generator

    def save_generator(self, generator: torch.Generator) -> None:
        """Record ``generator``'s state."""
        self.rng = base64.b64encode(generator.get_state().numpy().tobytes()).decode()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvolutionState:
        return cls(
            **{
                **data,
                "members": [Member.from_dict(m) for m in data["members"]],
                "history": [GenerationLog.from_dict(h) for h in data["history"]],
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> EvolutionState:
        return cls.from_dict(json.loads(text))
