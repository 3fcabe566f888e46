"""Is there skin in the square at all? The fraction of its pixels whose chroma falls in the
classic YCrCb skin range (Chai and Ngan, 1999: 133 <= Cr <= 173, 77 <= Cb <= 127), which holds from
light to dark skin because it ignores brightness.

The model's own "cannot judge" score misses photographs with no colour of skin in them at all
(the moon, a clock face, a microscope slide: grey images the network's features happen to place
near its training photos). A photo of a skin lesion taken by a kit is in colour and mostly skin,
so a square with almost no skin-coloured pixel cannot be judged either. MIN_SKIN sits below the
1st percentile of MSID's training photos (0.079; its grey web images are the lowest) and far below
the collections never trained on (idscabies 0.46, skin8 0.29): `mpox-bench ood` reports both.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_SKIN = 0.05
SIDE = 64  # chroma needs no detail
LOW, HIGH = (0, 133, 77), (255, 173, 127)  # Y, Cr, Cb


def centre_square(image: np.ndarray) -> np.ndarray:
    """The square the model reads, at SIDE x SIDE pixels (colour needs no detail)."""
    h, w = image.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(image[y : y + s, x : x + s], (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def skin_mask(square: np.ndarray, bgr: bool = False) -> np.ndarray:
    """True where a pixel's chroma is in the skin range."""
    ycrcb = cv2.cvtColor(square, cv2.COLOR_BGR2YCrCb if bgr else cv2.COLOR_RGB2YCrCb)
    return cv2.inRange(ycrcb, LOW, HIGH) > 0


def skin_fraction(image: np.ndarray, bgr: bool = False) -> float:
    """Share of the centre square's pixels in the skin chroma range (0..1)."""
    return float(skin_mask(centre_square(image), bgr).mean())
