"""Heat-map overlay: the CAM blended onto the image only where the map is high, so the lesion
itself stays visible where the model did not look."""

from __future__ import annotations

import cv2
import numpy as np


def heat_overlay(image_bgr: np.ndarray, cam: np.ndarray, floor: float = 0.3, alpha: float = 0.5):
    """`cam` in [0, 1] at any size; returns a BGR image the size of `image_bgr`.

    Only the box around the map's hot part is coloured and blended (OpenCV's per-pixel
    `blendLinear`): on a live 480x480 view that is a few hundred microseconds, not milliseconds.
    """
    h, w = image_bgr.shape[:2]
    out = image_bgr.copy()
    heat = cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    rows, cols = np.flatnonzero(heat.max(1) > floor), np.flatnonzero(heat.max(0) > floor)
    if not len(rows):
        return out
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    hot = np.clip(heat[box], 0.0, 1.0)
    colour = cv2.applyColorMap(cv2.convertScaleAbs(hot, alpha=255.0), cv2.COLORMAP_JET)
    weight = np.clip((hot - floor) * (alpha / (1.0 - floor)), 0.0, alpha)
    out[box] = cv2.blendLinear(out[box], colour, 1.0 - weight, weight)
    return out
