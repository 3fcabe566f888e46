"""MicroMPoxNet, reconstructed from the architecture figure of Mustahid et al. (2026).

The authors published no code. Assumptions (docs/design.md): batch norm after every conv, SiLU, 3x3
kernels, 1x1 projection shortcuts, SE reduction 16, and a GAP -> dropout -> linear head instead of
the paper's dense 512-128-64-32 head (so in-graph CAM equals Grad-CAM).
"""

from __future__ import annotations

import torch
from torch import nn

from train_host import UserError
from train_host.models.registry import Classifier, register


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.SiLU(),
    )


def sep_bn(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1 (Keras SeparableConv2D), then BN and SiLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.SiLU(),
    )


def projection(cin: int, cout: int) -> nn.Module:
    """1x1 projection shortcut where the channel count changes, identity otherwise."""
    if cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.SiLU(),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class Residual(nn.Module):
    """main(x) + shortcut(x), optionally followed by squeeze-and-excitation."""

    def __init__(self, main: nn.Module, shortcut: nn.Module, se_channels: int = 0):
        super().__init__()
        self.main = main
        self.shortcut = shortcut
        self.se = SqueezeExcite(se_channels) if se_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.main(x) + self.shortcut(x))


def micrompoxnet_backbone(
    width: float = 1.0, strided_stem: bool = False
) -> tuple[nn.Sequential, int]:
    """Stages at 64, 32, 16, 8, 8 and 4 px for a 128 px input. A max-pool in front of a stage
    feeds both its main path and its shortcut ("projection shortcut through max-pool").

    `strided_stem` (the faster variant): the first conv has stride 2, so the stem runs at 64 px
    and stage A at 32 px, and the max-pool before stage B goes; stages B-E and the 4x4 map are
    unchanged. The four full-resolution convs held 88 % of the MACs; here they cost a quarter."""
    c32, c64, c128, c256 = (max(8, round(c * width)) for c in (32, 64, 128, 256))
    return nn.Sequential(
        conv_bn(3, c32, stride=2 if strided_stem else 1),
        conv_bn(c32, c32),
        nn.MaxPool2d(2),
        Residual(nn.Sequential(conv_bn(c32, c64), conv_bn(c64, c64)), projection(c32, c64)),
        nn.Identity() if strided_stem else nn.MaxPool2d(2),
        Residual(nn.Sequential(sep_bn(c64, c128), sep_bn(c128, c128)), projection(c64, c128), c128),
        nn.MaxPool2d(2),
        Residual(sep_bn(c128, c128), nn.Identity()),
        nn.MaxPool2d(2),
        Residual(
            nn.Sequential(sep_bn(c128, c256), sep_bn(c256, c256)), projection(c128, c256), c256
        ),
        Residual(sep_bn(c256, c256), nn.Identity()),
        nn.MaxPool2d(2),
        sep_bn(c256, c256),
    ), c256


@register("micrompoxnet", 128, "MicroMPoxNet (Mustahid et al. 2026), reconstructed; from scratch")
def micrompoxnet(
    num_classes: int, input_size: int = 128, width: float = 1.0, dropout: float = 0.3
) -> Classifier:
    if input_size % 32:
        raise UserError(f"micrompoxnet needs an input size divisible by 32, got {input_size}")
    backbone, channels = micrompoxnet_backbone(width)
    return Classifier(backbone, channels, num_classes, dropout)


@register(
    "micrompoxnet_s2",
    128,
    "MicroMPoxNet, faster variant: stride-2 stem (stem at 64 px, stage A at 32 px); from scratch",
)
def micrompoxnet_s2(num_classes: int, input_size: int = 128, dropout: float = 0.3) -> Classifier:
    if input_size % 32:
        raise UserError(f"micrompoxnet_s2 needs an input size divisible by 32, got {input_size}")
    backbone, channels = micrompoxnet_backbone(strided_stem=True)
    return Classifier(backbone, channels, num_classes, dropout)
