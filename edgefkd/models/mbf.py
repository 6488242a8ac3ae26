"""insightface arcface_torch `mbf`: MobileFaceNet with PReLU and a GDC head, 512-d.

Module names match arcface_torch's backbones/mobilefacenet.py (blocks (1,4,6,2), scale 2).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import ARCFACE_CONTRACT, register_model


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups: int = 1, act: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.PReLU(cout))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def LinearBlock(cin: int, cout: int, kernel=(1, 1), stride=(1, 1), padding=(0, 0), groups: int = 1) -> ConvBlock:
    """Conv + BN without activation (the linear bottleneck)."""
    return ConvBlock(cin, cout, kernel, stride, padding, groups, act=False)


class DepthWise(nn.Module):
    def __init__(self, cin: int, cout: int, residual: bool = False, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups: int = 1) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(cin, groups),
            ConvBlock(groups, groups, kernel, stride, padding, groups=groups),
            LinearBlock(groups, cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x) if self.residual else self.layers(x)


class Residual(nn.Module):
    def __init__(self, channels: int, num_block: int, groups: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *[DepthWise(channels, channels, True, (3, 3), (1, 1), (1, 1), groups) for _ in range(num_block)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GDC(nn.Module):
    def __init__(self, embedding_size: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            LinearBlock(512, 512, kernel=(7, 7), groups=512),
            nn.Flatten(),
            nn.Linear(512, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MobileFaceNetMBF(nn.Module):
    def __init__(self, num_features: int = 512, blocks=(1, 4, 6, 2), scale: int = 2) -> None:
        super().__init__()
        c1, c2 = 64 * scale, 128 * scale
        self.layers = nn.ModuleList([ConvBlock(3, c1, (3, 3), (2, 2), (1, 1))])
        if blocks[0] == 1:
            self.layers.append(ConvBlock(c1, c1, (3, 3), (1, 1), (1, 1), groups=64))
        else:
            self.layers.append(Residual(c1, blocks[0], 128))
        self.layers.extend(
            [
                DepthWise(c1, c1, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=128),
                Residual(c1, blocks[1], 128),
                DepthWise(c1, c2, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=256),
                Residual(c2, blocks[2], 256),
                DepthWise(c2, c2, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=512),
                Residual(c2, blocks[3], 256),
            ]
        )
        self.conv_sep = ConvBlock(c2, 512)
        self.features = GDC(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.features(self.conv_sep(x))


@register_model("mbf", contract=ARCFACE_CONTRACT, embedding_size=512, description="arcface_torch MobileFaceNet (mbf), PReLU, 512-d")
def mbf(num_features: int = 512, **kwargs: object) -> nn.Module:
    return MobileFaceNetMBF(num_features=num_features)
