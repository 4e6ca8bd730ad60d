"""A small CNN for the 8x8 scikit-learn digits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mge.models.registry import check_int_list, check_min_image_size, check_positive_ints, register_model


class DigitsCNN(nn.Module):
    """[conv3x3, ReLU, maxpool2] x len(channels) -> flatten -> Linear, ReLU -> ``head``.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        channels: Output channels of each conv stage; each stage halves the image.
        hidden_dim: Width of the fully connected layer before ``head`` (= ``feature_dim``).
    """

    def __init__(
        self, *, num_classes: int, in_channels: int, image_size: int, channels: Sequence[int], hidden_dim: int
    ) -> None:
        super().__init__()
        check_positive_ints(
            "digits_cnn", num_classes=num_classes, in_channels=in_channels, image_size=image_size, hidden_dim=hidden_dim
        )
        widths = check_int_list("digits_cnn", "channels", channels)
        if not widths:
            raise ValueError(
                "Invalid value [] for argument channels of model 'digits_cnn'. Expected at least one stage."
            )
        check_min_image_size(
            "digits_cnn", image_size, 2 ** len(widths), f"each of its {len(widths)} conv stages halves the image"
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.conv = nn.Sequential(*layers)
        side = image_size // 2 ** len(widths)  # floor-halving per pool: 8 -> 4 -> 2
        self.fc = nn.Sequential(nn.Linear(widths[-1] * side * side, hidden_dim), nn.ReLU())
        self.feature_dim: int = hidden_dim
        self.head = nn.Linear(hidden_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, C_last, side, side)
        return self.fc(torch.flatten(x, 1))  # (N, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register_model("digits_cnn")
def digits_cnn(
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    channels: Sequence[int] = (16, 32),
    hidden_dim: int = 64,
) -> DigitsCNN:
    """A small LeNet-style CNN for the 8x8 digits of Alpaydin & Kaynak (1998, UCI "optdigits").

    LeNet-5 cannot take 8x8 inputs (its two 5x5 convs need >= 12 pixels), so this
    uses 3x3 convs with padding; the defaults give about 14k parameters.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        channels: Output channels of each conv stage.
        hidden_dim: Width of the penultimate fully connected layer.
    """
    return DigitsCNN(
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        channels=channels,
        hidden_dim=hidden_dim,
    )
