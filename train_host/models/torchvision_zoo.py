"""torchvision baselines by name, re-headed as GAP -> dropout -> linear.

The torchvision/timm weight URLs cannot be reached from the kit's build machines, so these start
from scratch unless `--weights PATH` gives a local state dict (torchvision's key names).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torchvision import models as tvm

from train_host.models.registry import Classifier, register


def _features_of(net: nn.Module) -> tuple[nn.Module, int]:
    """The convolutional trunk of a torchvision classifier and its output channels."""
    if isinstance(net, tvm.ResNet):
        trunk = nn.Sequential(*list(net.children())[:-2])
        return trunk, net.fc.in_features
    if isinstance(net, tvm.DenseNet):
        channels = net.classifier.in_features
        return nn.Sequential(net.features, nn.ReLU(inplace=False)), channels
    if isinstance(net, tvm.VGG):
        return net.features, 512
    # MobileNetV2/V3, EfficientNet: `.features` ends in the last conv block.
    last = [m for m in net.features.modules() if isinstance(m, nn.Conv2d)][-1]
    return net.features, last.out_channels


def _torchvision(factory: Callable[..., nn.Module], dropout_default: float):
    def build(num_classes: int, input_size: int = 224, dropout: float = dropout_default):
        trunk, channels = _features_of(factory(weights=None))
        return Classifier(trunk, channels, num_classes, dropout)

    return build


_BASELINES = {
    "mobilenet_v2": (tvm.mobilenet_v2, 224, "MobileNetV2"),
    "mobilenet_v3_small": (tvm.mobilenet_v3_small, 224, "MobileNetV3-Small"),
    "mobilenet_v3_large": (tvm.mobilenet_v3_large, 224, "MobileNetV3-Large"),
    "efficientnet_b0": (tvm.efficientnet_b0, 224, "EfficientNet-B0"),
    "resnet18": (tvm.resnet18, 224, "ResNet-18"),
    "resnet50": (tvm.resnet50, 224, "ResNet-50 (paper's transfer-learning set)"),
    "densenet121": (tvm.densenet121, 224, "DenseNet-121 (paper's transfer-learning set)"),
    "vgg16": (tvm.vgg16, 224, "VGG-16 (paper's transfer-learning set)"),
}

for _name, (_factory, _size, _desc) in _BASELINES.items():
    register(_name, _size, f"{_desc}, torchvision; from scratch or --weights")(
        _torchvision(_factory, 0.2)
    )
