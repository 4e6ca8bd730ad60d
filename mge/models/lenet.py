"""LeNet-5 (LeCun et al., 1998) in its modern ReLU + max-pool form."""

from __future__ import annotations

import torch
from torch import nn

from mge.models.registry import check_min_image_size, check_positive_ints, register_model


class LeNet5(nn.Module):
    """conv5x5-6, ReLU, pool -> conv5x5-16, ReLU, pool -> fc-120, ReLU -> fc-84, ReLU -> ``head``.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        conv1_padding: Zero padding of the first convolution.
    """

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, conv1_padding: int) -> None:
        super().__init__()
        check_positive_ints("lenet5", num_classes=num_classes, in_channels=in_channels, image_size=image_size)
        if isinstance(conv1_padding, bool) or not isinstance(conv1_padding, int) or conv1_padding < 0:
            raise ValueError(
                f"Invalid value {conv1_padding!r} for argument conv1_padding of model 'lenet5'. "
                "Expected a non-negative int, or None for the automatic choice."
            )
        # Two 5x5 valid convs (-4 each) and two 2x2 pools must leave at least one pixel.
        check_min_image_size(
            "lenet5",
            image_size,
            16 - 2 * conv1_padding,
            f"its two 5x5 convolutions and 2x2 pools leave no pixels below that (conv1_padding={conv1_padding})",
        )
        side = ((image_size + 2 * conv1_padding - 4) // 2 - 4) // 2  # 5 for 28x28 (padding 2) and 32x32
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=conv1_padding),  # C1
            nn.ReLU(),
            nn.MaxPool2d(2),  # S2
            nn.Conv2d(6, 16, kernel_size=5),  # C3 (fully connected to S2, unlike the 1998 table)
            nn.ReLU(),
            nn.MaxPool2d(2),  # S4
            nn.Flatten(),
            nn.Linear(16 * side * side, 120),  # C5
            nn.ReLU(),
            nn.Linear(120, 84),  # F6
            nn.ReLU(),
        )
        self.feature_dim: int = 84
        self.head = nn.Linear(84, num_classes)  # replaces the RBF output layer

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)  # (N, 84)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register_model("lenet5")
def lenet5(*, num_classes: int, in_channels: int, image_size: int, conv1_padding: int | None = None) -> LeNet5:
    """LeNet-5 from `Gradient-Based Learning Applied to Document Recognition
    <http://vision.stanford.edu/cs598_spring07/papers/Lecun98.pdf>`__ (LeCun et al., 1998).

    Modern variant: ReLU instead of scaled tanh, max- instead of trainable average
    pooling, a full C3 connection table and a linear head instead of RBF units.
    LeCun et al. fed 28x28 digits centred in a 32x32 field; ``conv1_padding=2`` does
    the same, so 28x28 MNIST and 32x32 CIFAR-10 both give 16x5x5 maps before C5
    (61,706 parameters for 1x28x28 and 10 classes).

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        conv1_padding: Zero padding of C1; ``None`` picks 2 for images smaller
            than 32 pixels and 0 otherwise.
    """
    if conv1_padding is None:
        conv1_padding = 2 if image_size < 32 else 0
    return LeNet5(num_classes=num_classes, in_channels=in_channels, image_size=image_size, conv1_padding=conv1_padding)
