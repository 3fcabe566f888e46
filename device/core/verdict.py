"""The screening result's one owner: the screener reads an image (`Reading`), and a `Decider`
applies the gates, the smoothing window and the manifest's threshold to give a `Verdict`, which
the screen, `classify`, the case recorder and the benchmarks all consume.

The threshold is compared in exactly one place (`decide`), so the screen, a saved case and
`classify` can never disagree about one reading.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from device.core.ood import OodModel
from device.core.quality import GUIDANCE
from device.core.skin import MIN_SKIN
from device.i18n import N_, _

CANNOT_JUDGE = N_("Cannot judge: not a skin-lesion photo")  # English; shown as _(CANNOT_JUDGE)


class Status(str, Enum):  # not StrEnum: the kit runs on Python 3.10 (JetPack 6)
    """What the kit says about a frame; the values are what saved cases and JSON rows hold."""

    OK = "ok"
    POOR_QUALITY = "poor_quality"  # the quality gate refused it: guidance, no model run
    CANNOT_JUDGE = "cannot_judge"  # not a skin-lesion photo: no verdict


@dataclass(frozen=True)
class Reading:
    """The screener's raw outputs for one image: no threshold, no gate applied yet."""

    probs: np.ndarray  # softmax over the bundle's classes
    cams: np.ndarray  # [C, h, w]: every class's map, raw
    latency_ms: float  # preprocess + inference
    ood_score: float | None = None  # None: the bundle has no "cannot judge" parameters
    skin: float | None = None  # share of skin-coloured pixels in the square (device.core.skin)


@dataclass(frozen=True)
class Verdict:
    status: Status
    classes: list[str]
    positive_class: str
    probs: np.ndarray | None = None  # what the decision stands on: the window's mean
    frame_prob: float | None = None  # this frame's own P(positive class)
    label: str = ""  # the decided class ("" without a decision)
    positive: bool = False
    cam: np.ndarray | None = None  # [h, w] map of `label`'s class, ReLU'd, in [0, 1]
    latency_ms: float = 0.0
    ood_score: float | None = None
    ood_limit: float | None = None
    skin: float | None = None
    judgeable: bool = True  # the gate's finding, also when the gate is off
    problem: str | None = None  # the quality gate's problem (POOR_QUALITY)
    quality: dict = field(default_factory=dict)
    threshold: float | None = None  # the manifest's, that decided

    @property
    def positive_prob(self) -> float:
        """P(positive class) the decision stands on (smoothed on the screen)."""
        return float(self.probs[self.classes.index(self.positive_class)])

    @property
    def no_skin(self) -> bool:
        return _no_skin(self.skin)

    @property
    def text(self) -> str:
        """What the screen says, in the kit's language."""
        if self.status is Status.POOR_QUALITY:
            return _(GUIDANCE[self.problem])
        if self.status is Status.CANNOT_JUDGE:
            return _(CANNOT_JUDGE)
        return likelihood(self.positive_class, self.positive)

    @property
    def saved_prob(self) -> float | None:
        """The probability a saved case records: the one shown, only with a verdict."""
        return self.positive_prob if self.status is Status.OK else None

    @property
    def ranked(self) -> tuple[tuple[str, float], ...]:
        """Every class with its probability, likeliest first."""
        pairs = zip(self.classes, map(float, self.probs), strict=True)
        return tuple(sorted(pairs, key=lambda c: -c[1]))

    def as_dict(self) -> dict:
        ood = {} if self.ood_score is None else {"ood_score": round(self.ood_score, 4)}
        ood |= {} if self.skin is None else {"skin": round(self.skin, 4)}
        return {
            "label": self.label,
            "prob": round(self.positive_prob, 6),
            "probs": {c: round(float(p), 6) for c, p in zip(self.classes, self.probs, strict=True)},
            "positive": self.positive,
            "latency_ms": round(self.latency_ms, 3),
            **ood,
        }


def decide(probs: np.ndarray, positive: int, threshold: float) -> int:
    """The positive class at or above the validation-chosen threshold, else the likeliest other."""
    if probs[positive] >= threshold:
        return positive
    others = probs.copy()
    others[positive] = -1.0
    return int(others.argmax())


def likelihood(positive_class: str, positive: bool) -> str:
    """The kit's wording of a decision, in its language: "Mpox likely" / "Mpox unlikely"."""
    text = _("{cls} likely") if positive else _("{cls} unlikely")
    return text.format(cls=positive_class.capitalize())


def _no_skin(skin: float | None) -> bool:
    return skin is not None and skin < MIN_SKIN


def normalise_cam(cam: np.ndarray) -> np.ndarray:
    cam = np.maximum(cam, 0.0)
    top = float(cam.max())
    return cam / top if top > 0 else cam


class Decider:
    """Gates, smoothing window and threshold for one stream of readings.

    `window` frames' probabilities are averaged (a hand-held camera must not make the verdict
    flicker); a frame without a verdict empties the window, so old frames never vote on a new
    view. `ood_gate` False reports the gate's finding (`judgeable`) without acting on it.
    """

    def __init__(
        self,
        classes: list[str],
        positive_class: str,
        threshold: float,
        ood: OodModel | None = None,
        window: int = 1,
        ood_gate: bool = True,
    ):
        self.classes, self.positive_class, self.threshold = classes, positive_class, threshold
        self.positive = classes.index(positive_class)
        self.ood, self.ood_gate = ood, ood_gate
        self.window: deque[np.ndarray] = deque(maxlen=max(1, window))

    def reset(self) -> None:
        """A new camera or a gap: old frames must not vote on the new view."""
        self.window.clear()

    def poor_quality(self, problem: str, quality: dict) -> Verdict:
        self.reset()
        return self._verdict(Status.POOR_QUALITY, problem=problem, quality=quality)

    def judge(self, reading: Reading, quality: dict | None = None) -> Verdict:
        score = reading.ood_score
        judgeable = (self.ood is None or self.ood.judgeable(score)) and not _no_skin(reading.skin)
        common = {
            "frame_prob": float(reading.probs[self.positive]),
            "latency_ms": reading.latency_ms,
            "ood_score": score,
            "ood_limit": None if self.ood is None else self.ood.limit,
            "skin": reading.skin,
            "judgeable": judgeable,
            "quality": quality or {},
        }
        if self.ood_gate and not judgeable:
            self.reset()
            return self._verdict(Status.CANNOT_JUDGE, probs=reading.probs, **common)
        self.window.append(reading.probs)
        probs = np.mean(self.window, axis=0)
        chosen = decide(probs, self.positive, self.threshold)
        return self._verdict(
            Status.OK,
            probs=probs,
            label=self.classes[chosen],
            positive=chosen == self.positive,
            cam=normalise_cam(reading.cams[chosen]),
            **common,
        )

    def _verdict(self, status: Status, **fields) -> Verdict:
        return Verdict(
            status, self.classes, self.positive_class, threshold=self.threshold, **fields
        )
