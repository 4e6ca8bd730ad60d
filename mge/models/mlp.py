"""Multi-layer perceptron on flattened images."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from mge.models.registry import check_int_list, check_positive_ints, register_model


class MLP(nn.Module):
    """Flatten -> [Linear, ReLU] x len(hidden_dims) -> ``head``.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        hidden_dims: Widths of the hidden layers; empty gives multinomial logistic
            regression on the pixels (then ``feature_dim`` is the pixel count).
    """

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, hidden_dims: Sequence[int]) -> None:
        super().__init__()
        check_positive_ints("mlp", num_classes=num_classes, in_channels=in_channels, image_size=image_size)
        dims = [in_channels * image_size * image_size] + check_int_list("mlp", "hidden_dims", hidden_dims)
        layers: list[nn.Module] = []
        for d_in, d_out in itertools.pairwise(dims):
            layers += [nn.Linear(d_in, d_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)  # parameters: features.{0,2,4,...}.{weight,bias}
        self.feature_dim: int = dims[-1]
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(torch.flatten(x, 1))  # (N, C*H*W) -> (N, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register_model("mlp")
def mlp(*, num_classes: int, in_channels: int, image_size: int, hidden_dims: Sequence[int] = (128, 64)) -> MLP:
    """A ReLU multi-layer perceptron, the classic fully connected baseline (Rumelhart et al., 1986).

    The default 64-128-64-10 on 8x8 digits has about 17k parameters.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        hidden_dims: Widths of the hidden layers.
    """
    return MLP(num_classes=num_classes, in_channels=in_channels, image_size=image_size, hidden_dims=hidden_dims)
