"""Model registry: build any classifier by name (in the spirit of timm's `create_model`).

Every registered builder returns a `Classifier`: a backbone that ends in a feature map, then
global average pooling -> dropout -> one linear layer. That one head shape is what lets the
exported graph compute Grad-CAM itself (docs/design.md), so it is enforced here for every model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from device.registry import Registry
from train_host import UserError, torchfile


class Classifier(nn.Module):
    """backbone (feature map) -> GAP -> dropout -> linear."""

    def __init__(self, backbone: nn.Module, channels: int, num_classes: int, dropout: float):
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(self.backbone(x)), 1)))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., Classifier]
    default_input_size: int
    pretrained: str  # where built-in weights come from, or "none"
    description: str


MODELS: Registry[ModelSpec] = Registry("model")  # the builders register on package import


def register(name: str, default_input_size: int, description: str, pretrained: str = "none"):
    def wrap(builder: Callable[..., Classifier]) -> Callable[..., Classifier]:
        spec = ModelSpec(name, builder, default_input_size, pretrained, description)
        MODELS.register(name)(spec)
        return builder

    return wrap


def model_names() -> list[str]:
    return MODELS.names()


def get_spec(name: str) -> ModelSpec:
    spec = MODELS.get(name)
    if spec is None:
        raise UserError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    return spec


def without_builtin_weights(name: str) -> dict:
    """Builder kwargs that skip reading packaged weights (they are about to be overwritten)."""
    return {"pretrained": False} if get_spec(name).pretrained != "none" else {}


def create_model(
    name: str,
    num_classes: int,
    input_size: int | None = None,
    weights: Path | None = None,
    **kwargs,
) -> Classifier:
    """Build `name`; `weights` loads a local backbone state dict (nothing is downloaded)."""
    spec = get_spec(name)
    model = spec.builder(
        num_classes=num_classes, input_size=input_size or spec.default_input_size, **kwargs
    )
    if weights is not None:
        load_backbone_weights(model, Path(weights))
    return model


def load_backbone_weights(model: Classifier, path: Path) -> None:
    """Load a local state dict into the backbone; the classifier head stays freshly initialised."""
    state = torchfile.load(path, "weights file")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    missing, _ = model.backbone.load_state_dict(state, strict=False)
    if missing:
        raise UserError(
            f"weights file {path} lacks {len(missing)} backbone tensors, e.g. {missing[0]}"
        )
