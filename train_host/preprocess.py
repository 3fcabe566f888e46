"""The host's evaluation preprocessing: the device's own function (`device.core.preprocess`),
driven by
the same fields the bundle manifest carries, so the tensor the host evaluates with is the one the
kit computes by construction; `PreprocessSpec` is the recipe as a checkpoint records it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from device.core.preprocess import INTERPOLATION, crop
from device.core.preprocess import preprocess as device_preprocess

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_METHODS = INTERPOLATION


@dataclass(frozen=True)
class PreprocessSpec:
    """Centre square crop -> resize -> scale to [0, 1] -> (x - mean) / std, RGB, NCHW."""

    size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "area"
    crop: str = "center_square"
    colour_order: str = "RGB"
    layout: str = "NCHW"
    colour_constancy: str = "none"  # or "shades_of_grey": removes the light's colour cast

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        known = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in d.items() if k in known}
        return cls(**{**d, "mean": tuple(d["mean"]), "std": tuple(d["std"])})


def center_square(image: np.ndarray) -> np.ndarray:
    return crop(image, "center_square")


def preprocess(image_rgb: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xSxS float32, normalised (the device's function, NCHW)."""
    return device_preprocess(image_rgb, spec.to_dict(), "NCHW")[0]
