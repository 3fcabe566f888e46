"""The image-quality gate: no verdict on a frame the model should not be trusted with.

Measured on the square the model reads (centre crop, resized to `SIDE` so the focus measure does
not depend on the camera's resolution): focus as the variance of the Laplacian, exposure as the
mean level and the clipped dark / bright fractions, glare as the share of white, colourless
specular pixels. The limits are the config's `[gates.quality]` table; their defaults were calibrated
on real photos of every collection with synthetic blur, under- and over-exposure
(`mpox-bench quality`, benchmarks/results/quality.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from device.i18n import N_
from device.options import option

SIDE = 224


def _limit(help: str, default: float, hi: float) -> Any:
    return field(default=default, metadata=option(help, lo=0, hi=hi))


@dataclass(frozen=True)
class QualityLimits:
    """The config's `[gates.quality]` table, taken whole by `assess` (flags
    `--quality-min-focus` ...); the defaults were calibrated by `mpox-bench quality`."""

    min_focus: float = _limit("least variance of the Laplacian at 224 px", 4.0, 1e6)
    min_mean: float = _limit("darkest mean grey level", 40.0, 255)
    max_mean: float = _limit("brightest mean grey level", 235.0, 255)
    max_dark: float = _limit("largest share of black pixels (grey <= 10)", 0.5, 1)
    max_bright: float = _limit("largest share of white pixels (grey >= 250)", 0.5, 1)
    max_glare: float = _limit(
        "largest share of white colourless (glare) pixels (V >= 245, S <= 25)", 0.35, 1
    )


@dataclass(frozen=True)
class Quality:
    focus: float
    mean: float
    dark: float
    bright: float
    glare: float
    problem: str | None  # None = fine; else a key of GUIDANCE

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


GUIDANCE = {  # English; shown as _(GUIDANCE[problem])
    "dark": N_("More light"),
    "bright": N_("Too bright"),
    "glare": N_("Glare: tilt the camera"),
    "blur": N_("Hold steady"),
}


def square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(image[y : y + s, x : x + s], (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def assess(image: np.ndarray, limits: QualityLimits, bgr: bool = False) -> Quality:
    """Quality of the model's square of an HxWx3 uint8 image (RGB, or BGR from a camera)."""
    sq = square(image)
    grey = cv2.cvtColor(sq, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)
    hsv = cv2.cvtColor(sq, cv2.COLOR_BGR2HSV if bgr else cv2.COLOR_RGB2HSV)
    n = grey.size
    # in OpenCV's loops, not numpy's temporaries (a third of the gate's cost on a Cortex-A72):
    # the 3x3 Laplacian of 8-bit grey is exact in 16 bits; one histogram gives the mean and
    # the clipped shares
    _, std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_16S))
    focus = float(std[0, 0]) ** 2
    hist = cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel()
    mean = float(hist @ np.arange(256)) / n
    dark, bright = float(hist[:11].sum()) / n, float(hist[250:].sum()) / n
    glare = cv2.countNonZero(cv2.inRange(hsv, (0, 0, 245), (255, 25, 255))) / n
    measured = (focus, mean, dark, bright, glare)
    return Quality(*measured, judge(*measured, limits))


def judge(
    focus: float, mean: float, dark: float, bright: float, glare: float, limits: QualityLimits
) -> str | None:
    """The problem a frame with these measurements has under `limits`, or None. Exposure
    first: a dark or washed-out frame also reads as blurred."""
    if mean < limits.min_mean or dark > limits.max_dark:
        return "dark"
    if mean > limits.max_mean or bright > limits.max_bright:
        return "bright"
    if glare > limits.max_glare:
        return "glare"
    if focus < limits.min_focus:
        return "blur"
    return None
