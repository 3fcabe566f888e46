"""The one evaluation preprocessing on the host: what the device does to a frame, driven by the
same fields the bundle manifest carries (the device has its own copy, tested to match)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from device.preprocess import shades_of_grey  # one implementation of the primitive

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_METHODS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


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
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return image[top : top + s, left : left + s]


def preprocess(image_rgb: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xSxS float32, normalised."""
    img = center_square(image_rgb) if spec.crop == "center_square" else image_rgb
    img = cv2.resize(img, (spec.size, spec.size), interpolation=RESIZE_METHODS[spec.resize])
    if spec.colour_constancy == "shades_of_grey":
        img = shades_of_grey(img)
    x = img.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))
