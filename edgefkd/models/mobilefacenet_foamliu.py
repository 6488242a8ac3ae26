"""MobileFaceNet as trained by foamliu/MobileFaceNet (128-d, ReLU6, ImageNet normalisation).

Module names reproduce the upstream state_dict exactly (see ../shared/.../MODEL.md) so a
checkpoint loads with strict=True.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import IMAGENET_CONTRACT, register_model


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class DepthwiseSeparable(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.depthwise(x)))
        return self.relu(self.bn2(self.pointwise(x)))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(nn.Sequential(*_conv_bn(cin, hidden, 1, 1)))
        layers.append(nn.Sequential(*_conv_bn(hidden, hidden, 3, stride, groups=hidden)))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class GlobalDepthwise(nn.Module):
    """The 7x7 global depthwise conv ("GDConv") that replaces average pooling."""

    def __init__(self, channels: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.depthwise(x))


# (expansion, out channels, repeats, first stride)
BLOCK_SETTINGS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class MobileFaceNetFoamliu(nn.Module):
    def __init__(self, embedding_size: int = 128, input_size: tuple[int, int] = (112, 112)) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(*_conv_bn(3, 64, 3, 2))
        self.dw_conv = DepthwiseSeparable(64)
        blocks: list[nn.Module] = []
        cin = 64
        for t, c, n, s in BLOCK_SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*blocks)
        self.conv2 = nn.Sequential(*_conv_bn(128, 512, 1, 1))
        # Total stride is 16: the global depthwise kernel covers the whole final map.
        kernel = (-(-input_size[0] // 16), -(-input_size[1] // 16))
        self.gdconv = GlobalDepthwise(512, kernel)
        self.conv3 = nn.Conv2d(512, embedding_size, 1)
        self.bn = nn.BatchNorm2d(embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv(self.conv1(x))
        x = self.conv2(self.features(x))
        x = self.bn(self.conv3(self.gdconv(x)))
        return torch.flatten(x, 1)


@register_model(
    "mobilefacenet-foamliu",
    contract=IMAGENET_CONTRACT,
    embedding_size=128,
    description="foamliu MobileFaceNet, 1.0M params, ReLU6, 128-d",
    flexible_input=True,
)
def mobilefacenet_foamliu(**kwargs: object) -> nn.Module:
    return MobileFaceNetFoamliu(**kwargs)  # type: ignore[arg-type]
