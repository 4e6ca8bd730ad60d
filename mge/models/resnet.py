"""ResNets: ResNet-18 with the CIFAR stem, and the few-shot ResNet-12."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mge.models.registry import check_int_list, check_min_image_size, check_positive_ints, register_model


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut (He et al., 2016, Fig. 2); names follow torchvision."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()  # not inplace: torch.func.vmap must see pure ops
        # Projection shortcut (option B of He et al.) only where the shape changes.
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))  # out-of-place add, see self.relu


class CifarResNet(nn.Module):
    """ResNet with a 3x3 stride-1 stem and no max-pool, for 32x32 images.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        layers: Number of ``BasicBlock`` per stage.
        base_channels: Channels of the first stage; each later stage doubles them.
    """

    def __init__(
        self, *, num_classes: int, in_channels: int, image_size: int, layers: Sequence[int], base_channels: int
    ) -> None:
        super().__init__()
        check_positive_ints(
            "resnet18",
            num_classes=num_classes,
            in_channels=in_channels,
            image_size=image_size,
            base_channels=base_channels,
        )
        widths = [base_channels * 2**i for i in range(len(layers))]
        self.conv1 = nn.Conv2d(in_channels, base_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        self.relu = nn.ReLU()
        c_in = base_channels
        for i, (n_blocks, c_out) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(c_in, c_out, stride)] + [BasicBlock(c_out, c_out, 1) for _ in range(n_blocks - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            c_in = c_out
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim: int = widths[-1]
        self.head = nn.Linear(self.feature_dim, num_classes)

        # Init of torchvision's resnet.py (He et al., 2015, "Delving Deep into Rectifiers").
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (N, base, H, W): no stride, no max-pool
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)  # (N, base * 2**i, H / 2**i, W / 2**i)
        return torch.flatten(self.avgpool(x), 1)  # (N, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register_model("resnet18")
def resnet18(*, num_classes: int, in_channels: int, image_size: int, base_channels: int = 64) -> CifarResNet:
    """ResNet-18 from `Deep Residual Learning for Image Recognition <https://arxiv.org/abs/1512.03385>`__
    (He et al., 2016), with the CIFAR stem.

    The ImageNet stem (7x7 stride-2 conv + max-pool) would shrink a 32x32 image to
    8x8 before the first stage; for CIFAR, He et al. (Sec. 4.2) start with a 3x3
    conv at stride 1, and the common ResNet-18 CIFAR variant also drops the max-pool.
    Stages of [2, 2, 2, 2] basic blocks with 64-128-256-512 channels, global average
    pooling, linear ``head`` (11.2M parameters for 10 classes).

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        base_channels: Channels of the first stage (64 in He et al.); later stages double it.
    """
    return CifarResNet(
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        layers=[2, 2, 2, 2],
        base_channels=base_channels,
    )


class ResNet12Block(nn.Module):
    """Three 3x3 conv-BN (LeakyReLU between), a 1x1 projection shortcut, then LeakyReLU and maxpool2."""

    def __init__(self, c_in: int, c_out: int, negative_slope: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv3 = nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.act = nn.LeakyReLU(negative_slope)  # not inplace: torch.func.vmap must see pure ops
        self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=1, bias=False), nn.BatchNorm2d(c_out))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.pool(self.act(out + self.downsample(x)))  # (N, c_out, H/2, W/2)


class ResNet12(nn.Module):
    """4 x ``ResNet12Block`` -> global average pool -> ``head``.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        channels: Output channels of the four blocks.
        negative_slope: Slope of the LeakyReLU for negative inputs.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int,
        channels: Sequence[int],
        negative_slope: float,
    ) -> None:
        super().__init__()
        check_positive_ints("resnet12", num_classes=num_classes, in_channels=in_channels, image_size=image_size)
        widths = check_int_list("resnet12", "channels", channels, length=4)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or negative_slope < 0:
            raise ValueError(
                f"Invalid value {negative_slope!r} for argument negative_slope of model 'resnet12'. "
                "Expected a non-negative float (0.1 in Lee et al., 2019)."
            )
        check_min_image_size("resnet12", image_size, 16, "its four blocks each end with a 2x2 max-pool")
        self.features = nn.Sequential(
            *(
                ResNet12Block(c_in, c_out, float(negative_slope))
                for c_in, c_out in zip([in_channels, *widths[:-1]], widths, strict=True)
            )
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim: int = widths[-1]
        self.head = nn.Linear(self.feature_dim, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, channels[-1], H/16, W/16): 5x5 for 84x84
        return torch.flatten(self.avgpool(x), 1)  # (N, channels[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


@register_model("resnet12")
def resnet12(
    *,
    num_classes: int,
    in_channels: int,
    image_size: int,
    channels: Sequence[int] = (64, 160, 320, 640),
    negative_slope: float = 0.1,
) -> ResNet12:
    """ResNet-12 of `TADAM <https://arxiv.org/abs/1805.10123>`__ (Oreshkin et al., 2018) and
    `MetaOptNet <https://arxiv.org/abs/1904.03758>`__ (Lee et al., 2019), for 84x84 mini-ImageNet.

    Four residual blocks of three 3x3 conv-BN layers with a 1x1 conv-BN shortcut,
    LeakyReLU(0.1) and a 2x2 max-pool each; 64-160-320-640 channels as in Lee et al.
    (12.4M parameters). Two deliberate differences from MetaOptNet: the last map is
    globally average-pooled to a ``channels[-1]``-d embedding (as in TADAM) instead of
    flattened, and there is no DropBlock, whose random masks would make the forward
    pass stochastic under ``torch.func.vmap``.

    Args:
        num_classes: Number of logits.
        in_channels: Channels of the input images.
        image_size: Height (= width) of the square input images.
        channels: Output channels of the four blocks; smaller values (e.g.
            ``[64, 128, 256, 512]`` of Oreshkin et al.) give a lighter network.
        negative_slope: Slope of the LeakyReLU for negative inputs.
    """
    return ResNet12(
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        channels=channels,
        negative_slope=negative_slope,
    )
