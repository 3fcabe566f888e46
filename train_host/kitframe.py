"""Kit framing: photos cropped the way a kit user fills the square with the lesion.

MSID photos are whole web images (context, captions, stock watermarks); a kit user holds the
camera 10-20 cm from one lesion. Lesions are found without any model (so no model can steer its
own test): a lesion is a spot whose colour (Lab a*/b*, redness and yellowness) stands out from
the skin around it; captions and watermarks are mostly grey, so they score low. The same peaks
drive the evaluation crops (`lesion_crops`) and the training crop
(`train_host.augment.RandomLesionCrop`).
"""

from __future__ import annotations

import cv2
import numpy as np

CROP_FRACTIONS = (0.4, 0.6)  # crop side / short image side for the evaluation crops
PEAKS = 3  # lesions looked at per photo


def skin_mask(image: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels, inflamed skin included (a wide YCrCb box that spans light to dark
    skin and red papules), as float 0/1."""
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    mask = cv2.inRange(ycc, (20, 133, 70), (255, 205, 135))
    return (mask > 0).astype(np.float32)


def lesion_saliency(image: np.ndarray) -> np.ndarray:
    """Per-pixel colour contrast against the surrounding skin (float32, same HxW), zero off
    skin and near the border: the skin/background edge is not a lesion."""
    h, w = image.shape[:2]
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    surround = max(3.0, min(h, w) / 8)
    spot = max(1.0, min(h, w) / 40)
    skin = skin_mask(image)
    if skin.mean() < 0.05:  # no skin found (odd light, a grey photo): judge every pixel
        skin[:] = 1.0
    core = cv2.erode(skin, np.ones((3, 3), np.uint8), iterations=max(1, int(spot)))
    weight = cv2.GaussianBlur(skin, (0, 0), surround) + 1e-3
    sal = np.zeros((h, w), np.float32)
    for c in (1, 2):  # a*, b*: colour, not brightness (text and shadows are brightness)
        ch = lab[..., c]
        around = cv2.GaussianBlur(ch * skin, (0, 0), surround) / weight  # skin-only surround
        sal += np.abs(ch - around)
    sal = cv2.GaussianBlur(sal * core, (0, 0), spot)
    m = max(1, int(0.05 * min(h, w)))
    sal[:m], sal[-m:], sal[:, :m], sal[:, -m:] = 0, 0, 0, 0
    return sal


def lesion_peaks(image: np.ndarray, k: int = PEAKS, min_dist: float = 0.2) -> list[tuple[int, int]]:
    """Up to `k` (y, x) saliency maxima at least `min_dist` x short side apart (strongest
    first); the image centre when the photo has no contrast at all."""
    sal = lesion_saliency(image)
    h, w = sal.shape
    radius = max(1, int(min_dist * min(h, w)))
    peaks: list[tuple[int, int]] = []
    work = sal.copy()
    for _ in range(k):
        y, x = np.unravel_index(int(np.argmax(work)), work.shape)
        if work[y, x] <= 0:
            break
        peaks.append((int(y), int(x)))
        cv2.circle(work, (int(x), int(y)), radius, -1.0, -1)
    return peaks or [(h // 2, w // 2)]


def square_at(image: np.ndarray, cy: int, cx: int, side: int) -> np.ndarray:
    """The side x side square centred as near (cy, cx) as the image allows."""
    h, w = image.shape[:2]
    side = max(8, min(side, h, w))
    y0 = int(np.clip(cy - side // 2, 0, h - side))
    x0 = int(np.clip(cx - side // 2, 0, w - side))
    return image[y0 : y0 + side, x0 : x0 + side]


def lesion_crops(
    image: np.ndarray, fractions: tuple[float, ...] = CROP_FRACTIONS, k: int = PEAKS
) -> list[np.ndarray]:
    """Several tight squares around the photo's most lesion-like spots (k peaks x fractions)."""
    short = min(image.shape[:2])
    return [
        square_at(image, y, x, round(f * short))
        for y, x in lesion_peaks(image, k)
        for f in fractions
    ]
