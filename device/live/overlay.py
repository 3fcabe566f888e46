"""Heat-map overlay: the CAM blended onto the image only where the map is high, so the lesion
itself stays visible where the model did not look."""

from __future__ import annotations

import cv2
import numpy as np

STEP = 4  # colour and weight are computed at 1/4 resolution: the CAM itself is only 4x4 to 16x16
JET = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0]  # 256x3


def heat_overlay(image_bgr: np.ndarray, cam: np.ndarray, floor: float = 0.3, alpha: float = 0.5):
    """`cam` in [0, 1] at any size; returns a new BGR image the size of `image_bgr`."""
    out = image_bgr.copy()
    blend_heat(out, cam, floor, alpha)
    return out


def blend_heat(image_bgr: np.ndarray, cam: np.ndarray, floor: float, alpha: float) -> None:
    """In place (the live screen's square, a view into the canvas).

    Per frame, the full-resolution work is one upscale of the colour and weight maps and OpenCV's
    per-pixel `blendLinear`, and only inside the box where the map exceeds `floor`.
    """
    h, w = image_bgr.shape[:2]
    sw, sh = max(1, w // STEP), max(1, h // STEP)
    small = cv2.resize(cam.astype(np.float32), (sw, sh), interpolation=cv2.INTER_LINEAR)
    heat = np.clip(small, 0.0, 1.0)
    rows, cols = np.flatnonzero(heat.max(1) > floor), np.flatnonzero(heat.max(0) > floor)
    if not len(rows):
        return
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, sh)  # one cell of margin for the fade
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, sw)
    hot = heat[r0:r1, c0:c1]
    colour = JET[np.uint8(hot * 255.0)]
    weight = np.clip((hot - floor) * (alpha / (1.0 - floor)), 0.0, alpha)
    y0, y1 = r0 * h // sh, (r1 * h // sh if r1 < sh else h)
    x0, x1 = c0 * w // sw, (c1 * w // sw if c1 < sw else w)
    size = (x1 - x0, y1 - y0)
    colour = cv2.resize(colour, size, interpolation=cv2.INTER_LINEAR)
    weight = cv2.resize(weight, size, interpolation=cv2.INTER_LINEAR)
    box = image_bgr[y0:y1, x0:x1]
    box[:] = cv2.blendLinear(box, colour, 1.0 - weight, weight)
