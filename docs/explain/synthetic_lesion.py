"""Draw the README's example photo: synthetic skin with a few raised, umbilicated (centre-dented)
lesions with red halos, made with numpy and OpenCV only, so no patient or dataset image is shown.

    python docs/explain/synthetic_lesion.py docs/explain/synthetic_lesion.png
"""

from __future__ import annotations

import sys

import cv2
import numpy as np


def noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Gaussian noise smoothed at `sigma` px, rescaled to unit standard deviation."""
    n = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), sigma)
    return n / n.std()


def synthetic_lesion(size: int = 256, seed: int = 3) -> np.ndarray:
    """size x size x 3 uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    skin = np.array([168, 118, 92], np.float32)  # a medium skin tone, RGB
    shade = 0.75 + 0.25 * (1 - 2 * ((xx - 0.4) ** 2 + (yy - 0.35) ** 2))  # light from top left
    fine, blotch = (noise(rng, size, s) for s in (1.0, 14.0))
    img = skin[None, None] * shade[..., None] + 7 * fine[..., None] + 10 * blotch[..., None]
    # lesions: red halo, pale raised dome, darker dented centre
    spots = [(0.55, 0.5, 0.07), (0.36, 0.62, 0.05), (0.68, 0.72, 0.045), (0.45, 0.33, 0.04)]
    for cx, cy, r in spots:
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / r
        halo = np.exp(-((d / 1.6) ** 2))
        dome = np.clip(1 - d**2, 0, 1)
        centre = np.exp(-((d / 0.3) ** 2))
        img += halo[..., None] * np.array([18, -22, -18], np.float32)
        img += dome[..., None] * np.array([50, 62, 45], np.float32)
        img -= centre[..., None] * np.array([75, 70, 55], np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    return np.uint8(np.clip(img, 0, 255))


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "synthetic_lesion.png"
    cv2.imwrite(out, cv2.cvtColor(synthetic_lesion(), cv2.COLOR_RGB2BGR))
