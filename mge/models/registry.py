"""Name -> builder registry for every mge architecture.

Modelled on torchvision's ``models/_api.py``: builders register under a unique
name, ``list_models`` shows what exists, ``build_model`` constructs one. Unlike
timm's bare "Unknown model" (timm #185), every error names the bad value and the
valid ones, because Hydra's ``instantiate`` hides the cause of a failure
(hydra #2099) and the user only sees our message.

Every builder has the keyword-only signature
``(*, num_classes, in_channels, image_size, **arch_kwargs)`` with JSON-serialisable
``arch_kwargs``, so that ``(name, arch_kwargs)`` stored in a checkpoint rebuilds the
same parameter layout.

>>> from mge.models import build_model
>>> model = build_model("lenet5", num_classes=10, in_channels=1, image_size=28)
>>> model.feature_dim
84
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

from torch import nn

ModelBuilder = Callable[..., nn.Module]
B = TypeVar("B", bound=ModelBuilder)

# The three arguments every builder takes; the rest are architecture-specific.
COMMON_ARGS = ("num_classes", "in_channels", "image_size")

_MODELS: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[B], B]:
    """Decorator that registers a model builder under ``name``.

    Args:
        name: The name ``build_model`` and the configs use (``model=<name>``).

    Raises:
        ValueError: If ``name`` is already registered.
        TypeError: If the builder lacks the keyword-only ``num_classes``,
            ``in_channels`` or ``image_size`` arguments.
    """

    def wrapper(builder: B) -> B:
        if name in _MODELS:
            raise ValueError(
                f"A model is already registered under the name '{name}' "
                f"({_MODELS[name].__module__}.{_MODELS[name].__qualname__}). Pick another name."
            )
        params = inspect.signature(builder).parameters
        missing = [
            arg for arg in COMMON_ARGS if arg not in params or params[arg].kind is not inspect.Parameter.KEYWORD_ONLY
        ]
        if missing:
            raise TypeError(
                f"Model builder '{name}' must take the keyword-only arguments {list(COMMON_ARGS)}; "
                f"missing or not keyword-only: {missing}."
            )
        _MODELS[name] = builder
        return builder

    return wrapper


def list_models() -> list[str]:
    """Returns the sorted names of all registered models."""
    return sorted(_MODELS)


def model_kwargs(name: str) -> dict[str, object]:
    """Returns the architecture-specific arguments of model ``name`` with their defaults."""
    builder = _get_builder(name)
    return {
        p.name: p.default
        for p in inspect.signature(builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in COMMON_ARGS
    }


def build_model(name: str, *, num_classes: int, in_channels: int, image_size: int, **kwargs: object) -> nn.Module:
    """Builds the registered model ``name``.

    Args:
        name: A name from ``list_models()``.
        num_classes: Number of logits the ``head`` produces.
        in_channels: Channels of the input images (1 for MNIST, 3 for CIFAR-10).
        image_size: Height (= width) of the square input images.
        **kwargs: Architecture-specific arguments of the builder, e.g. ``channels``
            for ``resnet12``. Must be JSON-serialisable plain values.

    Raises:
        ValueError: For an unknown ``name``, an argument the builder does not take,
            or sizes the architecture cannot handle.

    >>> from mge.models import build_model
    >>> model = build_model("mlp", num_classes=10, in_channels=1, image_size=8, hidden_dims=[32])
    >>> model.feature_dim
    32
    """
    builder = _get_builder(name)
    valid = model_kwargs(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown} for model '{name}'. Valid arguments are {sorted(valid)} "
            f"(plus {list(COMMON_ARGS)}). Remove them or pick another model."
        )
    return builder(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)


def _get_builder(name: str) -> ModelBuilder:
    if name not in _MODELS:
        raise ValueError(f"Unknown model '{name}'. Valid values are {list_models()}. Pick one with model=<name>.")
    return _MODELS[name]


# Argument checks shared by the architectures; they raise ValueError naming the
# model and the argument because the constructor is usually reached through Hydra.


def check_positive_ints(model: str, **values: object) -> None:
    """Raises ValueError unless every value is a positive ``int`` (``bool`` excluded)."""
    for arg, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Invalid value {value!r} for argument {arg} of model '{model}'. Expected a positive int.")


def check_int_list(model: str, arg: str, value: object, *, length: int | None = None) -> list[int]:
    """Returns ``value`` as a list of positive ints, or raises ValueError naming ``arg``.

    Accepts a list or tuple so that kwargs survive a JSON round trip (tuple -> list).
    """
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    )
    if not ok or not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
        expected = "a list of positive ints" + (f" of length {length}" if length is not None else "")
        raise ValueError(f"Invalid value {value!r} for argument {arg} of model '{model}'. Expected {expected}.")
    return list(value)


def check_min_image_size(model: str, image_size: int, minimum: int, reason: str) -> None:
    """Raises ValueError when ``image_size`` is below what the architecture can downsample."""
    if image_size < minimum:
        raise ValueError(
            f"Invalid value {image_size} for argument image_size of model '{model}': it needs image_size >= "
            f"{minimum} because {reason}. Use a larger image_size, or 'mlp' / 'digits_cnn' for small images."
        )
