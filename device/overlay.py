"""Heat-map overlay: the CAM blended onto the image only where the map is high, so the lesion
itself stays visible where the model did not look."""

from __future__ import annotations

import cv2
import numpy as np


def heat_overlay(image_bgr: np.ndarray, cam: np.ndarray, floor: float = 0.3, alpha: float = 0.5):
    """`cam` in [0, 1] at any size; returns a BGR image the size of `image_bgr`."""
    h, w = image_bgr.shape[:2]
    heat = cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    weight = (np.clip((heat - floor) / (1.0 - floor), 0, 1) * alpha)[..., None]
    return (image_bgr * (1.0 - weight) + colour * weight).astype(np.uint8)
