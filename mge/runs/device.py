"""Which device a stage runs on."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; ``cuda`` without a GPU is an error that says what to do."""
    if name not in DEVICES:
        raise ValueError(f"Unknown device {name!r}. Valid values are {list(DEVICES)}.")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device is cuda but no CUDA device is visible; use auto or cpu.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
