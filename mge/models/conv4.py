"""Conv-4, the four-block embedding of Matching and Prototypical Networks."""

from __future__ import annotations

import torch
from torch import nn

from mge.models.registry import check_min_image_size, check_positive_ints, register_model


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """conv3x3 -> BN -> ReLU -> maxpool2, the block of Vinyals et al. (2016)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """4 x [conv3x3, BN, ReLU, maxpool2] -> flatten -> ``head``.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        hidden_channels: Channels of every block.
    """

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, hidden_channels: int) -> None:
        super().__init__()
        check_positive_ints(
            "conv4",
            num_classes=num_classes,
            in_channels=in_channels,
            image_size=image_size,
            hidden_channels=hidden_channels,
        )
        check_min_image_size("conv4", image_size, 16, "its four 2x2 max-pools halve the image four times")
        self.features = nn.Sequential(
            conv_block(in_channels, hidden_channels),
            conv_block(hidden_channels, hidden_channels),
            conv_block(hidden_channels, hidden_channels),
            conv_block(hidden_channels, hidden_channels),
            nn.Flatten(),
        )
        side = image_size // 16  # 84 -> 42 -> 21 -> 10 -> 5
        # Snell et al. flatten the last map: a 1600-d embedding for 84x84 inputs.
        self.feature_dim: int = hidden_channels * side * side
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, hidden_channels * side * side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register_model("conv4")
def conv4(*, num_classes: int, in_channels: int, image_size: int, hidden_channels: int = 64) -> Conv4:
    """Conv-4 from `Matching Networks for One Shot Learning <https://arxiv.org/abs/1606.04080>`__
    (Vinyals et al., 2016), as used by `Prototypical Networks for Few-shot Learning
    <https://arxiv.org/abs/1703.05175>`__ (Snell et al., 2017).

    Four blocks of conv3x3-64, BatchNorm, ReLU and 2x2 max-pool; the flattened last
    map is the embedding (1600-d for 84x84 mini-ImageNet), followed by a linear ``head``.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        hidden_channels: Channels of every block (64 in both papers).
    """
    return Conv4(
        num_classes=num_classes, in_channels=in_channels, image_size=image_size, hidden_channels=hidden_channels
    )
