"""Heat-map overlay: the CAM blended onto the image only where the map is high, so the lesion
itself stays visible where the model did not look."""

from __future__ import annotations

import cv2
import numpy as np

STEP = 4  # colour and weight are computed at 1/4 resolution: the CAM itself is only 4x4 to 16x16


def heat_overlay(image_bgr: np.ndarray, cam: np.ndarray, floor: float = 0.3, alpha: float = 0.5):
    """`cam` in [0, 1] at any size; returns a BGR image the size of `image_bgr`.

    Per frame this runs on the live view, so the full-resolution work is one upscale of the
    colour and weight maps and OpenCV's per-pixel `blendLinear`, and only inside the box where
    the map exceeds `floor`.
    """
    h, w = image_bgr.shape[:2]
    out = image_bgr.copy()
    sw, sh = max(1, w // STEP), max(1, h // STEP)
    heat = np.clip(
        cv2.resize(cam.astype(np.float32), (sw, sh), interpolation=cv2.INTER_LINEAR), 0, 1
    )
    rows, cols = np.flatnonzero(heat.max(1) > floor), np.flatnonzero(heat.max(0) > floor)
    if not len(rows):
        return out
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, sh)  # one cell of margin for the fade
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, sw)
    hot = heat[r0:r1, c0:c1]
    colour = cv2.applyColorMap(cv2.convertScaleAbs(hot, alpha=255.0), cv2.COLORMAP_JET)
    weight = np.clip((hot - floor) * (alpha / (1.0 - floor)), 0.0, alpha)
    y0, y1 = r0 * h // sh, r1 * h // sh if r1 < sh else h
    x0, x1 = c0 * w // sw, c1 * w // sw if c1 < sw else w
    size = (x1 - x0, y1 - y0)
    colour = cv2.resize(colour, size, interpolation=cv2.INTER_LINEAR)
    weight = cv2.resize(weight, size, interpolation=cv2.INTER_LINEAR)
    out[y0:y1, x0:x1] = cv2.blendLinear(out[y0:y1, x0:x1], colour, 1.0 - weight, weight)
    return out
