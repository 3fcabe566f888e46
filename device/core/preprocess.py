"""The one preprocessing function of the kit and the host, driven only by the manifest's `input`
section: the host evaluates with it too (train_host.preprocess calls it), so the tensor the kit
computes is the one the host measured, by construction. A camera frame is usually BGR from
OpenCV: `bgr=True` swaps it after the resize.
"""

from __future__ import annotations

import cv2
import numpy as np

INTERPOLATION = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def crop(image: np.ndarray, mode: str) -> np.ndarray:
    if mode == "none":
        return image
    h, w = image.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    return image[y : y + side, x : x + side]


def shades_of_grey(img: np.ndarray, p: float = 6.0) -> np.ndarray:
    """Colour constancy (Finlayson & Trezzi): equalise the channels' p-norm means."""
    x = img.astype(np.float32)
    illum = np.power(np.mean(np.power(x, p), axis=(0, 1)), 1.0 / p) + 1e-6
    gain = (illum.mean() / illum).astype(np.float32)
    return np.clip(x * gain + 0.5, 0, 255).astype(np.uint8)


def preprocess(image: np.ndarray, spec: dict, layout: str, bgr: bool = False) -> np.ndarray:
    """HxWx3 uint8 (in spec colour order, or BGR as cameras give it when `bgr`) -> float32 batch
    of one, in `layout` (NCHW or NHWC). BGR is swapped after the resize: exact (resizing is per
    channel) and 20x fewer pixels to move than swapping a camera frame."""
    size = int(spec["size"])
    interpolation = INTERPOLATION[spec["resize"]]
    img = cv2.resize(crop(image, spec["crop"]), (size, size), interpolation=interpolation)
    if bgr:
        img = img[..., ::-1]
    if spec.get("colour_constancy", "none") == "shades_of_grey":
        img = shades_of_grey(img)
    mean = np.asarray(spec["mean"], np.float32)
    std = np.asarray(spec["std"], np.float32)
    x = (img.astype(np.float32) * np.float32(1.0 / 255.0) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None] if layout == "NCHW" else x[None])
