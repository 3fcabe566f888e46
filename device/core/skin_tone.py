"""Skin tone of the square the model reads: the Individual Typology Angle (ITA, Chardon et al.
1991), ITA = atan((L* - 50) / b*) in degrees from the medians of L* and b* over the square's
skin-coloured pixels (device.core.skin's chroma range), the measure dermatology fairness audits use
(Kinyanjui et al., MICCAI 2020). It is an estimate from a photo, under the photo's light and
white balance, not a Fitzpatrick type: it is for breaking every number down by tone, so that a
kit that fails darker skin shows it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from device.core.skin import centre_square, skin_mask

MIN_PIXELS = 0.05  # fewer skin-coloured pixels than this share: no estimate (None)
# Chardon's six groups, lightest first: (name, lowest ITA in degrees)
GROUPS: tuple[tuple[str, float], ...] = (
    ("very light", 55.0),
    ("light", 41.0),
    ("intermediate", 28.0),
    ("tan", 10.0),
    ("brown", -30.0),
    ("dark", -math.inf),
)
MIN_GROUP = 20  # a group with fewer photos is merged with a neighbour


def ita(image: np.ndarray, bgr: bool = False) -> float | None:
    """ITA in degrees of the centre square's skin-coloured pixels; None without enough skin."""
    square = centre_square(image)
    mask = skin_mask(square, bgr)
    if mask.mean() < MIN_PIXELS:
        return None
    lab = cv2.cvtColor(
        square.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab if bgr else cv2.COLOR_RGB2Lab
    )
    lightness, yellow = np.median(lab[..., 0][mask]), np.median(lab[..., 2][mask])
    return float(math.degrees(math.atan2(lightness - 50.0, max(float(yellow), 1e-6))))


def darken(rgb: np.ndarray, factor: float) -> np.ndarray:
    """A tone transform in Lab space: lightness scaled by `factor`, yellow-blue kept (the way a
    darker skin differs from a lighter one in a photo, to first order). For the gate's reference
    set and the darkening tests, never on the live path."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 0] *= factor
    out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.uint8(np.clip(out * 255.0 + 0.5, 0, 255))


def tone_groups(images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[str], list[float | None]]:
    """Each image's reported group (small groups merged), the groups present lightest first
    ("no skin" last), and each image's ITA: what every per-tone breakdown is built from."""
    angles = [ita(im) for im in images]
    label, order = reported([group_of(a) for a in angles])
    return np.asarray(label), order, angles


def reported(raw: Sequence[str]) -> tuple[list[str], list[str]]:
    """Each `group_of` label as reported (small groups merged), and the reported groups
    present, lightest first ("no skin" last)."""
    names = merged_groups(raw)
    order = list(dict.fromkeys(names[g] for g in names if g in set(raw)))
    return [names[g] for g in raw], order


def group_of(angle: float | None) -> str:
    if angle is None:
        return "no skin"
    return next(name for name, low in GROUPS if angle > low)


def merged_groups(labels: Sequence[str], least: int = MIN_GROUP) -> dict[str, str]:
    """Group name -> reported name: a group with fewer than `least` photos joins its smaller
    neighbour (in tone order) until every group has enough, e.g. "brown + dark"."""
    order = [name for name, _ in GROUPS]
    runs = [[name] for name in order if name in set(labels)]
    count = {name: list(labels).count(name) for name in order}

    def size(run: list[str]) -> int:
        return sum(count[n] for n in run)

    while len(runs) > 1 and min(map(size, runs)) < least:
        i = min(range(len(runs)), key=lambda k: size(runs[k]))
        nbrs = [j for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        j = min(nbrs, key=lambda k: size(runs[k]))
        lo, hi = sorted((i, j))
        runs[lo : hi + 1] = [runs[lo] + runs[hi]]
    out = {name: " + ".join(run) for run in runs for name in run}
    return out | {"no skin": "no skin"}
