"""Registered classifiers; importing this package registers them all."""

from train_host.models import efficientnet_lite, micrompoxnet, torchvision_zoo  # noqa: F401
from train_host.models.registry import (
    Classifier,
    ModelSpec,
    create_model,
    get_spec,
    model_names,
)

__all__ = ["Classifier", "ModelSpec", "create_model", "get_spec", "model_names"]
